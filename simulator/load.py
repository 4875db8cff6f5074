"""``webchat-sim load``: a headless Locust run with a chat-KPI summary.

With no ``--host`` the embedded mock server is started in a separate process
(asyncio there, gevent here), awaited through ``/healthz`` and stopped at the
end. Locust runs as a child process with this package's locustfile, writes its
own CSV files (and HTML report with ``--html``), and the summary is read from
those CSV files.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["KPI_ORDER", "LoadOptions", "MockProcess", "read_summary", "run_load"]

KPI_ORDER = (
    "connect",
    "start chat",
    "check queue position",
    "queue wait",
    "first reply",
    "message ack",
    "message delivery",
    "read receipt",
    "take chat",
    "ping",
    "reconnect",
    "close",
)


@dataclass(kw_only=True)
class LoadOptions:
    host: str | None = None
    users: int = 50
    spawn_rate: float = 10.0
    run_time: str = "30s"
    scenario: str = "happy_path"
    agents: int = 0  # autopilot agents of the embedded server (0: automatic)
    agent_users: int = 0  # AgentUsers driven by Locust (needed against a real backend)
    processes: int = 1
    csv: str | None = None
    html: str | None = None
    seed: int = 0
    pace: str = "fast"
    queues: str = "support"
    routing: str = "round-robin"
    timeout: float = 30.0
    summary_json: str | None = None
    locust_args: list[str] = field(default_factory=list)
    quiet: bool = False


class MockProcess:
    """The embedded mock server in a child process.

    Its stdout is read until it prints its URL (bounded by a deadline) and then
    drained by a thread; its stderr goes to a temporary file (shown if it fails
    to start), so a chatty server can never block on a full pipe."""

    def __init__(self, args: Sequence[str], *, startup_timeout: float = 30.0) -> None:
        cmd = [sys.executable, "-m", "simulator", "serve", "--host", "127.0.0.1", "--port", "0", *args]
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        try:
            self.url = self._read_url(startup_timeout)
            self.http = self.url.replace("ws://", "http://").rsplit("/", 1)[0]
            self.wait_healthy(startup_timeout)
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
                raise RuntimeError(f"mock server exited before it was ready:\n{self._stderr.read()[-4000:]}")
            if line.startswith("webchat-sim serving "):
                return line.split()[2]
        raise RuntimeError(f"mock server did not print its URL within {timeout:g}s")

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
                with urllib.request.urlopen(self.http + "/healthz", timeout=2) as resp:
                    body: dict[str, Any] = json.loads(resp.read())
                    return body
            except (urllib.error.URLError, OSError) as exc:
                last = exc
                time.sleep(0.05)  # polling an HTTP endpoint of another process: nothing to await
        raise RuntimeError(f"mock server not healthy after {timeout:g}s: {last}")

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


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def read_summary(prefix: str) -> dict[str, Any]:
    """The chat KPIs of a Locust CSV prefix: per operation count, failures,
    p50/p95/p99 and mean (ms), plus the failures by reason."""
    rows: dict[str, dict[str, Any]] = {}
    with open(f"{prefix}_stats.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["Name"] == "Aggregated":
                continue
            rows[row["Name"]] = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "p50_ms": _num(row["50%"]),
                "p95_ms": _num(row["95%"]),
                "p99_ms": _num(row["99%"]),
                "mean_ms": _num(row["Average Response Time"]),
                "per_second": _num(row["Requests/s"]),
            }
    failures: list[dict[str, Any]] = []
    path = Path(f"{prefix}_failures.csv")
    if path.exists():
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                failures.append({"name": row["Name"], "error": row["Error"], "occurrences": int(row["Occurrences"])})
    return {"kpis": rows, "failures": failures, "total_failures": sum(r["failures"] for r in rows.values())}


def print_summary(summary: dict[str, Any], out: IO[str]) -> None:
    kpis: dict[str, dict[str, Any]] = summary["kpis"]

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    untimed = {"rrweb chunk", "invalid frame", "server error", "message lost", "queue position", "reply language"}
    names = [n for n in KPI_ORDER if n in kpis] + sorted(n for n in kpis if n not in KPI_ORDER)
    out.write("\nChat KPIs (milliseconds)\n")
    out.write(f"{'operation':22} {'count':>7} {'fail':>5} {'p50':>7} {'p95':>7} {'p99':>7} {'mean':>7}\n")
    for name in names:
        r = kpis[name]
        timed = name not in untimed and r["p50_ms"] is not None
        cols = [fmt(r[k]) if timed else "-" for k in ("p50_ms", "p95_ms", "p99_ms", "mean_ms")]
        out.write(
            f"{name:22} {r['requests']:7d} {r['failures']:5d} {cols[0]:>7} {cols[1]:>7} {cols[2]:>7} {cols[3]:>7}\n"
        )
    if summary["failures"]:
        out.write("\nFailures\n")
        for f in summary["failures"][:20]:
            out.write(f"{f['occurrences']:7d}  {f['name']}: {f['error']}\n")
    out.write(f"\n{summary['total_failures']} failure(s)\n")


def locust_command(opts: LoadOptions, host: str, prefix: str) -> list[str]:
    locustfile = Path(__file__).with_name("locustfile.py")
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--users",
        str(opts.users),
        "--spawn-rate",
        str(opts.spawn_rate),
        "--run-time",
        opts.run_time,
        "--host",
        host,
        "--csv",
        prefix,
        "--only-summary",
        "--stop-timeout",
        "5",
        "--scenario",
        opts.scenario,
        "--pace",
        opts.pace,
        "--seed",
        str(opts.seed),
        "--queues",
        opts.queues,
        "--chat-timeout",
        str(opts.timeout),
    ]
    if opts.processes != 1:
        cmd += ["--processes", str(opts.processes)]
    if opts.html:
        cmd += ["--html", opts.html]
    if opts.agent_users > 0:
        cmd += ["--agent-users", str(opts.agent_users)]
        if opts.routing == "manual":
            cmd += ["--manual-routing"]
    cmd += opts.locust_args
    cmd += ["AgentUser", "CustomerUser"] if opts.agent_users > 0 else ["CustomerUser"]
    return cmd


def run_load(opts: LoadOptions, out: IO[str] = sys.stdout) -> int:
    mock: MockProcess | None = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    prefix = opts.csv
    if prefix is None:
        tmp = tempfile.TemporaryDirectory(prefix="webchat-sim-")
        prefix = os.path.join(tmp.name, "run")
    try:
        host = opts.host
        if host is None:
            agents = opts.agents
            if agents <= 0:
                agents = 0 if opts.agent_users > 0 else max(2, opts.users // 3)
            mock = MockProcess(
                [
                    "--agents",
                    str(agents),
                    "--pace",
                    "fast" if opts.pace != "human" else "human",
                    "--seed",
                    str(opts.seed),
                    "--queues",
                    opts.queues,
                    "--routing",
                    opts.routing,
                    "--max-chats-per-agent",
                    "3",
                    "--rate",
                    "1000",
                    "--burst",
                    "2000",
                ]
            )
            host = mock.url
            out.write(f"embedded mock server at {host} with {agents} autopilot agent(s)\n")
            out.flush()
        cmd = locust_command(opts, host, prefix)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env.pop(var, None)
        proc = subprocess.run(
            cmd,
            env=env,
            stdout=None if not opts.quiet else subprocess.DEVNULL,
            stderr=None if not opts.quiet else subprocess.PIPE,
            text=True,
            check=False,
        )
        if not Path(f"{prefix}_stats.csv").exists():
            out.write(f"locust failed (exit {proc.returncode}) before writing statistics\n")
            if proc.stderr:
                out.write(proc.stderr[-4000:])
            return proc.returncode or 2
        summary = read_summary(prefix)
        summary["locust_exit_code"] = proc.returncode
        print_summary(summary, out)
        if opts.summary_json:
            Path(opts.summary_json).write_text(json.dumps(summary, indent=2))
        return 1 if summary["total_failures"] or proc.returncode else 0
    finally:
        if mock is not None:
            mock.stop()
        if tmp is not None:
            tmp.cleanup()
