"""The load generator under the mock's faults (``webchat-sim load --fault``):
each fault's effect is seen by the scenarios and the KPIs, and the failures
are the expected ones with clear reasons, never crashes. Short runs against
the embedded mock on 127.0.0.1, each bounded in time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli import run_cli

pytestmark = pytest.mark.timeout(120)


def _load(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    out = tmp_path / "summary.json"
    proc = run_cli(
        "load",
        "--users",
        "5",
        "--run-time",
        "8s",
        "--pace",
        "fast",
        "--no-progress",
        "--summary-json",
        str(out),
        *args,
        timeout=110,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    summary: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    return proc.returncode, summary, proc.stdout


def _reasons(summary: dict[str, Any]) -> list[str]:
    return [str(f) for f in summary.get("failures", [])]


def test_duplicated_frames_are_not_second_messages(tmp_path: Path) -> None:
    code, summary, out = _load(tmp_path, "--fault", "duplicate=0.3")
    assert code == 0, out
    assert summary["chats"] > 0 and summary["total_failures"] == 0


def test_latency_shows_in_the_kpis_and_fails_nothing(tmp_path: Path) -> None:
    code, summary, out = _load(tmp_path, "--fault", "latency=120ms-120ms")
    assert code == 0, out
    assert summary["total_failures"] == 0
    assert summary["kpis"]["message ack"]["p50_ms"] >= 110  # every server frame waits 120 ms


def test_dropped_frames_are_timeouts_with_their_reason(tmp_path: Path) -> None:
    code, summary, out = _load(tmp_path, "--fault", "drop=0.15", "--timeout", "2")
    assert code == 1, out
    reasons = _reasons(summary)
    assert reasons and all("timed out after 2 s" in r or "after 2 s" in r for r in reasons), reasons


def test_abrupt_disconnects_are_connection_failures_with_their_reason(tmp_path: Path) -> None:
    code, summary, out = _load(tmp_path, "--fault", "disconnect=0.03")
    assert code == 1, out
    reasons = _reasons(summary)
    assert reasons and all("1006" in r for r in reasons), reasons


def test_a_fault_with_host_is_one_line() -> None:
    proc = run_cli("load", "--host", "ws://127.0.0.1:9/ws", "--fault", "drop=0.1", timeout=30)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert "--fault" in line and "--host" in line
