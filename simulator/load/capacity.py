"""``webchat-sim capacity``, sans I/O: the SLOs, the step plan, per-step windows and the verdicts.

An SLO is one line: a KPI name (:class:`~simulator.load.meter.KPI`, e.g.
``queue wait``), a statistic (``p50``, ``p95``, ``p99``, ``p99.9``, ``mean``,
``max``), ``<`` or ``<=`` and a duration (``800ms``, ``5s``); or
``failures<1%`` (failed operations among all operations of the step). A
:class:`Window` collects one step's operations only (it is reset at each step,
so every step is judged on its own, not on the run so far) in bounded bucket
counts (Locust's rounding: exact below 100 ms, to 10 ms below 1 s, to 100 ms
above), and :func:`judge` holds each SLO against it. A step with no sample
of a KPI an SLO names is broken ("no samples"): a backend that stops answering
must not pass. No sockets, no clocks, no Locust.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from .meter import KPI
from .runner import UNTIMED

__all__ = [
    "DEFAULT_SLOS",
    "SLO",
    "Plan",
    "SLOError",
    "StepResult",
    "Verdict",
    "Window",
    "answer",
    "judge",
    "parse_slo",
]

DEFAULT_SLOS = ("queue wait p99<5s", "first reply p95<8s", "failures<1%")
"""The SLOs of ``webchat-sim capacity`` without ``--slo``."""


class SLOError(ValueError):
    """An SLO that cannot be read; its message is one line."""


_STATS = {"mean", "max"}
_SLO = re.compile(r"^\s*(?P<kpi>[a-z][a-z ]*?)\s+(?P<stat>p\d+(?:\.\d+)?|mean|max)\s*(?P<op><=?)\s*(?P<value>\S+)\s*$")
_FAILURES = re.compile(r"^\s*failures\s*(?P<op><=?)\s*(?P<value>\d+(?:\.\d+)?)\s*%\s*$")
_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>ms|s)$")
TIMED = tuple(k.value for k in KPI if k not in UNTIMED)
"""The KPIs an SLO may name: the timed ones."""


def _duration_ms(text: str, slo: str) -> float:
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise SLOError(f'bad duration "{text}" in SLO "{slo}" (e.g. 800ms, 5s, 1.5s)')
    value = float(match["n"])
    return value if match["unit"] == "ms" else value * 1000.0


@dataclass(frozen=True)
class SLO:
    """``kpi stat op limit``: ``limit`` in milliseconds, or a fraction for ``failures``."""

    text: str
    kpi: str  # a KPI name, or "failures"
    stat: str  # "p95", "mean", "max", or "ratio" for failures
    limit: float
    inclusive: bool = False  # "<=" rather than "<"

    def holds(self, value: float) -> bool:
        return value <= self.limit if self.inclusive else value < self.limit

    def show(self, value: float | None) -> str:
        """``first reply p95 = 9.1 s``."""
        if value is None:
            return f"{self.kpi} {self.stat}: no samples"
        if self.kpi == "failures":
            return f"failures = {100 * value:.1f}%"
        return f"{self.kpi} {self.stat} = {format_ms(value)}"


def format_ms(value: float) -> str:
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.1f} s"


def parse_slo(text: str) -> SLO:
    """One SLO; :class:`SLOError` with a one-line reason otherwise."""
    spec = " ".join(text.lower().split())
    if match := _FAILURES.match(spec):
        return SLO(text=text.strip(), kpi="failures", stat="ratio", limit=float(match["value"]) / 100.0,
                   inclusive=match["op"] == "<=")
    if spec.startswith("failures"):
        raise SLOError(f'bad SLO "{text}": failures take a percentage, e.g. failures<1%')
    match = _SLO.match(spec)
    if match is None:
        raise SLOError(
            f'bad SLO "{text}": expected "KPI STAT<LIMIT" such as "queue wait p99<5s" or "failures<1%"'
        )
    kpi, stat = match["kpi"].strip(), match["stat"]
    if kpi not in TIMED:
        raise SLOError(f'unknown KPI "{kpi}" in SLO "{text}" (known: {", ".join(TIMED)})')
    if stat not in _STATS and not 0 < float(stat[1:]) < 100:
        raise SLOError(f'bad percentile "{stat}" in SLO "{text}" (between p0 and p100, e.g. p95)')
    limit = _duration_ms(match["value"], text)
    return SLO(text=text.strip(), kpi=kpi, stat=stat, limit=limit, inclusive=match["op"] == "<=")


def bucket(ms: float) -> int:
    """Locust's rounding of a response time, so a window's memory is bounded."""
    if ms < 100:
        return round(ms)
    if ms < 1000:
        return round(ms / 10) * 10
    if ms < 10000:
        return round(ms / 100) * 100
    return round(ms / 1000) * 1000


@dataclass
class Series:
    """One KPI's times in one window: bucket counts, total, maximum."""

    buckets: dict[int, int] = field(default_factory=dict)
    count: int = 0
    total: float = 0.0
    maximum: float = 0.0

    def add(self, ms: float) -> None:
        key = bucket(ms)
        self.buckets[key] = self.buckets.get(key, 0) + 1
        self.count += 1
        self.total += ms
        self.maximum = max(self.maximum, ms)

    def stat(self, name: str) -> float | None:
        if self.count == 0:
            return None
        if name == "mean":
            return self.total / self.count
        if name == "max":
            return self.maximum
        rank = max(1, math.ceil(self.count * float(name[1:]) / 100.0))
        seen = 0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen >= rank:
                return float(key)
        return float(max(self.buckets))  # pragma: no cover - rank <= count


@dataclass
class Window:
    """One step's operations: per KPI, the times of the successful timed ones;
    all operations and the failed ones, for ``failures``."""

    series: dict[str, Series] = field(default_factory=dict)
    requests: int = 0
    failures: int = 0

    def add(self, name: str, response_time: float | None, failed: bool) -> None:
        self.requests += 1
        if failed:
            self.failures += 1
        elif response_time is not None:
            self.series.setdefault(name, Series()).add(response_time)

    def value(self, slo: SLO) -> float | None:
        if slo.kpi == "failures":
            return self.failures / self.requests if self.requests else None
        series = self.series.get(slo.kpi)
        return series.stat(slo.stat) if series else None


@dataclass(frozen=True)
class Verdict:
    slo: SLO
    value: float | None
    ok: bool

    def to_json(self) -> dict[str, Any]:
        return {"slo": self.slo.text, "value": self.value, "ok": self.ok, "shown": self.slo.show(self.value)}


def judge(slos: list[SLO], window: Window) -> list[Verdict]:
    """Each SLO held against this window; no samples is a broken SLO."""
    verdicts = []
    for slo in slos:
        value = window.value(slo)
        verdicts.append(Verdict(slo, value, value is not None and slo.holds(value)))
    return verdicts


@dataclass(frozen=True)
class Plan:
    """The steps: ``start`` users, then ``step`` more every ``step_time`` seconds, up to ``max_users``."""

    start: int
    step: int
    step_time: float
    max_users: int

    def __post_init__(self) -> None:
        if self.start <= 0 or self.step <= 0 or self.max_users <= 0:
            raise ValueError("--start, --step and --max-users must be more than 0")
        if self.step_time <= 0:
            raise ValueError("--step-time must be more than 0s")
        if self.start > self.max_users:
            raise ValueError(f"--start ({self.start}) is more than --max-users ({self.max_users})")

    @property
    def steps(self) -> list[int]:
        return list(range(self.start, self.max_users + 1, self.step))

    @property
    def duration(self) -> float:
        return self.step_time * len(self.steps)

    def step_at(self, elapsed: float) -> int:
        """The index of the step running ``elapsed`` seconds into the run (may be past the last)."""
        return int(elapsed // self.step_time)

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "step": self.step, "step_time": self.step_time, "max_users": self.max_users}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(int(data["start"]), int(data["step"]), float(data["step_time"]), int(data["max_users"]))


@dataclass(frozen=True)
class StepResult:
    number: int  # from 1
    users: int  # the step's target
    requests: int
    verdicts: list[Verdict]

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    def to_json(self) -> dict[str, Any]:
        return {"step": self.number, "users": self.users, "requests": self.requests, "ok": self.ok,
                "verdicts": [v.to_json() for v in self.verdicts]}


def answer(steps: list[StepResult], plan: Plan) -> str:
    """``holds 240 concurrent customers; breaks at 250 on first reply p95 = 9.1 s``."""
    if not steps:
        return "no step finished: nothing to judge"
    broken = next((s for s in steps if not s.ok), None)
    held = [s.users for s in steps if s.ok]
    if broken is None:
        last = steps[-1].users
        if last >= plan.steps[-1]:
            return f"holds {last} concurrent customers (--max-users): no SLO broke"
        return f"holds {last} concurrent customers; the run stopped before a step broke"
    why = ", ".join(v.slo.show(v.value) for v in broken.verdicts if not v.ok)
    if not held:
        return f"breaks at the first step, {broken.users} concurrent customers, on {why}"
    return f"holds {held[-1]} concurrent customers; breaks at {broken.users} on {why}"


def holds(steps: list[StepResult]) -> int | None:
    """The users of the last step before the first broken one (``None``: the first broke, or none ran)."""
    held = None
    for step in steps:
        if not step.ok:
            break
        held = step.users
    return held


def table(steps: list[StepResult], slos: list[SLO]) -> list[str]:
    """The per-step table: users, operations, then each SLO's value (``!`` when broken)."""
    heads = [s.text for s in slos]
    widths = [max(len(h), 12) for h in heads]
    lines = ["step  users  requests  " + "  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip()]
    for step in steps:
        cells = []
        for verdict, width in zip(step.verdicts, widths, strict=True):
            value = verdict.value
            if value is None:
                text = "no samples"
            elif verdict.slo.kpi == "failures":
                text = f"{100 * value:.1f}%"
            else:
                text = format_ms(value)
            cells.append((text + ("" if verdict.ok else " !")).ljust(width))
        lines.append((f"{step.number:4d}  {step.users:5d}  {step.requests:8d}  " + "  ".join(cells)).rstrip())
    return lines
