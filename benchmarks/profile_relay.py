"""Server CPU per relayed chat message, in process and without sockets: decode, engine, encode.

    python benchmarks/profile_relay.py [--messages 9000] [--repeat 5] [--cprofile [N]]

What :mod:`bench_relay` measures through sockets, without the I/O: one
engine (the benchmark's settings), one agent and one engaged customer; the
customer's typical ~600-byte chat ``message`` frame (bench_relay's, a unique
``client_message_id`` each) is decoded and validated, handed to the engine,
and every frame it returns encoded (as the server does: once per delivery).
Per stage it reports the CPU time per message (``time.process_time``; on
a machine shared with other work the CPU time varies less than the wall
time), the best and the median of ``--repeat`` runs of ``--messages``
messages each, and the garbage collector's share (the same runs with it
off). ``--cprofile`` adds the top functions by own time.

Not a ``bench_*`` script (run_all.py does not run it): a profile, no target.
To compare with another checkout, run its copy of this file (``_common``
puts the checkout the script is in first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import statistics
import time
from collections.abc import Sequence

import _common  # noqa: F401  # the repository on sys.path
import orjson
from bench_relay import chat_message

from simulator.mock.engine import Engine, EngineConfig, Identity, Role, Routing
from simulator.protocol import decode, encode

STAGES = ("decode", "engine", "encode")


def chat(messages: int) -> tuple[Engine, list[bytes], float]:
    """An engine with one engaged pair, and the customer's frames."""
    config = EngineConfig(routing=Routing.ROUND_ROBIN, max_chats_per_agent=1, max_messages_per_conversation=10**7)
    engine = Engine(config, rng=random.Random(1))
    now = 1_795_615_525.0
    engine.connect(11, Identity(role=Role.AGENT, name="bench-agent", queues=("support",)), now)
    engine.connect(1, Identity(role=Role.CUSTOMER, name="bench-customer"), now)
    start = {
        "type": "event",
        "event_type": "webchat start conversation",
        "event_engage_customer": {"queue_name": "support", "question": "Hello?"},
    }
    out = engine.receive(1, decode(orjson.dumps(start)), now)
    conv = next(d.frame.conversation_uuid for d in out if d.frame.conversation_uuid)
    head, tail = chat_message(conv, "MARKER")
    return engine, [head + f"m-{i}".encode() + tail for i in range(messages)], now


def run(messages: int, *, collect: bool) -> dict[str, float]:
    """µs of CPU per message per stage over one run."""
    engine, frames, now = chat(messages)
    clock = time.process_time
    spent = dict.fromkeys(STAGES, 0.0)
    deliveries = 0
    gc.collect()
    if not collect:
        gc.disable()
    try:
        for i, data in enumerate(frames):
            t0 = clock()
            frame = decode(data)
            t1 = clock()
            out = engine.receive(1, frame, now + i * 0.001)
            t2 = clock()
            for delivery in out:
                encode(delivery.frame)
            t3 = clock()
            spent["decode"] += t1 - t0
            spent["engine"] += t2 - t1
            spent["encode"] += t3 - t2
            deliveries += len(out)
    finally:
        gc.enable()
    result = {stage: seconds / messages * 1e6 for stage, seconds in spent.items()}
    result["total"] = sum(result.values())
    result["deliveries"] = deliveries / messages
    return result


def profile(messages: int, top: int) -> None:
    engine, frames, now = chat(messages)

    def relay() -> None:
        for i, data in enumerate(frames):
            for delivery in engine.receive(1, decode(data), now + i * 0.001):
                encode(delivery.frame)

    profiler = cProfile.Profile()
    profiler.runcall(relay)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=9000, help="messages per run (default 9000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs, each way (default 5)")
    parser.add_argument("--cprofile", type=int, nargs="?", const=20, help="also cProfile: the top N functions")
    args = parser.parse_args(argv)
    runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for _ in range(args.repeat):
        for collect in (True, False):
            runs[collect].append(run(args.messages, collect=collect))
    print(f"server CPU per relayed message, µs ({args.messages} messages x {args.repeat} runs; best / median)")
    for collect, label in ((True, "gc on "), (False, "gc off")):
        cells: list[str] = []
        for key in (*STAGES, "total"):
            values = [r[key] for r in runs[collect]]
            cells.append(f"{key} {min(values):6.1f} / {statistics.median(values):6.1f}")
        print(f"  {label}: " + " | ".join(cells) + f" | {runs[collect][0]['deliveries']:.0f} deliveries")
    if args.cprofile:
        profile(args.messages, args.cprofile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
