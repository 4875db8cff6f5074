"""The load generator's own event-loop lag: how late its gevent loop runs what is due.

A generator whose loop is late inflates every latency it reports (a frame
that arrived is timed when the loop gets to it) and paces its users late.
:class:`LoopLagMonitor` measures that lag the simplest way: a greenlet sleeps
a known interval (:data:`LAG_INTERVAL`) on a fresh loop timer and records by
how much it overshot. The cost is bounded: one wake-up per interval and a
bucketed histogram (:class:`LagHistogram`, a few hundred buckets at most,
whatever the run's length).

Like Locust's high-CPU warning, the monitor logs one warning per process the
first time the p99 of a check window (:data:`LAG_CHECK_INTERVAL` seconds)
exceeds :data:`LAG_WARNING_MS`. In a Locust run (:func:`install`, from the
packaged users) each generator process runs a monitor; workers send their
samples to the master with their statistics; at exit the process holding the
statistics writes ``<csv prefix>_loop_lag.json``, which ``webchat-sim load``
reads for its KPI summary (:func:`read_lag`). No sockets here; gevent only
for the monitoring greenlet.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from time import perf_counter
from typing import Any, Final

import gevent
from gevent.hub import Waiter

__all__ = [
    "LAG_CHECK_INTERVAL",
    "LAG_INTERVAL",
    "LAG_WARNING_MS",
    "LagHistogram",
    "LoopLagMonitor",
    "SurvivorFreezer",
    "install",
    "lag_lines",
    "lag_path",
    "read_lag",
]

logger = logging.getLogger(__name__)

LAG_INTERVAL: Final = 0.05
"""Seconds the monitoring greenlet sleeps between two measurements."""
LAG_WARNING_MS: Final = 10.0
"""A check window's p99 above this many milliseconds is warned about (once per process)."""
LAG_CHECK_INTERVAL: Final = 5.0
"""Seconds of samples behind each warning check."""
LAG_WARNING: Final = (
    "Event loop lag p99 above {threshold:g} ms ({p99:.1f} ms over the last {window:g} s)! "
    "This generator process is overloaded: the latencies it reports include its own delay. "
    "Run fewer users per process (--processes N) or more generator machines."
)
MIDDLE_COLLECTION_EVERY: Final = 2
FULL_COLLECTION_EVERY: Final = 100
"""Once every user is started, the collector's thresholds: a collection of
the middle generation every 2 young ones (Python's default: 10) and a full
one every 100 middle ones (default: 10). With :class:`SurvivorFreezer` the
older generations stay empty, so these only bound what a collection would
scan if something else left objects there."""
REPORT_KEY: Final = "webchat_loop_lag"
"""The key of a worker's samples in its reports to the master."""


class SurvivorFreezer:
    """Once every user is started: what exists is frozen (:func:`gc.freeze`:
    out of the collector's reach), and so are, after every collection, its
    survivors. A chat's state (its frames, waiters, timers) lives as long as
    the chat, minutes at human pace: without this it piled up in the older
    generations (~290,000 objects at 5,000 users), every middle collection
    rescanned the young survivors (4-10 ms of CPU each, the young objects'
    references to old ones are cache misses) and a full collection would scan
    them all. Survivors of a collection were just found reachable; frozen,
    they are freed by reference counting as before when they die; only a
    reference cycle among them that dies later would never be collected
    (measured by bench_headroom as ``gc_frozen_garbage``: 0 at 2,500 and
    5,000 users). Freezing is O(1) (the generations' lists are spliced).
    :meth:`uninstall` unfreezes and restores the thresholds."""

    def __init__(self) -> None:
        self.installed = False
        self.freezes = 0
        self._thresholds: tuple[int, int, int] | None = None

    def install(self) -> None:
        if self.installed:
            return
        gc.freeze()
        thresholds = gc.get_threshold()
        self._thresholds = thresholds
        gc.set_threshold(thresholds[0], MIDDLE_COLLECTION_EVERY, FULL_COLLECTION_EVERY)
        gc.callbacks.append(self._collected)
        self.installed = True

    def _collected(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop":
            gc.freeze()
            self.freezes += 1

    def uninstall(self) -> None:
        """Back to Python's own collection: the callback removed, the thresholds restored, nothing frozen."""
        if not self.installed:
            return
        self.installed = False
        if self._collected in gc.callbacks:
            gc.callbacks.remove(self._collected)
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
        gc.unfreeze()


def _bucket(ms: float) -> float:
    """The value a lag is counted as: 0.1 ms steps below 10 ms, 1 ms below 100 ms, 10 ms below 1 s, then 100 ms."""
    if ms < 10.0:
        return round(ms, 1)
    if ms < 100.0:
        return float(round(ms))
    if ms < 1000.0:
        return float(round(ms, -1))
    return float(round(ms, -2))


class LagHistogram:
    """Lag samples in milliseconds, bucketed (see :func:`_bucket`); the exact maximum is kept."""

    __slots__ = ("buckets", "count", "max_ms")

    def __init__(self) -> None:
        self.buckets: dict[float, int] = {}
        self.count = 0
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        key = _bucket(ms)
        self.buckets[key] = self.buckets.get(key, 0) + 1
        self.count += 1
        if ms > self.max_ms:
            self.max_ms = ms

    def merge(self, other: LagHistogram) -> None:
        for key, count in other.buckets.items():
            self.buckets[key] = self.buckets.get(key, 0) + count
        self.count += other.count
        self.max_ms = max(self.max_ms, other.max_ms)

    def quantile(self, q: float) -> float | None:
        """The bucket value at or below which a fraction ``q`` of the samples lie (``None``: no samples)."""
        if not self.count:
            return None
        rank = q * self.count
        seen = 0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen >= rank:
                return min(key, self.max_ms)
        return self.max_ms  # pragma: no cover - the ranks add up to count

    def summary(self, interval: float = LAG_INTERVAL) -> dict[str, Any]:
        """``{"samples", "interval_ms", "p50_ms", "p99_ms", "max_ms"}`` (the figures ``None`` without samples)."""
        return {
            "samples": self.count,
            "interval_ms": interval * 1000.0,
            "p50_ms": self.quantile(0.50),
            "p99_ms": self.quantile(0.99),
            "max_ms": round(self.max_ms, 3) if self.count else None,
        }

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "max_ms": self.max_ms, "buckets": [[k, n] for k, n in self.buckets.items()]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LagHistogram:
        """The histogram :meth:`to_json` wrote; what is malformed is left out (it came from another process)."""
        histogram = cls()
        buckets = data.get("buckets")
        for pair in buckets if isinstance(buckets, list) else ():
            if (
                isinstance(pair, list)
                and len(pair) == 2
                and isinstance(pair[0], int | float)
                and isinstance(pair[1], int)
                and pair[1] > 0
            ):
                key = _bucket(float(pair[0]))
                histogram.buckets[key] = histogram.buckets.get(key, 0) + pair[1]
                histogram.count += pair[1]
        top = data.get("max_ms")
        if isinstance(top, int | float) and histogram.count:
            histogram.max_ms = float(top)
        return histogram


class LoopLagMonitor:
    """A greenlet that sleeps ``interval`` seconds at a time and records the
    overshoot in milliseconds: in :attr:`total` (the whole run), and in the
    samples not yet reported (:meth:`take_unreported`). Every
    ``check_interval`` seconds it checks the p99 of the samples since the last
    check against ``threshold_ms``: above it, ``on_warning(p99)`` is called,
    and the first time a warning is logged (Locust's CPU warning does the same).
    """

    def __init__(
        self,
        interval: float = LAG_INTERVAL,
        *,
        threshold_ms: float = LAG_WARNING_MS,
        check_interval: float = LAG_CHECK_INTERVAL,
        on_warning: Callable[[float], None] | None = None,
    ) -> None:
        if interval <= 0 or check_interval <= 0:
            raise ValueError("the intervals must be positive")
        self.interval = interval
        self.threshold_ms = threshold_ms
        self.check_interval = check_interval
        self.on_warning = on_warning
        self.total = LagHistogram()
        self.warning_emitted = False
        self._window = LagHistogram()
        self._unreported = LagHistogram()
        self._greenlet: gevent.Greenlet | None = None

    @property
    def running(self) -> bool:
        return self._greenlet is not None and not self._greenlet.dead

    def start(self) -> None:
        if not self.running:
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        greenlet, self._greenlet = self._greenlet, None
        if greenlet is not None:
            greenlet.kill(block=False)

    def record(self, ms: float) -> None:
        """One measurement (the monitoring greenlet's; tests may feed their own)."""
        self.total.add(ms)
        self._window.add(ms)
        self._unreported.add(ms)

    def take_unreported(self) -> LagHistogram:
        """The samples since the last call (what a worker sends its master)."""
        taken, self._unreported = self._unreported, LagHistogram()
        return taken

    def check(self) -> float | None:
        """Close the current check window: its p99 if it is above the threshold (warned about), else ``None``."""
        window, self._window = self._window, LagHistogram()
        p99 = window.quantile(0.99)
        if p99 is None or p99 <= self.threshold_ms:
            return None
        if self.on_warning is not None:
            self.on_warning(p99)
        if not self.warning_emitted:
            self.warning_emitted = True
            logger.warning(LAG_WARNING.format(threshold=self.threshold_ms, p99=p99, window=self.check_interval))
        return p99

    def _run(self) -> None:
        hub = gevent.get_hub()
        loop = hub.loop
        interval = self.interval
        next_check = perf_counter() + self.check_interval
        while True:
            waiter = Waiter(hub)
            timer = loop.timer(interval)
            before = perf_counter()
            timer.start(waiter.switch, None, update=True)  # from the clock now, not the loop's cached time
            try:
                waiter.get()
            finally:
                timer.close()
            now = perf_counter()
            self.record(max(0.0, (now - before - interval) * 1000.0))
            if now >= next_check:
                next_check = now + self.check_interval
                self.check()


# ---------------------------------------------------------------------------
# In a Locust run


def lag_path(csv_prefix: str) -> Path:
    """Where a run with ``--csv csv_prefix`` keeps its loop lag."""
    return Path(f"{csv_prefix}_loop_lag.json")


def read_lag(csv_prefix: str) -> dict[str, Any] | None:
    """The loop lag summary a run wrote (:meth:`LagHistogram.summary`), ``None`` if it wrote none."""
    try:
        data = json.loads(lag_path(csv_prefix).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    interval = data.get("interval_ms")
    histogram = LagHistogram.from_json(data)
    summary = histogram.summary((interval if isinstance(interval, int | float) else LAG_INTERVAL * 1000) / 1000)
    processes = data.get("processes")
    summary["processes"] = processes if isinstance(processes, int) else 1
    return summary


def lag_lines(lag: Mapping[str, Any] | None) -> list[str]:
    """The KPI summary's lines about a run's loop lag (:func:`read_lag`): the
    figures, and a warning when the p99 is above :data:`LAG_WARNING_MS`."""
    if not lag or not lag.get("samples"):
        return []
    processes = int(lag.get("processes") or 1)
    lines = [
        f"\nGenerator event-loop lag: p50 {lag['p50_ms']:.1f} ms, p99 {lag['p99_ms']:.1f} ms, "
        f"max {lag['max_ms']:.1f} ms ({lag['samples']:,} samples every {lag['interval_ms']:g} ms, "
        f"{processes} process{'es' if processes > 1 else ''})"
    ]
    if lag["p99_ms"] > LAG_WARNING_MS:
        lines.append(
            f"warning: event-loop lag p99 above {LAG_WARNING_MS:g} ms: the generator was overloaded and the latencies "
            "above include its own delay; run fewer users per process (--processes N) or more generator machines"
        )
    return lines


class _LocustLag:
    """The listeners :func:`install` adds: a monitor per generator process, the master's merge, the file at exit."""

    def __init__(self) -> None:
        self.monitor: LoopLagMonitor | None = None
        self.merged = LagHistogram()  # a master's: what its workers reported
        self.workers: set[str] = set()
        self.worker = False  # a worker's samples go to its master, which writes the file
        self.freezer = SurvivorFreezer()

    def on_init(self, environment: Any, **_: Any) -> None:
        from locust.runners import MasterRunner, WorkerRunner

        if isinstance(environment.runner, MasterRunner):
            return  # no users here: its workers measure and report
        self.worker = isinstance(environment.runner, WorkerRunner)
        self.monitor = LoopLagMonitor()
        self.monitor.start()

    def on_spawning_complete(self, **_: Any) -> None:
        """Every user is started: what exists now (users, their fakers, Locust) lives as long as the run,
        so it is moved out of the collector's reach, and so are the survivors of every collection
        from now on (:class:`SurvivorFreezer`); full collections no longer scan them (one of them
        stalled the loop ~0.7 s with 2,500 users)."""
        self.freezer.install()

    def on_test_stop(self, **_: Any) -> None:
        """The test stopped (its users with it; the web UI may start another): back to Python's own
        collection, so that the reference cycles the stopped users leave are collected, not kept frozen."""
        self.freezer.uninstall()

    def on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        if self.monitor is not None:
            data[REPORT_KEY] = self.monitor.take_unreported().to_json()

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        found = data.get(REPORT_KEY)
        if isinstance(found, dict):
            self.merged.merge(LagHistogram.from_json(found))
            self.workers.add(client_id)

    def on_quitting(self, environment: Any, **_: Any) -> None:
        self.freezer.uninstall()
        monitor = self.monitor
        if monitor is not None:
            monitor.stop()
        prefix = getattr(environment.parsed_options, "csv_prefix", None)
        if not prefix or self.worker:
            return
        if self.workers:
            histogram, processes = self.merged, len(self.workers)
        elif monitor is not None:
            histogram, processes = monitor.total, 1
        else:
            return
        document = {**histogram.to_json(), "interval_ms": LAG_INTERVAL * 1000, "processes": processes}
        try:
            lag_path(prefix).write_text(json.dumps(document))
        except OSError as exc:
            logger.warning("cannot write the loop lag to %s: %s", lag_path(prefix), exc)


def install(events: Any) -> None:
    """Add the loop lag listeners to Locust's ``events`` (once per process: the packaged users do)."""
    listeners = _LocustLag()
    events.init.add_listener(listeners.on_init)
    events.spawning_complete.add_listener(listeners.on_spawning_complete)
    events.test_stop.add_listener(listeners.on_test_stop)
    events.report_to_master.add_listener(listeners.on_report_to_master)
    events.worker_report.add_listener(listeners.on_worker_report)
    events.quitting.add_listener(listeners.on_quitting)
