"""``webchat-sim check`` as a user meets it: mistakes are one line and exit 2
before anything starts; the help lists the command."""

from __future__ import annotations

import pytest

from tests.cli import run_cli

pytestmark = pytest.mark.timeout(60)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "http://127.0.0.1:8765/ws"], '--host must be a websocket URL such as ws://127.0.0.1:8765/ws'),
        (["--probe", "teleport"], "unknown probe 'teleport'; the probes: ping, agent connect, start"),
        (["--probe-timeout", "0"], "argument --probe-timeout: must be more than 0 (got 0)"),
        (["--junit", "/nonexistent/folder/check.xml"], "--junit: no folder /nonexistent/folder for"),
        (["--routing", "random"], "argument --routing: invalid choice: 'random'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    proc = run_cli("check", *args, timeout=30)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in one_line(proc.stderr)
    assert proc.stdout == ""


def test_the_help_lists_check() -> None:
    proc = run_cli("--help", timeout=30)
    assert proc.returncode == 0
    assert "check" in proc.stdout and "conformance suite" in proc.stdout
    proc = run_cli("check", "--help", timeout=30)
    assert proc.returncode == 0 and "--probe-timeout" in proc.stdout and "--junit" in proc.stdout
