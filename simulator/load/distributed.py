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
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from .runner import LoadOptions

__all__ = ["EXPECT_WORKERS_MAX_WAIT", "master_args", "start_worker", "worker_command", "workers_connected"]

EXPECT_WORKERS_MAX_WAIT = 120
"""Seconds the master waits for its workers before it gives up (exit 1)."""

_CONNECTED = re.compile(r"reported as ready\. (\d+) workers connected")


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


def worker_command(opts: LoadOptions) -> list[str]:
    locustfile = Path(__file__).with_name("locustfile.py")
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
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
