"""Locust end to end: the top-level locustfile against ``webchat-sim serve``,
``--processes 2``, and ``webchat-sim load`` with the embedded server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.load.runner import MockProcess, read_summary
from tests.cli import ROOT, clean_env

pytestmark = pytest.mark.timeout(120)



@pytest.fixture(scope="module")
def mock() -> Iterator[MockProcess]:
    server = MockProcess(["--agents", "4", "--pace", "fast", "--seed", "9", "--rate", "1000", "--burst", "2000"])
    try:
        yield server
    finally:
        server.stop()


def locust(mock: MockProcess, tmp_path: Path, *extra: str) -> dict[str, object]:
    prefix = str(tmp_path / "run")
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless", "--users", "6",
           "--spawn-rate", "6", "--run-time", "5s", "--stop-timeout", "3", "--host", mock.url, "--csv", prefix,
           "--pace", "fast", "--seed", "1", "--scenario", "happy_path:2,shopping_assist", *extra, "CustomerUser"]
    proc = subprocess.run(cmd, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return read_summary(prefix)


def test_locustfile_against_a_running_server(mock: MockProcess, tmp_path: Path) -> None:
    summary = locust(mock, tmp_path)
    kpis = summary["kpis"]
    assert isinstance(kpis, dict)
    for name in ("connect", "start chat", "queue wait", "first reply", "message ack", "read receipt"):
        assert kpis[name]["requests"] > 0, name
        assert kpis[name]["p50_ms"] is not None
    assert summary["total_failures"] == 0, summary["failures"]


def test_locust_with_two_processes(mock: MockProcess, tmp_path: Path) -> None:
    summary = locust(mock, tmp_path, "--processes", "2")
    kpis = summary["kpis"]
    assert isinstance(kpis, dict)
    assert kpis["start chat"]["requests"] > 0
    assert summary["total_failures"] == 0, summary["failures"]


def test_webchat_sim_load_with_the_embedded_server(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    html = tmp_path / "report.html"
    cmd = [sys.executable, "-m", "simulator", "load", "--users", "8", "--spawn-rate", "8", "--run-time", "5s",
           "--scenario", "happy_path:3,abandon,reconnect", "--summary-json", str(out), "--html", str(html),
           "--csv", str(tmp_path / "stats")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=100,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Chat KPIs" in proc.stdout and "embedded mock server" in proc.stdout
    summary = json.loads(out.read_text())
    assert summary["total_failures"] == 0
    assert summary["kpis"]["queue wait"]["requests"] > 0
    assert summary["kpis"]["first reply"]["p99_ms"] is not None
    assert html.stat().st_size > 1000
    assert (tmp_path / "stats_stats.csv").exists()


def test_load_exits_non_zero_when_there_are_failures(tmp_path: Path) -> None:
    # a host where nothing listens: every connect fails
    cmd = [sys.executable, "-m", "simulator", "load", "--host", "ws://127.0.0.1:9/ws", "--users", "2",
           "--spawn-rate", "2", "--run-time", "2s", "--timeout", "1"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode != 0
    assert "connect" in proc.stdout and "failure" in proc.stdout
