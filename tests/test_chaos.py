"""``--chaos disconnect=P``: customers drop their connection abruptly mid-chat
and resume with their resume token; the drops are counted and a run against
the mock stays free of failures (a message missing after a resume would be
one). Bad specs are one line and exit 2, in ``webchat-sim load`` and in plain
Locust."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulator.load.chaos import Chaos, ChaosMonkey, parse_chaos
from simulator.load.runner import read_summary
from tests.cli import ROOT, clean_env, run_cli

pytestmark = pytest.mark.timeout(120)


def test_chaos_specs_parse() -> None:
    assert parse_chaos("") == Chaos() and not parse_chaos("")
    assert parse_chaos("disconnect=0.01") == Chaos(disconnect=0.01)
    assert parse_chaos(" disconnect = 1 , ") == Chaos(disconnect=1.0)
    assert not parse_chaos("disconnect=0")


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("disconect=0.1", 'unknown chaos "disconect"'),
        ("disconnect", 'chaos "disconnect" needs a probability'),
        ("disconnect=x", '"x" is not a number'),
        ("disconnect=1.5", "between 0 and 1 (got 1.5)"),
        ("disconnect=-0.1", "between 0 and 1"),
        ("disconnect=nan", "between 0 and 1"),
    ],
)
def test_load_rejects_a_bad_chaos_in_one_line(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match="chaos"):
        parse_chaos(spec)
    proc = run_cli("load", "--chaos", spec, timeout=30)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("webchat-sim load: error: argument --chaos: ") and says in lines[0]
    assert "embedded mock server" not in proc.stdout and "Traceback" not in proc.stderr


def test_plain_locust_rejects_a_bad_chaos_at_start() -> None:
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless", "-u", "1", "-t", "30s",
           "--host", "ws://127.0.0.1:9/ws", "CustomerUser"]
    proc = subprocess.run(cmd, cwd=ROOT, env=clean_env(WEBCHAT_CHAOS="disconnect=7"), capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 2
    ours = [line for line in proc.stderr.splitlines() if line.startswith("webchat-sim:")]
    assert len(ours) == 1 and ours[0].startswith("webchat-sim: --chaos: ") and "between 0 and 1" in ours[0]
    assert "Traceback" not in proc.stderr


def test_a_monkey_draws_from_its_own_random() -> None:
    never, always = ChaosMonkey(Chaos(), random.Random(1)), ChaosMonkey(Chaos(disconnect=1.0), random.Random(1))
    assert not any(never.disconnect() for _ in range(100)) and all(always.disconnect() for _ in range(100))
    some = ChaosMonkey(Chaos(disconnect=0.25), random.Random(3))
    assert 150 < sum(some.disconnect() for _ in range(1000)) < 350


def test_chaos_disconnects_are_counted_and_every_resume_loses_nothing(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    started = time.monotonic()
    proc = run_cli("load", "--chaos", "disconnect=0.05", "--pace", "fast", "--users", "6", "--spawn-rate", "6",
                   "--run-time", "6s", "--seed", "3", "--csv", str(tmp_path / "run"),
                   "--summary-json", str(summary_path), timeout=90)
    assert time.monotonic() - started < 60
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = json.loads(summary_path.read_text())
    kpis = summary["kpis"]
    assert summary["chaos_drops"] > 0 and kpis["chaos drop"]["requests"] == summary["chaos_drops"]
    # each drop resumed (happy_path has no other reconnects), or was refused as closed; a user stopped by the
    # end of the run may have dropped without resuming (6 users: at most 6 of them)
    resumed = kpis["reconnect"]["requests"] + kpis.get("chaos resume refused", {}).get("requests", 0)
    assert summary["chaos_drops"] - 6 <= resumed <= summary["chaos_drops"]
    assert kpis["reconnect"]["failures"] == 0
    # refused resumes are the agent's close crossing a drop, a few percent: not a backend that forgets every token
    assert kpis.get("chaos resume refused", {}).get("requests", 0) * 5 <= summary["chaos_drops"]
    assert summary["total_failures"] == 0 and summary["exceptions"] == [], summary["failures"]
    assert "message lost" not in kpis
    assert f"{summary['chaos_drops']} chaos drop(s) (--chaos)" in proc.stdout
    assert "result: PASS (0 failures)" in proc.stdout
    assert read_summary(str(tmp_path / "run"))["chaos_drops"] == summary["chaos_drops"]  # Locust's own CSV agrees
