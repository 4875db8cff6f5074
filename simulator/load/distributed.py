"""``webchat-sim load --master`` / ``--worker``: Locust's own distributed
mode behind the runner.

The master runs headless with ``--master --expect-workers N``: it starts the
embedded mock (unless ``--host``), waits for its workers, dispatches the users
and aggregates what the workers report (Locust request statistics named after
the chat KPIs), and prints the summary. A worker runs
``locust --worker --master-host H`` with the packaged locustfile: the master
sends it the host and the parsed options with every spawn (Locust >= 2.21:
every option that is not one of Locust's own, so ``--scenario``, ``--pace``,
``--chaos`` … reach the workers as given to the master), it starts no mock and
prints no summary.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .locust_cli import locust_invocation

if TYPE_CHECKING:
    from .runner import LoadOptions

__all__ = [
    "EXPECT_WORKERS_MAX_WAIT",
    "master_args",
    "master_report",
    "start_worker",
    "worker_command",
    "workers_connected",
]

EXPECT_WORKERS_MAX_WAIT = 120
"""Seconds the master waits for its workers before it gives up (exit 1)."""

_CONNECTED = re.compile(r"reported as ready\. (\d+) workers connected")
_REPORTED = re.compile(r"webchat-sim: worker (\S+) reported (\d+) request")


def master_args(opts: LoadOptions) -> list[str]:
    """Locust's arguments for ``--master`` (none for a local run)."""
    if opts.role != "master":
        return []
    return [
        "--master",
        "--expect-workers",
        str(opts.expect_workers),
        "--expect-workers-max-wait",
        str(EXPECT_WORKERS_MAX_WAIT),
        "--master-bind-host",
        opts.master_bind_host,
        "--master-bind-port",
        str(opts.master_bind_port),
    ]


def workers_connected(log_text: str) -> int:
    """The most workers the master's Locust log says were connected at once."""
    return max((int(m.group(1)) for m in _CONNECTED.finditer(log_text)), default=0)


def master_report(log_path: str, summary: dict[str, Any], expected: int) -> str:
    """Fill ``summary["workers"]`` (connected at most) and
    ``summary["worker_requests"]`` (what each reported, by worker id) from the
    master's Locust log; return the line that says it."""
    log_text = Path(log_path).read_text(errors="replace")
    summary["workers"] = workers_connected(log_text)
    requests = summary["worker_requests"] = {m.group(1): int(m.group(2)) for m in _REPORTED.finditer(log_text)}
    counts = ", ".join(str(n) for n in requests.values()) or "none"
    connected = summary["workers"]
    return f"master: {connected} worker(s) connected (of {expected} expected); requests reported per worker: {counts}"


def worker_command(opts: LoadOptions) -> list[str]:
    cmd = [
        *locust_invocation(),
        "--worker",
        "--master-host",
        opts.master_host,
        "--master-port",
        str(opts.master_port),
    ]
    if opts.processes != 1:
        cmd += ["--processes", str(opts.processes)]
    cmd += opts.locust_args
    cmd += ["AgentUser", "CustomerUser"] if opts.agent_users > 0 else ["CustomerUser"]
    return cmd


def start_worker(opts: LoadOptions, out: IO[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start the worker's Locust, in its own session, its log on this
    process's stdout and stderr; the caller waits for it."""
    out.write(
        f"Locust worker of the master at {opts.master_host}:{opts.master_port} "
        "(the master sends the host, the users and the options, and prints the summary)\n"
    )
    out.flush()
    return subprocess.Popen(worker_command(opts), env=env, start_new_session=True)
