"""``webchat-sim serve`` as a user runs it: the real CLI in a subprocess.

A port in use (or any address that cannot be bound) is one line on stderr and
exit status 1; an out-of-range or malformed option is one argparse error line
and exit status 2, checked before anything binds. Only 127.0.0.1 and random
free ports; every run is bounded in time.
"""

from __future__ import annotations

import errno
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from simulator.mock.app import bind_error_message
from tests.cli import clean_env

pytestmark = pytest.mark.timeout(60)

RUN_TIMEOUT = 20.0  # seconds one CLI run may take (it should take about one)


def _serve(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``webchat-sim serve ARGS`` to completion; the result and its duration."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "simulator", "serve", *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=RUN_TIMEOUT,
        check=False,
    )
    return proc, time.monotonic() - started


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something (this test) is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


# ---------------------------------------------------------------------------
# Bind errors: one line, exit 1


def test_port_in_use_is_one_line_and_exit_1(busy_port: int) -> None:
    proc, elapsed = _serve("--host", "127.0.0.1", "--port", str(busy_port), "--agents", "1")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == f"webchat-sim: port {busy_port} on 127.0.0.1 is in use (try --port 0)\n"
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "serving" not in proc.stdout
    assert elapsed < RUN_TIMEOUT


@pytest.mark.parametrize(
    ("error", "host", "port", "expected"),
    [
        (
            OSError(errno.EADDRINUSE, "error while attempting to bind on address: address already in use"),
            "127.0.0.1",
            8765,
            "port 8765 on 127.0.0.1 is in use (try --port 0)",
        ),
        (
            OSError(errno.EADDRNOTAVAIL, "cannot assign requested address"),
            "192.0.2.1",
            8765,
            "cannot listen on 192.0.2.1 port 8765: not an address of this machine (try --host 127.0.0.1)",
        ),
        (
            OSError(errno.EACCES, "permission denied"),
            "127.0.0.1",
            80,
            "permission denied to listen on port 80 on 127.0.0.1 (ports below 1024 need privileges; try --port 0)",
        ),
        (
            OSError(errno.EACCES, "permission denied"),
            "127.0.0.1",
            8765,
            "permission denied to listen on port 8765 on 127.0.0.1 (try --port 0)",
        ),
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "no-such-host.invalid",
            8765,
            "cannot resolve --host 'no-such-host.invalid' (Name or service not known); try --host 127.0.0.1",
        ),
        (
            OSError(errno.EMFILE, "Too many open files"),
            "127.0.0.1",
            8765,
            "cannot listen on port 8765 on 127.0.0.1: Too many open files",
        ),
    ],
)
def test_bind_error_messages_are_one_clear_line(error: OSError, host: str, port: int, expected: str) -> None:
    message = bind_error_message(error, host, port)
    assert message == expected
    assert "\n" not in message


# ---------------------------------------------------------------------------
# Option values: one argparse error line, exit 2, before binding


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--port", "99999"], "argument --port: must be between 0 and 65535, got 99999"),
        (["--port", "-1"], "argument --port: must be between 0 and 65535, got -1"),
        (["--port", "http"], "argument --port: expected an integer, got 'http'"),
        (["--agents", "-1"], "argument --agents: must be 0 or more, got -1"),
        (["--max-chats-per-agent", "0"], "argument --max-chats-per-agent: must be 1 or more, got 0"),
        (["--max-chats-per-agent", "-2"], "argument --max-chats-per-agent: must be 1 or more, got -2"),
        (["--coupon-probability", "1.5"], "argument --coupon-probability: must be between 0 and 1, got 1.5"),
        (["--item-probability", "-0.1"], "argument --item-probability: must be between 0 and 1, got -0.1"),
        (["--item-probability", "nan"], "argument --item-probability: expected a finite number, got 'nan'"),
        (["--exchanges", "x"], "argument --exchanges: expected N or LOW-HIGH (e.g. 3-6), got 'x'"),
        (["--exchanges", "5-2"], "argument --exchanges: LOW must not exceed HIGH, got '5-2'"),
        (["--exchanges", "0"], "argument --exchanges: must be at least 1, got '0'"),
        (["--position-interval", "-1"], "argument --position-interval: must be 0 or more, got -1"),
        (["--status-interval", "-0.5"], "argument --status-interval: must be 0 or more, got -0.5"),
        (["--reconnect-grace", "-3"], "argument --reconnect-grace: must be 0 or more, got -3"),
        (["--idle-timeout", "-1"], "argument --idle-timeout: must be 0 or more, got -1"),
        (["--ping-interval", "-20"], "argument --ping-interval: must be 0 or more, got -20"),
        (["--max-frame-bytes", "0"], "argument --max-frame-bytes: must be 1 or more, got 0"),
        (["--rate", "0"], "argument --rate: must be more than 0, got 0"),
        (["--rate", "inf"], "argument --rate: expected a finite number, got 'inf'"),
        (["--burst", "0"], "argument --burst: must be 1 or more, got 0"),
        (["--queues", ""], "argument --queues: expected one or more comma-separated queue names, got ''"),
        (["--queues", " , "], "argument --queues: expected one or more comma-separated queue names, got ' , '"),
    ],
)
def test_bad_option_value_is_one_error_line_and_exit_2(busy_port: int, args: list[str], expected: str) -> None:
    # A busy --port too (unless the test is about --port): the value is refused
    # before anything binds, so the port never comes into it.
    port = [] if args[0] == "--port" else ["--port", str(busy_port)]
    proc, elapsed = _serve(*port, *args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    [line] = proc.stderr.splitlines()  # one line: no usage block, no traceback
    assert line.startswith(f"webchat-sim serve: error: {expected}"), line  # maybe a "(see … --help)" hint after
    assert "in use" not in line
    assert proc.stdout == ""
    assert elapsed < RUN_TIMEOUT


# ---------------------------------------------------------------------------
# Edge values that are fine


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next line of ``proc``'s stdout, waiting at most ``timeout`` seconds."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no output within {timeout} s")
    return proc.stdout.readline()


def test_edge_values_are_accepted() -> None:
    args = ["--port", "0", "--agents", "0", "--exchanges", "2", "--coupon-probability", "0"]
    args += ["--item-probability", "1", "--idle-timeout", "0", "--ping-interval", "0", "--reconnect-grace", "0"]
    args += ["--queues", " support , sales,,", "--max-chats-per-agent", "1", "--rate", "0.5", "--burst", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        line = _read_line(proc, RUN_TIMEOUT)
        assert line.startswith("webchat-sim serving ws://127.0.0.1:"), line
        assert "queues: support,sales" in line
        assert "autopilot agents: 0" in line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(RUN_TIMEOUT) == 0
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
