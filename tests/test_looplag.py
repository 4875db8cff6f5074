"""The generator's event-loop lag (simulator/load/looplag.py): the histogram,
the monitor against a loop blocked on purpose, the file a run writes and the
KPI summary's lines."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from types import SimpleNamespace

import gevent
import pytest

from simulator.load.looplag import (
    LAG_WARNING_MS,
    REPORT_KEY,
    LagHistogram,
    LoopLagMonitor,
    SurvivorFreezer,
    _LocustLag,
    lag_lines,
    lag_path,
    read_lag,
)
from simulator.load.runner import print_summary, read_summary


def histogram_of(*samples: float) -> LagHistogram:
    histogram = LagHistogram()
    for ms in samples:
        histogram.add(ms)
    return histogram


def test_quantiles_and_the_exact_maximum() -> None:
    histogram = histogram_of(*([0.04] * 98), 12.3, 250.7)
    assert histogram.count == 100
    assert histogram.quantile(0.5) == 0.0  # 0.04 ms counts as 0.0 (0.1 ms steps)
    assert histogram.quantile(0.99) == 12.0  # 1 ms steps from 10 ms
    assert histogram.quantile(1.0) == 250.0  # 10 ms steps from 100 ms, at most the maximum
    assert histogram.max_ms == 250.7
    assert LagHistogram().quantile(0.99) is None


def test_buckets_stay_few_whatever_the_number_of_samples() -> None:
    histogram = histogram_of(*(i * 0.0137 for i in range(200_000)))  # 0 to 2.7 s, every step
    assert histogram.count == 200_000
    assert len(histogram.buckets) < 300


def test_merge_and_json_round_trip() -> None:
    first, second = histogram_of(1.0, 2.0), histogram_of(30.0)
    first.merge(LagHistogram.from_json(json.loads(json.dumps(second.to_json()))))
    assert first.count == 3 and first.max_ms == 30.0 and first.quantile(1.0) == 30.0


def test_malformed_reports_are_left_out() -> None:
    histogram = LagHistogram.from_json({"buckets": [[1.0, 2], ["x", 1], [2.0, -1], [3.0], "y"], "max_ms": 1.0})
    assert histogram.count == 2 and histogram.max_ms == 1.0
    assert LagHistogram.from_json({"buckets": "nope", "max_ms": 5}).count == 0


def test_a_blocked_loop_is_measured_and_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    warned: list[float] = []
    monitor = LoopLagMonitor(0.005, check_interval=0.05, on_warning=warned.append)
    caplog.set_level(logging.WARNING, logger="simulator.load.looplag")
    monitor.start()
    try:
        for _ in range(6):
            gevent.sleep(0.03)  # the monitor runs
            time.sleep(0.04)  # blocking the loop on purpose: the monitor's wake-up comes ~40 ms late
        gevent.sleep(0.06)  # a last check window closes
    finally:
        monitor.stop()
    assert not monitor.running
    assert monitor.total.count >= 6
    assert monitor.total.max_ms >= 30.0
    assert warned and all(p99 > LAG_WARNING_MS for p99 in warned)
    messages = [r.getMessage() for r in caplog.records if "Event loop lag p99 above 10 ms" in r.getMessage()]
    assert len(messages) == 1 and monitor.warning_emitted  # once, like Locust's CPU warning


def test_no_warning_below_the_threshold(caplog: pytest.LogCaptureFixture) -> None:
    monitor = LoopLagMonitor()
    for _ in range(100):
        monitor.record(0.3)
    monitor.record(9.0)
    assert monitor.check() is None and not monitor.warning_emitted
    assert not caplog.records
    monitor.record(50.0)  # a window of one sample: its p99 is that sample
    assert monitor.check() == 50.0 and monitor.warning_emitted


def test_unreported_samples_are_taken_once() -> None:
    monitor = LoopLagMonitor()
    monitor.record(1.0)
    assert monitor.take_unreported().count == 1
    assert monitor.take_unreported().count == 0
    assert monitor.total.count == 1


def test_a_master_writes_what_its_workers_reported(tmp_path: Path) -> None:
    listeners = _LocustLag()
    for client in ("w1", "w2"):
        data: dict[str, object] = {}
        worker = LoopLagMonitor()
        worker.record(2.0 if client == "w1" else 40.0)
        data[REPORT_KEY] = worker.take_unreported().to_json()
        listeners.on_worker_report(client, data)
    listeners.on_worker_report("w3", {REPORT_KEY: "garbage"})
    prefix = str(tmp_path / "run")
    listeners.on_quitting(SimpleNamespace(parsed_options=SimpleNamespace(csv_prefix=prefix)))
    lag = read_lag(prefix)
    assert lag is not None
    assert lag["samples"] == 2 and lag["processes"] == 2 and lag["max_ms"] == 40.0


def test_a_worker_leaves_the_file_to_its_master(tmp_path: Path) -> None:
    listeners = _LocustLag()
    listeners.monitor, listeners.worker = LoopLagMonitor(), True
    listeners.monitor.record(1.0)
    data: dict[str, object] = {}
    listeners.on_report_to_master("w1", data)
    assert LagHistogram.from_json(data[REPORT_KEY]).count == 1  # type: ignore[arg-type]
    prefix = str(tmp_path / "run")
    listeners.on_quitting(SimpleNamespace(parsed_options=SimpleNamespace(csv_prefix=prefix)))
    assert not lag_path(prefix).exists()


def test_the_summary_shows_the_lag_and_warns_above_10_ms(tmp_path: Path) -> None:
    prefix = str(tmp_path / "run")
    assert read_summary(prefix)["loop_lag"] is None
    lag_path(prefix).write_text(json.dumps({**histogram_of(0.2, 0.3, 4.0).to_json(), "interval_ms": 50}))
    summary = read_summary(prefix)
    assert summary["loop_lag"]["samples"] == 3
    out = io.StringIO()
    print_summary(summary, out)
    assert "Generator event-loop lag: p50 0.3 ms, p99 4.0 ms, max 4.0 ms (3 samples every 50 ms, 1 process)" in (
        out.getvalue()
    )
    assert "warning" not in out.getvalue()
    slow = {"samples": 10, "interval_ms": 50, "p50_ms": 3.0, "p99_ms": 25.0, "max_ms": 31.0, "processes": 2}
    lines = lag_lines(slow)
    assert "p99 25.0 ms" in lines[0] and "2 processes" in lines[0]
    assert lines[1].startswith("warning: event-loop lag p99 above 10 ms")
    assert lag_lines(None) == [] and lag_lines({"samples": 0}) == []


def test_an_unreadable_file_is_no_lag(tmp_path: Path) -> None:
    prefix = str(tmp_path / "run")
    lag_path(prefix).write_text("{not json")
    assert read_lag(prefix) is None
    lag_path(prefix).write_text("[1, 2]")
    assert read_lag(prefix) is None


def test_once_every_user_is_started_the_long_lived_objects_are_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    calls: list[object] = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(gc, "unfreeze", lambda: calls.append("unfreeze"))
    monkeypatch.setattr(gc, "get_threshold", lambda: (700, 10, 10))
    monkeypatch.setattr(gc, "set_threshold", lambda *limits: calls.append(limits))
    monkeypatch.setattr(gc, "callbacks", [])  # no real collection calls the freezer meanwhile
    listeners = _LocustLag()
    try:
        listeners.on_spawning_complete(user_count=10)
        assert calls == ["freeze", (700, 2, 100)]  # smaller middle collections, rarer full ones
        listeners.on_spawning_complete(user_count=20)  # a second spawn (a new ramp) installs nothing twice
        assert calls == ["freeze", (700, 2, 100)]
        listeners.on_test_stop()  # the users stopped: what they leave is collected, not kept frozen
        assert calls[2:] == [(700, 10, 10), "unfreeze"]
        assert gc.callbacks == []
        listeners.on_spawning_complete(user_count=10)  # a new test from the web UI: frozen again
        assert calls[4:] == ["freeze", (700, 2, 100)]
    finally:
        listeners.on_quitting(SimpleNamespace(parsed_options=SimpleNamespace(csv_prefix=None)))
    assert calls[6:] == [(700, 10, 10), "unfreeze"]  # the run's end restores Python's own settings
    assert gc.callbacks == []


def test_the_survivors_of_every_collection_are_frozen_and_uninstall_restores() -> None:
    import gc

    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    gc.disable()  # only the collections this test asks for
    freezer = SurvivorFreezer()
    try:
        freezer.install()
        assert gc.get_threshold() == (thresholds[0], 2, 100)
        frozen = gc.get_freeze_count()
        survivors = [[n] for n in range(1000)]  # tracked containers that live on
        assert len(gc.get_objects(0)) >= len(survivors)
        gc.collect(0)  # a young collection: what survived it is frozen
        assert freezer.freezes == 1
        assert gc.get_freeze_count() >= frozen + len(survivors)
        assert not gc.get_objects(1) and not gc.get_objects(2)
        assert len(gc.get_objects(0)) < 10  # only what was allocated since
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle  # garbage that only the collector frees: still young, so collected
        assert gc.collect(0) == 1
        assert freezer.freezes == 2
        # a frozen object still dies by reference counting
        survivor = survivors.pop()
        before = gc.get_freeze_count()
        del survivor
        assert gc.get_freeze_count() == before - 1
    finally:
        freezer.uninstall()
        if enabled:
            gc.enable()
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == 0
    assert freezer._collected not in gc.callbacks
    freezer.uninstall()  # twice is harmless
