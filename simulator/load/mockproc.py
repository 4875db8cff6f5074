"""The embedded mock server in a child process, as ``webchat-sim load``,
``check`` and ``capacity`` start it (:class:`MockProcess`)."""

from __future__ import annotations

import contextlib
import json
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from ..errors import MockStartError

__all__ = ["MockProcess"]

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""The mock is on this machine: never ask a proxy for it."""


class MockProcess:
    """The embedded mock server in a child process.

    Its stdout is read until it prints its URL (bounded by a deadline) and then
    drained by a thread; its stderr goes to a temporary file (shown if it fails
    to start), so a chatty server can never block on a full pipe."""

    def __init__(self, args: Sequence[str], *, startup_timeout: float = 30.0) -> None:
        cmd = [sys.executable, "-m", "simulator", "serve", "--host", "127.0.0.1", "--port", "0", *args]
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the process
        # its own session: a Ctrl-C on the terminal reaches the runner, which stops Locust before the mock
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self._stderr, text=True, start_new_session=True
        )
        try:
            self.url = self._read_url(startup_timeout)
            self.http = self.url.replace("ws://", "http://").rsplit("/", 1)[0]
            health = self.wait_healthy(startup_timeout)
            rest_url = health.get("rest_url")
            self.rest_url: str | None = rest_url if isinstance(rest_url, str) else None
            """The REST base URL the mock reports (``GET /healthz``)."""
        except BaseException:
            self.stop()
            raise
        threading.Thread(target=self._drain, name="mock-stdout", daemon=True).start()

    def _read_url(self, timeout: float) -> str:
        stdout = self.proc.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([stdout], [], [], left)
            if not ready:
                break
            line = stdout.readline()
            if not line:
                self.proc.wait(5)
                self._stderr.seek(0)
                lines = [x for x in self._stderr.read().splitlines() if x.strip()]
                raise MockStartError(
                    "the embedded mock server exited before it was ready: " + (lines[-1] if lines else "no message")
                )
            if line.startswith("webchat-sim serving "):
                return line.split()[2]
        raise MockStartError(f"the embedded mock server did not print its URL within {timeout:g}s")

    def _drain(self) -> None:
        stdout = self.proc.stdout
        if stdout is not None:
            with contextlib.suppress(ValueError, OSError):
                for _ in stdout:
                    pass

    def wait_healthy(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with _NO_PROXY.open(self.http + "/healthz", timeout=2) as resp:
                    body: dict[str, Any] = json.loads(resp.read())
                    return body
            except (urllib.error.URLError, OSError) as exc:
                last = exc
                time.sleep(0.05)  # polling an HTTP endpoint of another process: nothing to await
        raise MockStartError(f"the embedded mock server is not healthy after {timeout:g}s: {last}")

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stdout is not None:
            with contextlib.suppress(OSError):
                self.proc.stdout.close()
        self._stderr.close()
        return int(self.proc.returncode or 0)
