"""``webchat-sim check``, the conformance suite: it passes against the
embedded mock (JUnit file included) and fails loudly and specifically
against broken backends (tests/broken_backends.py: threads of this process,
asyncio; the checker runs as a subprocess, gevent stays out of here)."""

from __future__ import annotations

import re
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.load.runner import MockProcess
from tests.broken_backends import BrokenBackend
from tests.cli import run_cli

pytestmark = pytest.mark.timeout(120)

ROW = re.compile(r"^(?P<name>[a-z][a-z ]*?)\s{2,}(?P<row>\S+)\s+(?P<result>pass|FAIL .*|skip .*)$")


def rows(stdout: str) -> dict[str, str]:
    """The table: probe name -> result text."""
    found = {}
    for line in stdout.splitlines():
        if (match := ROW.match(line)) is not None:
            found[match["name"]] = match["result"]
    return found


@pytest.fixture(scope="module")
def mock() -> Iterator[MockProcess]:
    """A real backend behind the broken proxies (its own child process)."""
    process = MockProcess(["--agents", "0", "--pace", "fast", "--rate", "1000", "--burst", "2000",
                           "--position-interval", "0.2", "--status-interval", "0.2"])
    try:
        yield process
    finally:
        process.stop()


def test_the_suite_passes_against_the_embedded_mock(tmp_path: Path) -> None:
    junit = tmp_path / "check.xml"
    started = time.monotonic()
    proc = run_cli("check", "--junit", str(junit), timeout=90)
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = rows(proc.stdout)
    assert len(table) >= 19, proc.stdout
    assert set(table.values()) == {"pass"}, proc.stdout
    for probe in ("start", "queue position", "typing", "resume", "isolation", "bad input", "rrweb"):
        assert probe in table
    assert re.search(r"^result: PASS \(\d+ probes: \d+ passed, 0 failed, 0 skipped, in [\d.]+ s\)$", proc.stdout, re.M)
    assert took < 60, f"the suite took {took:.1f} s"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert [case.get("name") for case in suite.iter("testcase")] == list(table)
    assert suite.get("tests") == str(len(table)) and suite.get("failures") == "0"


def test_the_suite_passes_with_manual_routing_against_a_given_host(mock: MockProcess) -> None:
    """The same probes against --host (a mock with round-robin routing, the checker told manual: it engages)."""
    proc = run_cli("check", "--host", mock.url, "--routing", "manual", "--probe", "routing,typing,close", timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert rows(proc.stdout) == {"routing": "pass", "typing": "pass", "close": "pass"}


def test_nothing_listening_is_one_line_and_exit_1_at_once() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    started = time.monotonic()
    proc = run_cli("check", "--host", f"ws://127.0.0.1:{port}/ws", timeout=30)
    assert proc.returncode == 1
    assert time.monotonic() - started < 15
    assert proc.stdout.strip().splitlines() == [
        f"webchat-sim check: cannot reach the backend: nothing answered at ws://127.0.0.1:{port}/ws "
        "(connection refused)"
    ]
    assert "Traceback" not in proc.stderr


def test_a_backend_that_never_answers_fails_every_probe_it_reaches_in_bounded_time(tmp_path: Path) -> None:
    backend = BrokenBackend("silent")
    junit = tmp_path / "silent.xml"
    try:
        started = time.monotonic()
        proc = run_cli("check", "--host", backend.url, "--probe-timeout", "1", "--junit", str(junit), timeout=60)
        took = time.monotonic() - started
    finally:
        backend.stop()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    table = rows(proc.stdout)
    assert table["ping"] == "FAIL customer: timed out after 0.9 s waiting for the answer to a ping"
    assert table["start"] in (
        "FAIL start chat: timed out after 0.9 s waiting for new conversation",
        "FAIL probe timed out after 1 s (waiting, customer: new conversation)",
    )
    assert table["typing"] == "skip start failed (every chat begins with it)"
    assert "result: FAIL" in proc.stdout
    assert took < 30, f"{took:.1f} s"
    failures = [c.get("name") for c in ET.parse(junit).getroot().iter("testcase") if c.find("failure") is not None]
    assert "start" in failures and "ping" in failures


def test_a_backend_that_echoes_typing_to_its_author_fails_the_typing_probe(mock: MockProcess) -> None:
    backend = BrokenBackend("echo-typing", mock.url)
    try:
        proc = run_cli("check", "--host", backend.url, "--probe-timeout", "3", "--probe", "messages,typing",
                       timeout=60)
    finally:
        backend.stop()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert rows(proc.stdout) == {"messages": "pass", "typing": "FAIL typing echoed to its author (the customer)"}


def test_a_backend_that_sends_invalid_frames_fails_naming_the_field(mock: MockProcess) -> None:
    backend = BrokenBackend("bad-epoch", mock.url)
    try:
        proc = run_cli("check", "--host", backend.url, "--probe-timeout", "3", timeout=90)
    finally:
        backend.stop()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    table = rows(proc.stdout)
    assert table["ping"] == "pass"  # no message frame there: the proxy is otherwise faithful
    assert table["start"] == (
        'FAIL customer got an invalid frame: message.message_epoch: expected integer, got string "soon"'
    ), proc.stdout
