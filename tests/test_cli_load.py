"""``webchat-sim load`` and plain ``locust -f locustfile.py`` as a new user
meets them: mistakes are one line and exit 2 before anything starts, the
summary agrees with Locust's own statistics, signals stop the run cleanly,
progress shows on request, and the verdict agrees with the exit status."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulator.load.runner import LoadOptions, parse_duration
from tests.cli import ROOT, clean_env, run_cli

pytestmark = pytest.mark.timeout(120)

AVAILABLE = "available: abandon, happy_path, long_chat"


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=timeout)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


# 1. A mistyped scenario -----------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("nosuch", 'unknown scenario "nosuch"'),
        ("happy_path:x", 'bad weight "x" in scenario "happy_path:x"'),
        ("./nope.py", "scenario file not found: ./nope.py"),
        ("happy_path:0", "no scenario with a positive weight"),
    ],
)
def test_load_rejects_a_bad_scenario_before_anything_starts(spec: str, says: str) -> None:
    started = time.monotonic()
    proc = cli("load", "--scenario", spec, "--run-time", "30s", timeout=30)
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert says in line and AVAILABLE in line, line
    assert "embedded mock server" not in proc.stdout  # nothing was spawned
    assert "Traceback" not in proc.stdout + proc.stderr
    assert time.monotonic() - started < 15


def test_plain_locust_rejects_a_bad_scenario_at_start() -> None:
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless", "-u", "2", "-t", "30s",
           "--host", "ws://127.0.0.1:9/ws", "--scenario", "nosuch", "CustomerUser"]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2
    ours = [line for line in proc.stderr.splitlines() if line.startswith("webchat-sim:")]
    assert len(ours) == 1 and 'unknown scenario "nosuch"' in ours[0] and AVAILABLE in ours[0]
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) <= 3, proc.stderr  # Locust's start-up line and ours
    assert time.monotonic() - started < 15


# 5. Arguments our own checks refuse -----------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--users", "0"), "argument --users: must be more than 0"),
        (("--users", "-3"), "argument --users: must be more than 0"),
        (("--users", "many"), 'argument --users: "many" is not a whole number'),
        (("--processes", "0"), "argument --processes: must be a positive number, or -1"),
        (("--spawn-rate", "0"), "argument --spawn-rate: must be more than 0"),
        (("--spawn-rate", "inf"), "argument --spawn-rate: must be a finite number (got inf)"),
        (("--run-time", "0s"), "argument --run-time: must be more than 0s"),
        (("--run-time", "5x"), 'argument --run-time: "5x" is not a duration'),
        (("--timeout", "-1"), "argument --timeout: must be more than 0"),
        (("--agents", "-2"), "argument --agents: must be 0 or more"),
        (("--host", "http://127.0.0.1:1/ws"), "--host must be a websocket URL"),
        (("--queues", ","), "--queues needs at least one queue name"),
    ],
)
def test_load_rejects_bad_arguments_in_one_line(args: tuple[str, ...], says: str) -> None:
    proc = cli("load", *args, timeout=30)
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert line.startswith("webchat-sim load: error: ") and says in line, line
    assert "embedded mock server" not in proc.stdout
    assert "Traceback" not in proc.stderr


def test_durations_parse_like_locust() -> None:
    assert [parse_duration(t) for t in ("90", "30s", "5m", "1h30m", "1h2m3s")] == [90, 30, 300, 5400, 3723]
    for bad in ("", "5x", "1m1h", "s", "-5s"):
        with pytest.raises(ValueError, match="is not a duration"):
            parse_duration(bad)


# 4. Enough agents by default, timeouts by pace ------------------------------


@pytest.mark.parametrize("users", [1, 2, 4, 5, 7, 50, 100, 101])
def test_default_agents_cover_every_user(users: int) -> None:
    opts = LoadOptions(users=users)
    assert opts.embedded_agents() * 3 >= users  # three chats per autopilot agent
    assert LoadOptions(users=users, agent_users=2).embedded_agents() == 0
    assert LoadOptions(users=users, agents=7).embedded_agents() == 7


def test_wait_timeout_scales_with_the_pace() -> None:
    assert LoadOptions(pace="human").wait_timeout > LoadOptions(pace="fast").wait_timeout
    assert LoadOptions(pace="human", timeout=5).wait_timeout == 5


# 3, 8, 9. One summary, the same counts as Locust's, progress, the verdict -----


def _locust_table(log: str) -> dict[str, int]:
    """Request counts from Locust's final statistics table in its log."""
    table: dict[str, int] = {}
    for line in log.splitlines():
        if match := re.match(r"^WS\s+(.+?)\s{2,}(\d+)\s+\d+\(", line):
            table[match.group(1)] = int(match.group(2))  # the last table printed wins
    return table


def test_summary_counts_match_locusts_final_statistics(tmp_path: Path) -> None:
    prefix = tmp_path / "run"
    summary_json = tmp_path / "summary.json"
    proc = cli("load", "--users", "10", "--spawn-rate", "10", "--run-time", "7s", "--csv", str(prefix),
               "--summary-json", str(summary_json), "--progress", "--seed", "3", timeout=90)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(summary_json.read_text())
    with open(f"{prefix}_stats.csv", newline="") as fh:
        rows = [row for row in csv.DictReader(fh) if row["Name"] != "Aggregated"]
    csv_counts = {row["Name"]: int(row["Request Count"]) for row in rows}
    ours = {name: row["requests"] for name, row in summary["kpis"].items()}
    assert ours == csv_counts
    assert _locust_table(Path(f"{prefix}_locust.log").read_text()) == csv_counts  # Locust's own table
    assert csv_counts["connect"] > 0 and csv_counts["first reply"] > 0
    # one summary on stdout, none of Locust's tables; a progress line; verdict and exit status agree
    assert "Chat KPIs" in proc.stdout and "Aggregated" not in proc.stdout
    assert re.search(r"^\[\s*\d+s\] users \d+, chats \d+ \([\d.]+/s\), p95 queue wait", proc.stdout, re.M)
    assert proc.stdout.rstrip().endswith("result: PASS (0 failures)")
    assert summary["verdict"] == "result: PASS (0 failures)" and summary["exit_code"] == 0
    assert "chat(s) started, 0 abandoned while queued" in proc.stdout
    # the generator's own event-loop lag: measured through the run, in the summary and its JSON
    assert summary["loop_lag"]["samples"] > 0 and summary["loop_lag"]["processes"] == 1
    assert "Generator event-loop lag: p50 " in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_locust_stats_prints_locusts_tables_too(tmp_path: Path) -> None:
    proc = cli("load", "--users", "3", "--spawn-rate", "3", "--run-time", "3s", "--locust-stats", timeout=60)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Aggregated" in proc.stdout and "Chat KPIs" in proc.stdout


def test_abandons_are_counted_in_the_summary(tmp_path: Path) -> None:
    summary_json = tmp_path / "summary.json"
    proc = cli("load", "--users", "6", "--spawn-rate", "6", "--run-time", "4s", "--agents", "1", "--scenario",
               "abandon", "--summary-json", str(summary_json), timeout=60)
    summary = json.loads(summary_json.read_text())
    assert summary["abandons"] > 0, proc.stdout
    assert summary["kpis"]["abandon"]["requests"] == summary["abandons"]
    assert f"{summary['abandons']} abandoned while queued" in proc.stdout


def test_failed_run_says_fail_and_exits_1(tmp_path: Path) -> None:
    proc = cli("load", "--host", "ws://127.0.0.1:9/ws", "--users", "2", "--spawn-rate", "2", "--run-time", "2s",
               "--timeout", "1", timeout=60)
    assert proc.returncode == 1
    assert re.search(r"^result: FAIL \(\d+ failure\(s\)\)$", proc.stdout, re.M), proc.stdout
    assert "0 failure(s)" not in proc.stdout
    assert "nothing answered at ws://127.0.0.1:9/ws: is the server running?" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


# 5. Signals -------------------------------------------------------------------


def _ours(marker: str) -> list[int]:
    """Processes whose command line holds ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                pids.append(int(entry.name))
    return pids


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_locust_then_the_mock_and_prints_the_summary(
    tmp_path: Path, sig: signal.Signals, status: int
) -> None:
    seed = str(700_000 + os.getpid() % 1000 * 10 + int(sig))  # marks our children's command lines
    prefix = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "load", "--users", "6", "--spawn-rate", "6", "--run-time", "60s",
         "--seed", seed, "--csv", str(prefix)],
        cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # wait for Locust to be started, then for its first statistics
            lines.append(line)
            if line.startswith("running "):
                break
        deadline = time.monotonic() + 30
        while not _started_chats(prefix) and time.monotonic() < deadline:
            time.sleep(0.2)  # another process's file: nothing to await
        started = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=40)
        assert time.monotonic() - started < 25
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = "".join(lines) + out
    assert proc.returncode == status, text + err
    assert "Chat KPIs" in text and f"result: INTERRUPTED by {sig.name}" in text
    assert "Traceback" not in text + err
    assert "1001" not in text  # the mock was not stopped under Locust's users
    assert not re.search(r"^\[\s*\d+s\] users", text, re.M)  # no progress lines off a terminal
    assert _ours(seed) == []  # no orphans


def _started_chats(prefix: Path) -> bool:
    try:
        with open(f"{prefix}_stats.csv", newline="") as fh:
            return any(row["Name"] == "start chat" and int(row["Request Count"]) > 0 for row in csv.DictReader(fh))
    except (OSError, KeyError, ValueError):
        return False


# 10. Help and listings ----------------------------------------------------------


def test_every_load_and_serve_option_shows_its_default() -> None:
    for command in ("load", "serve"):
        proc = cli(command, "--help", timeout=30)
        assert proc.returncode == 0
        text = " ".join(proc.stdout.split())
        options = re.findall(r"(--[a-z][a-z-]+) [A-Z{]", proc.stdout)
        assert options, proc.stdout
        for option in ("--routing", "--pace", "--queues", "--seed"):
            assert re.search(re.escape(option) + r" .*?\(default: [^)]+\)", text), (command, option)
    serve = " ".join(cli("serve", "--help", timeout=30).stdout.split())
    for option in ("--max-chats-per-agent", "--merchant-id", "--log-level"):
        assert re.search(re.escape(option) + r" [^-]*?\(default: [^)]+\)", serve), option


def test_scenarios_listing_is_plain_wrapped_text() -> None:
    proc = subprocess.run([sys.executable, "-m", "simulator", "scenarios"], cwd=ROOT,
                          env=clean_env(COLUMNS="80"), capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0
    assert "`" not in proc.stdout
    assert all(len(line) <= 80 for line in proc.stdout.splitlines()), proc.stdout
    assert re.search(r"^happy_path\s+Happy path", proc.stdout, re.M)


def test_human_pace_default_agents_take_every_customer(tmp_path: Path) -> None:
    # 7 users is not a multiple of 3: users // 3 agents of 3 chats left one customer waiting
    summary_json = tmp_path / "summary.json"
    proc = cli("load", "--pace", "human", "--users", "7", "--spawn-rate", "7", "--run-time", "8s",
               "--summary-json", str(summary_json), timeout=90)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "with 3 autopilot agent(s)" in proc.stdout
    summary = json.loads(summary_json.read_text())
    assert summary["kpis"]["queue wait"]["requests"] == 7  # every customer had an agent
    assert summary["total_failures"] == 0


def test_serve_debug_log_is_not_drowned_by_faker() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "serve", "--port", "0", "--agents", "1",
                             "--log-level", "debug"], cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("webchat-sim serving "):
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0
    assert not [line for line in err.splitlines() if " faker" in line], err[:2000]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("reason", "says"),
    [
        ("nothing answered at ws://127.0.0.1:9/ws (connection refused)",
         "nothing answered at ws://h/ws: is the server running?"),
        ("HTTP 404 from ws://127.0.0.1:8765/nope",
         "ws://h/ws answered HTTP 404, not a websocket: is the URL (path) right?"),
    ],
)
def test_the_hint_names_what_to_check_when_no_connect_succeeded(reason: str, says: str) -> None:
    from simulator.load.runner import hint

    failed = {"kpis": {"connect": {"requests": 20, "failures": 20}},
              "failures": [{"name": "connect", "error": reason, "occurrences": 20}]}
    assert hint(failed, "ws://h/ws") == says
    some_ok = {**failed, "kpis": {"connect": {"requests": 20, "failures": 19}}}
    assert hint(some_ok, "ws://h/ws") is None
