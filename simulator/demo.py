"""``webchat-sim demo``: a support desk that looks alive from the first second.

One command runs, on this machine:

* the mock server in this process (asyncio): the websocket, REST, the pages
  and ``/metrics``, with autopilot agents (``--agents``, default 3);
* a background population of simulated customers in a child process
  (Locust, gevent: the two never share a process), seeded, at ``--pace``
  (human by default), arriving at about ``--arrival-rate`` chats a second,
  running all eight scenario kinds mixed, in ``--languages``.

It prints the dashboard URL (``--open`` opens it in a browser), then a status
line every few seconds, until Ctrl-C (or ``--run-time``): then it stops the
customers first, the server last, and prints what it served.

The desk survives restarts: conversations, queues and statistics are kept in
a SQLite file (``--db PATH``; by default ``demo.db`` under the user's data
directory, ``$XDG_DATA_HOME/webchat-sim`` or ``~/.local/share/webchat-sim``;
``--no-db``: memory only), as ``serve --db`` keeps them.

Arrivals: ``users`` customers each start a chat at most every ``pacing``
seconds (Locust's ``--chat-pacing``), ``users = ceil(arrival_rate ×
pacing)``; the pacing is longer than a chat usually lasts at that pace (180 s
human, 4 s fast), so the rate holds whatever the chat length. The first
customers spawn one a second (fast: ten), so the queue fills at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import sys
import tempfile
import webbrowser
from dataclasses import dataclass, field
from typing import Any, TextIO

from .errors import BindError, StoreError
from .fake import parse_languages
from .load.locust_cli import locust_invocation
from .mock.app import MockOptions, run_loop, serve_until_stopped
from .mock.server import WebchatServer
from .pace import Pace

__all__ = ["DEMO_MIX", "DemoOptions", "parse_languages", "run_demo"]

DEMO_MIX = "happy_path:4,shopping_assist:2,multilingual:2,long_chat:1,abandon:1,reconnect:1,rrweb_session:1,rush_hour:1"
"""The eight scenario kinds, mostly ordinary chats."""

_PACING = {Pace.HUMAN: 180.0, Pace.FAST: 4.0, Pace.NONE: 2.0}
"""Seconds between two chats of one simulated customer, per pace."""
_STATUS_EVERY = {Pace.HUMAN: 10.0, Pace.FAST: 2.0, Pace.NONE: 2.0}


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    """What ``webchat-sim demo`` can be told."""

    mock: MockOptions = field(default_factory=MockOptions)
    arrival_rate: float = 0.07
    """New chats a second, on average."""
    languages: tuple[str, ...] = ("en", "fr", "de", "es")
    run_time: float | None = None
    """Seconds to run (``None``: until Ctrl-C)."""
    open_browser: bool = False

    @property
    def pace(self) -> Pace:
        return self.mock.pace

    @property
    def pacing(self) -> float:
        return _PACING[self.pace]

    @property
    def customers(self) -> int:
        return max(1, math.ceil(self.arrival_rate * self.pacing))


def locust_command(opts: DemoOptions, host: str) -> list[str]:
    """The child process running the simulated customers against ``host``."""
    spawn_rate = 10.0 if opts.pace is not Pace.HUMAN else 1.0
    seed = opts.mock.seed if opts.mock.seed is not None else 0
    return [
        *locust_invocation(),
        "--headless",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--users",
        str(opts.customers),
        "--spawn-rate",
        str(spawn_rate),
        "--host",
        host,
        "--scenario",
        DEMO_MIX,
        "--pace",
        opts.pace.value,
        "--seed",
        str(seed),
        "--queues",
        ",".join(opts.mock.engine.queues),
        "--languages",
        ",".join(opts.languages),
        "--chat-pacing",
        str(opts.pacing),
        "--chat-timeout",
        "300" if opts.pace is Pace.HUMAN else "30",
        "--stop-timeout",
        "2",
        "CustomerUser",
    ]


def status_line(status: dict[str, Any]) -> str:
    """One line on what the desk is doing, from the server's ``/healthz`` status."""
    queues = status.get("queues", {})
    waiting = sum(q.get("waiting", 0) for q in queues.values())
    chatting = sum(q.get("chatting", 0) for q in queues.values())
    agents = sum(q.get("agents", 0) for q in queues.values())
    conversations = status.get("conversations", {})
    return (
        f"demo: {waiting} waiting, {chatting} chatting, {conversations.get('closed', 0)} closed, "
        f"{agents} agent(s) in queues; {status.get('sockets', 0)} sockets, "
        f"{status.get('frames_in', 0):,} frames in, {status.get('frames_out', 0):,} out"
    )


class _Population:
    """The customers' child process, started once the server listens."""

    def __init__(self, opts: DemoOptions, out: TextIO) -> None:
        self.opts = opts
        self.out = out
        self.proc: asyncio.subprocess.Process | None = None
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the demo
            mode="w+", prefix="webchat-sim-demo-", suffix=".log", delete=False
        )
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, server: WebchatServer) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = await asyncio.create_subprocess_exec(
            *locust_command(self.opts, server.url),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            env=env,
            start_new_session=True,  # a Ctrl-C reaches the demo, which stops it first
        )
        self._spawn(self._watch(self.proc))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self.proc is proc:  # not stopped by us
            self.proc = None
            print(
                f"webchat-sim demo: the simulated customers stopped (exit {code}); see {self.log.name}. "
                "The server stays up.",
                file=self.out,
                flush=True,
            )

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        for task in list(self.tasks):
            task.cancel()
        self.log.close()


async def _report(server: WebchatServer, every: float, out: TextIO) -> None:
    while True:
        await asyncio.sleep(every)  # a status line per period: a timer, nothing to await instead
        print(status_line(server.status()), file=out, flush=True)


async def demo(opts: DemoOptions, out: TextIO = sys.stdout) -> dict[str, Any]:
    """Run the demo until SIGINT/SIGTERM or ``run_time``; the server's final status."""
    stop = asyncio.Event()
    population = _Population(opts, out)
    final: dict[str, Any] = {}
    loop = asyncio.get_running_loop()

    def ready(server: WebchatServer) -> None:
        web_url = server.links.get("web_url", "")
        print(
            f"webchat-sim demo: dashboard {web_url} · widget {web_url}widget · console {web_url}console "
            f"({opts.customers} simulated customers, ~{opts.arrival_rate:g} new chats/s, pace {opts.pace.value}, "
            f"languages {','.join(opts.languages)}; Ctrl-C to stop)",
            file=out,
            flush=True,
        )
        if opts.open_browser and web_url:
            with contextlib.suppress(Exception):
                webbrowser.open(web_url)
        population._spawn(population.start(server))
        population._spawn(_report(server, _STATUS_EVERY[opts.pace], out))
        if opts.run_time is not None:
            loop.call_later(opts.run_time, stop.set)

    async def before_stop(server: WebchatServer) -> None:
        await population.stop()
        final.update(server.status())

    await serve_until_stopped(opts.mock, out=out, ready=ready, stop=stop, before_stop=before_stop)
    return final


def run_demo(opts: DemoOptions, out: TextIO = sys.stdout) -> int:
    """``webchat-sim demo``: 0 once stopped; 1 after one line if a port cannot be bound, 2 if
    the database (``--db``, by default :func:`~.cli_db.default_demo_db`) cannot be used."""
    try:
        final = run_loop(demo(opts, out))
    except BindError as exc:
        print(f"webchat-sim: {exc}", file=sys.stderr, flush=True)
        return 1
    except StoreError as exc:
        print(f"webchat-sim demo: error: --db {exc}", file=sys.stderr, flush=True)
        return 2
    if final:
        print(status_line(final).replace("demo:", "webchat-sim demo served:", 1), file=out, flush=True)
    return 0
