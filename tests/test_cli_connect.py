"""``webchat-sim load`` against a dead or wrong ``--host``: the real command line,
in a child process, judged by Locust's CSV files and the exit status.

A host where nothing listens and a path that answers HTTP 404 must give one
row in the failure table (no per-user names, emails or query strings in the
reason), a bounded number of connect attempts (capped exponential backoff, not
thousands a second), no traceback, and exit status 1.
"""

from __future__ import annotations

import csv
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.cli import ROOT, clean_env

USERS = 5
RUN_TIME = "5s"
MAX_ATTEMPTS = 100  # 5 users for 5 s with backoff: about 20; without it, thousands


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def load(host: str, tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], str]:
    prefix = str(tmp_path / "run")
    cmd = [sys.executable, "-m", "simulator", "load", "--host", host, "--users", str(USERS), "--spawn-rate",
           str(USERS), "--run-time", RUN_TIME, "--csv", prefix, *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60, check=False)
    return proc, prefix


def rows(path: str) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def check_run(proc: subprocess.CompletedProcess[str], prefix: str, expected_reason: str) -> int:
    """The common verdict; returns the number of connect attempts."""
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    failures = [r for r in rows(f"{prefix}_failures.csv") if r["Name"] == "connect"]
    assert [r["Error"] for r in failures] == [expected_reason], failures
    (stats,) = [r for r in rows(f"{prefix}_stats.csv") if r["Name"] == "connect"]
    attempts = int(stats["Request Count"])
    assert int(stats["Failure Count"]) == attempts == int(failures[0]["Occurrences"])
    assert USERS <= attempts < MAX_ATTEMPTS, attempts  # every user tried at once, then backed off
    return attempts


@pytest.mark.timeout(90)
@pytest.mark.parametrize("agents", [0, 1], ids=["customers", "customers-and-an-agent"])
def test_nothing_listening_gives_one_failure_row_and_backs_off(tmp_path: Path, agents: int) -> None:
    port = closed_port()
    extra = ["--agent-users", str(agents)] if agents else []
    proc, prefix = load(f"ws://127.0.0.1:{port}/ws", tmp_path, *extra)
    check_run(proc, prefix, f"nothing answered at ws://127.0.0.1:{port}/ws (connection refused)")


class _NotFound(BaseHTTPRequestHandler):
    """Any GET, websocket handshake included, answers 404; requests are counted."""

    requests = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            type(self).requests += 1
        self.send_error(404, "no websocket here")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_404() -> Iterator[tuple[int, type[_NotFound]]]:
    handler = type("NotFound", (_NotFound,), {"requests": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.timeout(90)
def test_a_wrong_path_gives_one_http_404_row_and_backs_off(
    tmp_path: Path, http_404: tuple[int, type[_NotFound]]
) -> None:
    port, handler = http_404
    proc, prefix = load(f"ws://127.0.0.1:{port}/nope", tmp_path)
    attempts = check_run(proc, prefix, f"HTTP 404 from ws://127.0.0.1:{port}/nope")
    assert handler.requests == attempts  # the server saw each attempt once, no more
