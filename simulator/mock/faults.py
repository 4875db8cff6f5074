"""Fault injection on the mock side, sans I/O: what to do to each outbound frame.

``webchat-sim serve --fault NAME=VALUE`` (repeatable), ``--fault-profile FILE``
(one ``NAME=VALUE`` a line, ``#`` comments) and ``PUT /admin/faults`` set a
:class:`FaultConfig`; a :class:`FaultDecider` draws, from its own seeded
``random.Random``, what happens to each frame sent to each recipient (a
:class:`Decision`), and counts what it decided. The websocket shell
(:meth:`.server.WebchatServer._deliver`) carries the decisions out, and only
when a fault is configured: with none its hot path is the usual one.

Faults (values: ``0.01`` a probability in [0, 1]; ``50ms-400ms`` a span of
durations, ``200ms`` or ``2s`` a fixed one; ``0``, ``off`` or ``none``: off):

* ``latency=SPAN``: each outbound frame waits a uniformly random delay, the
  connection's frames in their order (its queue is delayed, a frame never
  overtakes an earlier one);
* ``drop=P``: the frame is silently lost (per frame per recipient);
* ``duplicate=P``: the frame is sent twice;
* ``disconnect=P``: instead of the frame, the connection is aborted (no close
  frame: the client sees 1006); its participant may resume as after any drop;
* ``reorder=P``: the frame is held back and sent after the next frame to the
  same connection (or alone, when none follows within the hold time);
* ``stall=P``: after the frame, the server stops reading from that
  connection for ``stall-time`` (default ``2s-5s``): a server that stalls, so
  the client's frames pile up unanswered and then arrive late;
* ``slow-agent=SPAN``: extra think time of the autopilot agents before each
  action they plan;
* ``stall-time=SPAN``: how long a ``stall`` lasts;
* ``seed=N``: the decider's seed (else ``serve --seed``, else a fresh one).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = [
    "FAULTS",
    "SETTINGS",
    "Decision",
    "FaultConfig",
    "FaultDecider",
    "format_span",
    "parse_fault",
    "parse_probability",
    "parse_profile",
    "parse_span",
]

Span = tuple[float, float]

FAULTS: tuple[str, ...] = ("latency", "drop", "duplicate", "disconnect", "reorder", "stall", "slow-agent")
"""The faults, as named on the command line, in /healthz, /metrics and /admin/faults."""
_SPANS = frozenset({"latency", "slow-agent", "stall-time"})
SETTINGS: tuple[str, ...] = (*FAULTS, "stall-time")
"""What ``with_setting`` takes besides ``seed`` (``stall-time`` qualifies ``stall``; it is not counted)."""
DEFAULT_STALL: tuple[float, float] = (2.0, 5.0)
MAX_DELAY = 60.0
"""The longest delay a span may hold (seconds)."""
REORDER_HOLD = 0.5
"""Seconds a frame held back by ``reorder`` waits for a next frame before it goes alone."""

_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s)\s*")
_OFF = frozenset({"0", "off", "none", ""})


def _duration(text: str) -> float:
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text.strip()!r} is not a duration such as 50ms or 2s")
    value = float(match.group(1)) * (0.001 if match.group(2) == "ms" else 1.0)
    if value > MAX_DELAY:
        raise ValueError(f"{text.strip()} is more than {MAX_DELAY:g}s")
    return value


def parse_span(text: str) -> Span | None:
    """``50ms-400ms`` → ``(0.05, 0.4)``; ``200ms`` → ``(0.2, 0.2)``; ``0``/``off`` → ``None``."""
    if text.strip().lower() in _OFF:
        return None
    low_text, dash, high_text = text.partition("-")
    low = _duration(low_text)
    high = _duration(high_text) if dash else low
    if high < low:
        raise ValueError(f"{text.strip()}: the upper bound is below the lower one")
    return None if high == 0 else (low, high)


def parse_probability(text: str) -> float:
    """``0.01`` → ``0.01``, a number in [0, 1] (``off``/``none``: 0)."""
    if text.strip().lower() in _OFF:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a probability such as 0.01") from None
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ValueError(f"{text.strip()} is not a probability between 0 and 1")
    return value


def format_span(span: Span | None) -> str | None:
    if span is None:
        return None
    low, high = (f"{round(v * 1000)}ms" if v < 1 else f"{v:g}s" for v in span)
    return low if low == high else f"{low}-{high}"


@dataclass(frozen=True, kw_only=True)
class FaultConfig:
    """What to inject (all off by default)."""

    latency: Span | None = None
    drop: float = 0.0
    duplicate: float = 0.0
    disconnect: float = 0.0
    reorder: float = 0.0
    stall: float = 0.0
    stall_time: Span | None = None
    slow_agent: Span | None = None
    seed: int | None = None

    @property
    def active(self) -> bool:
        """Any fault on the websocket side (``slow-agent`` is the autopilot's)."""
        return bool(self.latency or self.drop or self.duplicate or self.disconnect or self.reorder or self.stall)

    @property
    def any(self) -> bool:
        return self.active or self.slow_agent is not None

    def with_setting(self, name: str, value: Any) -> FaultConfig:
        """This configuration with ``name`` set from ``value`` (text, number or
        ``None``: off); ``ValueError`` with a one-line message when invalid."""
        if name == "seed":
            if value is None:
                return replace(self, seed=None)
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError(f"seed: must be an integer, got {value!r}")
            try:
                return replace(self, seed=int(value))
            except ValueError:
                raise ValueError(f"seed: must be an integer, got {value!r}") from None
        if name not in SETTINGS:
            raise ValueError(f"unknown fault {name!r} (known: {', '.join((*SETTINGS, 'seed'))})")
        attr = name.replace("-", "_")
        if value is None:
            off: dict[str, Any] = {attr: None if name in _SPANS else 0.0}
            return replace(self, **off)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{name}: must be a string or a number, got {type(value).__name__}")
        text = value if isinstance(value, str) else (f"{value}s" if name in _SPANS and value else str(value))
        try:
            parsed: Any = parse_span(text) if name in _SPANS else parse_probability(text)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        return replace(self, **{attr: parsed})

    def updated(self, settings: Iterable[tuple[str, Any]]) -> FaultConfig:
        config = self
        for name, value in settings:
            config = config.with_setting(name, value)
        return config

    def to_json(self) -> dict[str, Any]:
        """As ``/healthz`` and ``/admin/faults`` show it (spans as text)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            spans = ("latency", "slow_agent", "stall_time")
            out[f.name.replace("_", "-")] = format_span(value) if f.name in spans else value
        return out


def parse_fault(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` checked → ``(name, value)`` (as :meth:`FaultConfig.with_setting` takes it)."""
    name, equals, value = text.partition("=")
    name = name.strip().lower()
    if not equals or not name:
        raise ValueError(f"{text.strip()!r}: expected NAME=VALUE, e.g. drop=0.01 or latency=50ms-400ms")
    FaultConfig().with_setting(name, value.strip())  # raises on a bad name or value
    return name, value.strip()


def parse_profile(text: str, source: str = "profile") -> list[tuple[str, Any]]:
    """A fault profile: one ``NAME=VALUE`` a line, blank lines and ``#`` comments skipped."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            out.append(parse_fault(line))
        except ValueError as exc:
            raise ValueError(f"{source}, line {number}: {exc}") from None
    return out


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens to one frame for one recipient."""

    disconnect: bool = False
    drop: bool = False
    duplicate: bool = False
    reorder: bool = False
    delay: float = 0.0
    stall: float = 0.0
    """Seconds the server stops reading from the connection after this frame (0: none)."""


_NOTHING = Decision()


class FaultDecider:
    """Seeded decisions per frame per recipient, and their counts.

    The same seed, configuration and sequence of calls give the same decisions.
    """

    def __init__(self, config: FaultConfig | None = None, *, seed: int | None = None) -> None:
        self.config = config or FaultConfig()
        self.injected: dict[str, int] = dict.fromkeys(FAULTS, 0)
        """Faults injected since start, by name."""
        self.rng = random.Random(self.config.seed if self.config.seed is not None else seed)

    def configure(self, config: FaultConfig) -> None:
        """Switch to ``config`` (a new seed in it restarts the draws)."""
        if config.seed is not None and config.seed != self.config.seed:
            self.rng.seed(config.seed)
        self.config = config

    def update(self, settings: Mapping[str, Any]) -> FaultConfig:
        """Apply ``{name: value}`` (``None`` or 0: off) all or nothing; ``ValueError`` when one is bad."""
        self.configure(self.config.updated(settings.items()))
        return self.config

    def __bool__(self) -> bool:
        return self.config.active

    def decide(self) -> Decision:
        """The fate of one outbound frame for one recipient (counted)."""
        c = self.config
        rng = self.rng
        count = self.injected
        if c.disconnect and rng.random() < c.disconnect:
            count["disconnect"] += 1
            return Decision(disconnect=True)
        if c.drop and rng.random() < c.drop:
            count["drop"] += 1
            return Decision(drop=True)
        duplicate = bool(c.duplicate) and rng.random() < c.duplicate
        reorder = bool(c.reorder) and rng.random() < c.reorder
        delay = rng.uniform(*c.latency) if c.latency else 0.0
        stall = rng.uniform(*(c.stall_time or DEFAULT_STALL)) if c.stall and rng.random() < c.stall else 0.0
        if not (duplicate or reorder or delay or stall):
            return _NOTHING
        if stall:
            count["stall"] += 1
        if duplicate:
            count["duplicate"] += 1
        if reorder:
            count["reorder"] += 1
        if delay:
            count["latency"] += 1
        return Decision(duplicate=duplicate, reorder=reorder, delay=delay, stall=stall)

    def think_delay(self) -> float:
        """Extra think time of an autopilot agent before one action (0: off)."""
        span = self.config.slow_agent
        if span is None:
            return 0.0
        self.injected["slow-agent"] += 1
        return self.rng.uniform(*span)

    def status(self) -> dict[str, Any]:
        """``/healthz``'s ``faults`` section: the configuration and the counts."""
        return {"config": self.config.to_json(), "injected": dict(self.injected)}
