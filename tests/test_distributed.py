"""``webchat-sim load --master`` / ``--worker``: Locust's distributed mode.
A master and two workers as separate processes on 127.0.0.1: the workers
start no mock and print no summary, the master's summary counts the chats of
both, and the options given to the master alone (``--chaos``) reach the
workers (Locust sends the parsed options with every spawn)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import ROOT, clean_env, run_cli

pytestmark = pytest.mark.timeout(150)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "simulator", "load", *args], cwd=ROOT, env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_master_and_two_workers_aggregate_on_the_master(tmp_path: Path) -> None:
    port = free_port()
    summary_path = tmp_path / "summary.json"
    master = start("--master", "--expect-workers", "2", "--master-bind-host", "127.0.0.1", "--master-bind-port",
                   str(port), "--users", "6", "--spawn-rate", "6", "--run-time", "6s", "--pace", "fast",
                   "--chaos", "disconnect=0.05", "--summary-json", str(summary_path))
    workers = [start("--worker", "--master-host", "127.0.0.1", "--master-port", str(port)) for _ in range(2)]
    procs = [master, *workers]
    try:
        master_out, _ = master.communicate(timeout=100)
        worker_outs = [w.communicate(timeout=30)[0] for w in workers]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert master.returncode == 0, master_out[-3000:]
    summary = json.loads(summary_path.read_text())
    assert summary["chats"] > 0 and summary["total_failures"] == 0, summary["failures"]
    assert summary["workers"] == 2
    assert "master: 2 worker(s) connected (of 2 expected)" in master_out
    requests = summary["worker_requests"]
    assert len(requests) == 2 and all(n > 0 for n in requests.values()), requests  # each worker ran chats
    total = sum(int(row["requests"]) for row in summary["kpis"].values())
    assert sum(requests.values()) == total  # the master's statistics are exactly what the workers reported
    assert summary["chaos_drops"] > 0  # --chaos was given to the master only: the workers got it from there
    assert summary["loop_lag"]["processes"] == 2 and summary["loop_lag"]["samples"] > 0  # each worker's loop lag
    for proc, out in zip(workers, worker_outs, strict=True):
        assert proc.returncode == 0, out[-3000:]
        assert "worker done (Locust exit status 0)" in out
        assert "embedded mock server" not in out and "Chat KPIs" not in out and "Traceback" not in out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--master", "--worker"), "argument --worker: not allowed with argument --master"),
        (("--master", "--processes", "2"), "--master runs no users itself"),
        (("--master", "--expect-workers", "0"), "argument --expect-workers: must be more than 0"),
        (("--worker", "--master-port", "70000"), "argument --master-port: must be a port from 1 to 65535"),
    ],
)
def test_distributed_mistakes_are_one_line(args: tuple[str, ...], says: str) -> None:
    proc = run_cli("load", *args, timeout=30)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("webchat-sim load: error: ") and says in lines[0], proc.stderr
