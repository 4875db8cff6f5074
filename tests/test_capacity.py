"""``webchat-sim capacity``: SLOs are read and judged per step window, a
mistake is one line and exit 2, a tiny run against the embedded mock prints
the table, the answer and the JSON, and a slower mock breaks no later."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.load.capacity import (
    SLO,
    Plan,
    SLOError,
    StepResult,
    Window,
    answer,
    holds,
    judge,
    parse_slo,
)
from tests.cli import run_cli

pytestmark = pytest.mark.timeout(120)


# SLO parsing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kpi", "stat", "limit", "inclusive"),
    [
        ("queue wait p99<5s", "queue wait", "p99", 5000.0, False),
        ("first reply p95 < 8s", "first reply", "p95", 8000.0, False),
        ("  First  Reply p99.9<=1.5s ", "first reply", "p99.9", 1500.0, True),
        ("message ack mean<800ms", "message ack", "mean", 800.0, False),
        ("connect max<2s", "connect", "max", 2000.0, False),
        ("failures<1%", "failures", "ratio", 0.01, False),
        ("failures <= 0.5 %", "failures", "ratio", 0.005, True),
    ],
)
def test_slos_parse(text: str, kpi: str, stat: str, limit: float, inclusive: bool) -> None:
    slo = parse_slo(text)
    assert (slo.kpi, slo.stat, slo.inclusive) == (kpi, stat, inclusive)
    assert slo.limit == pytest.approx(limit)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("bogus", 'expected "KPI STAT<LIMIT"'),
        ("queue wiat p99<5s", 'unknown KPI "queue wiat"'),
        ("queue wait p100<5s", 'bad percentile "p100"'),
        ("queue wait p99<5", 'bad duration "5"'),
        ("queue wait p99<5min", 'bad duration "5min"'),
        ("failures<1", "failures take a percentage"),
        ("rrweb chunk p95<1s", 'unknown KPI "rrweb chunk"'),  # counted, never timed
        ("queue wait p99>5s", 'expected "KPI STAT<LIMIT"'),
    ],
)
def test_bad_slos_say_why_in_one_line(text: str, says: str) -> None:
    with pytest.raises(SLOError) as info:
        parse_slo(text)
    assert says in str(info.value) and "\n" not in str(info.value)


# Judging a window ---------------------------------------------------------------


def _window(times: dict[str, list[float]], failed: int = 0) -> Window:
    window = Window()
    for name, values in times.items():
        for ms in values:
            window.add(name, ms, False)
    for _ in range(failed):
        window.add("connect", None, True)
    return window


def test_percentiles_are_of_the_window_and_the_limit_is_strict() -> None:
    window = _window({"first reply": [float(ms) for ms in range(1, 101)]})  # 1..100 ms
    p95, p50 = parse_slo("first reply p95<95ms"), parse_slo("first reply p50<=50ms")
    (v95, v50) = judge([p95, p50], window)
    assert v95.value == 95 and not v95.ok  # 95 is not < 95
    assert v50.value == 50 and v50.ok
    assert judge([parse_slo("first reply max<101ms")], window)[0].ok
    assert judge([parse_slo("first reply mean<50ms")], window)[0].value == pytest.approx(50.5)


def test_failures_are_a_share_of_the_steps_operations() -> None:
    window = _window({"connect": [1.0] * 98}, failed=2)
    (verdict,) = judge([parse_slo("failures<1%")], window)
    assert verdict.value == pytest.approx(0.02) and not verdict.ok
    assert judge([parse_slo("failures<3%")], window)[0].ok
    assert window.series["connect"].count == 98  # a failure has no time


def test_a_kpi_without_samples_breaks_its_slo() -> None:
    (verdict,) = judge([parse_slo("queue wait p99<5s")], _window({"connect": [1.0]}))
    assert verdict.value is None and not verdict.ok
    assert "no samples" in verdict.slo.show(verdict.value)
    assert not judge([parse_slo("failures<1%")], Window())[0].ok


def test_the_window_is_bounded_in_memory() -> None:
    window = Window()
    for n in range(100_000):
        window.add("first reply", float(n % 60_000), False)
    assert len(window.series["first reply"].buckets) < 400


def test_big_times_keep_two_significant_figures() -> None:
    window = _window({"first reply": [9130.0] * 10})
    (verdict,) = judge([parse_slo("first reply p95<8s")], window)
    assert verdict.value == 9100 and verdict.slo.show(verdict.value) == "first reply p95 = 9.1 s"


# Plan and answer ----------------------------------------------------------------


def test_the_plan_steps_up_to_max_users() -> None:
    plan = Plan(10, 10, 30.0, 55)
    assert plan.steps == [10, 20, 30, 40, 50]
    assert plan.duration == 150.0
    assert [plan.step_at(t) for t in (0, 29.9, 30, 149)] == [0, 0, 1, 4]
    with pytest.raises(ValueError, match="more than --max-users"):
        Plan(20, 10, 30.0, 10)
    with pytest.raises(ValueError, match="--step-time"):
        Plan(1, 1, 0.0, 10)


def _step(number: int, users: int, *values: float) -> StepResult:
    slo = parse_slo("first reply p95<8s")
    window = _window({"first reply": list(values)})
    return StepResult(number, users, window.requests, judge([slo], window))


def test_the_answer_names_the_last_good_step_and_what_broke() -> None:
    plan = Plan(230, 10, 30.0, 5000)
    steps = [_step(1, 230, 100.0), _step(2, 240, 7000.0), _step(3, 250, 9130.0)]
    assert answer(steps, plan) == "holds 240 concurrent customers; breaks at 250 on first reply p95 = 9.1 s"
    assert holds(steps) == 240
    assert answer(steps[2:], plan).startswith("breaks at the first step, 250 concurrent customers")
    assert holds(steps[2:]) is None
    assert answer([_step(1, 10, 1.0)], Plan(10, 10, 1.0, 10)).endswith("(--max-users): no SLO broke")
    assert answer([], plan) == "no step finished: nothing to judge"


def test_slo_objects_compare_by_value() -> None:
    assert parse_slo("failures<1%") == SLO("failures<1%", "failures", "ratio", 0.01)


# The command line -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--slo", "queue wiat p99<5s"), 'unknown KPI "queue wiat"'),
        (("--start", "20", "--max-users", "10"), "--start (20) is more than --max-users (10)"),
        (("--host", "ws://127.0.0.1:9/ws", "--fault", "slow-agent=1s-2s"), "--fault is for the embedded mock"),
    ],
)
def test_capacity_mistakes_are_one_line_and_exit_2(args: tuple[str, ...], says: str) -> None:
    proc = run_cli("capacity", *args, timeout=30)
    assert proc.returncode == 2, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and says in lines[0], proc.stderr
    assert "embedded mock server" not in proc.stdout


def _capacity(tmp_path: Path, name: str, *args: str) -> tuple[str, dict[str, object]]:
    out = tmp_path / f"{name}.json"
    proc = run_cli(
        "capacity", "--start", "2", "--step", "2", "--step-time", "3s", "--max-users", "6", "--pace", "fast",
        "--json", str(out), *args, timeout=90,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, json.loads(out.read_text())


@pytest.mark.timeout(150)
def test_a_tiny_capacity_run_prints_the_table_and_the_answer(tmp_path: Path) -> None:
    stdout, doc = _capacity(tmp_path, "normal")
    assert "step  users  requests  queue wait p99<5s  first reply p95<8s  failures<1%" in stdout
    steps = doc["steps"]
    assert isinstance(steps, list) and steps, doc
    assert [s["users"] for s in steps] == [2, 4, 6][: len(steps)]
    assert all(s["requests"] > 0 for s in steps)
    # each step is judged on its own: the steps' operation counts add up to no more than the run's
    kpis = doc["kpis"]
    assert isinstance(kpis, dict)
    assert sum(s["requests"] for s in steps) <= sum(k["requests"] for k in kpis.values())
    assert f"result: {doc['answer']}" in stdout
    assert doc["answer"] == "holds 6 concurrent customers (--max-users): no SLO broke", stdout
    assert doc["holds"] == 6 and doc["breaks_at"] is None


@pytest.mark.timeout(240)
def test_a_slower_mock_breaks_no_later(tmp_path: Path) -> None:
    slo = ("--slo", "first reply p95<1s")
    _, normal = _capacity(tmp_path, "normal", *slo)
    stdout, slow = _capacity(tmp_path, "slow", *slo, "--fault", "slow-agent=2s-3s")
    assert normal["breaks_at"] is None, normal["answer"]  # the normal mock answers in milliseconds
    assert slow["breaks_at"] == 2 and slow["holds"] is None, slow["answer"]
    assert "breaks at the first step, 2 concurrent customers, on first reply p95" in stdout
