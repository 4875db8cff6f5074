"""Server CPU per relayed chat message in the websocket shell, in process: ``WebchatServer._receive``.

    python benchmarks/profile_shell.py [--messages 9000] [--repeat 5] [--cprofile [N]]

:mod:`profile_relay` measures decode, engine and encode alone; this one
measures the same chat (its engine, its frames) handed to the server's
``_receive`` as websockets hands it a text message: decode, rate bucket,
counters, taps check, the engine, the relay histogram, the tick timer,
``_deliver`` (framing, queueing on real ``websockets`` protocols, one
``transport.write`` per connection into a transport that keeps nothing).
What websockets does before (reading, parsing, the assembler) and the
syscalls are left out. ``shell`` is the difference to profile_relay's
total measured in the same process: the shell's own bookkeeping.

Not a ``bench_*`` script (run_all.py does not run it): a profile, no target.
To compare with another checkout, run its copy of this file.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import statistics
import time
from collections.abc import Sequence
from typing import Any

import _common  # noqa: F401  # the repository on sys.path
from profile_relay import chat
from profile_relay import run as run_relay
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

from simulator.mock.inbound import Bucket
from simulator.mock.server import ServerConfig, WebchatServer


class _Transport:
    """Takes what is written and keeps nothing."""

    written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


class _Connection:
    """What the shell reads of a ``ServerConnection`` when it sends."""

    def __init__(self, conn: int) -> None:
        self.id = conn
        self.protocol = ServerProtocol()
        self.protocol.state = OPEN
        self.send_in_progress = None
        self.transport = _Transport()


def setup(messages: int) -> tuple[WebchatServer, list[str]]:
    engine, frames, _ = chat(messages)
    server = WebchatServer(engine, ServerConfig(frames_per_second=1e9, burst=10**9, idle_timeout=None))
    conns: dict[Any, Any] = server._conns
    for conn in (1, 11):  # profile_relay's customer and agent
        conns[conn] = _Connection(conn)
    return server, [data.decode() for data in frames]


async def run(messages: int, *, collect: bool) -> float:
    """µs of CPU per message through ``_receive``."""
    server, frames = setup(messages)
    bucket = Bucket(1e9, 10**9, time.time())
    receive = server._receive
    clock = time.process_time
    gc.collect()
    if not collect:
        gc.disable()
    try:
        t0 = clock()
        for data in frames:
            receive(1, data, bucket)
        spent = clock() - t0
    finally:
        gc.enable()
    return spent / messages * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=9000, help="messages per run (default 9000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs (default 5)")
    parser.add_argument("--cprofile", type=int, nargs="?", const=20, help="also cProfile: the top N functions")
    args = parser.parse_args(argv)
    shell: list[float] = []
    relay: list[float] = []
    for _ in range(args.repeat):
        shell.append(asyncio.run(run(args.messages, collect=True)))
        relay.append(run_relay(args.messages, collect=True)["total"])
    print(f"server CPU per relayed message, µs ({args.messages} messages x {args.repeat} runs; best / median, gc on)")
    print(f"  _receive {min(shell):6.1f} / {statistics.median(shell):6.1f}")
    print(f"  decode + engine + encode alone {min(relay):6.1f} / {statistics.median(relay):6.1f}")
    own = [s - r for s, r in zip(shell, relay, strict=True)]
    print(f"  shell (the difference, run by run) {min(own):6.1f} / {statistics.median(own):6.1f}")
    if args.cprofile:
        server, frames = setup(args.messages)
        bucket = Bucket(1e9, 10**9, time.time())

        async def relay_all() -> None:
            for data in frames:
                server._receive(1, data, bucket)

        profiler = cProfile.Profile()
        profiler.runcall(asyncio.run, relay_all())
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.cprofile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
