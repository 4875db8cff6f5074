"""The cost of recording a transcript (``serve --record``, ``load --record``), same-run ratios.

    python benchmarks/bench_record.py [--quick] [--pairs 50] [--repeat 3] [--duration 5]

(``--quick``: 10 pairs, 20 users, one 1.5-s run of each: the CI smoke run.)

(a) Relay. bench_relay's clients (customer/agent pairs relaying chat
messages) against :class:`~simulator.mock.server.WebchatServer` around the
engine, plain and wrapped in :class:`~simulator.mock.record.RecordingCore`
writing to a file in a temporary folder: messages per server CPU-second,
paired runs back to back; the recorded transcript's size is reported.

(b) Generator. :class:`~simulator.load.transport.Connection` and the
recording one (:mod:`simulator.load.record`) against the echo server of
``_common``: each of ``--users`` connections sends a ~600-byte chat frame
and waits for its echo; round trips per client CPU-second over the window.

No target: the figures go to the closing note (benchmarks/results/bench_record.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_relay
from _common import (
    RESULTS_DIR,
    cpu_seconds,
    go_window,
    pin,
    read_line,
    run_loop,
    save_results,
    serve_echo,
    start,
    start_server,
    stop,
)

RESULTS = RESULTS_DIR / "bench_record.json"


def serve(variant: str, path: str, lifetime: float) -> None:
    pin("server")

    async def main() -> None:
        import random

        from simulator.mock.engine import Engine, EngineConfig, Routing
        from simulator.mock.record import RecordingCore
        from simulator.mock.server import Core, ServerConfig, WebchatServer
        from simulator.transcript import TranscriptWriter

        stop_event = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop_event.set)
        engine = Engine(
            EngineConfig(routing=Routing.ROUND_ROBIN, max_chats_per_agent=1, max_messages_per_conversation=10_000_000),
            rng=random.Random(1),
        )
        writer = TranscriptWriter(path, source="serve") if variant == "record" else None
        core: Core = RecordingCore(engine, writer) if writer is not None else engine
        config = ServerConfig(port=0, frames_per_second=1e9, burst=1_000_000_000, max_connections=100_000)
        async with WebchatServer(core, config) as server:
            print(f"PORT {server.port}", flush=True)
            await bench_relay.wait(stop_event, lifetime)
        if writer is not None:
            writer.close()

    run_loop("uvloop", main())


def measure_relay(
    variant: str, pairs: int, processes: int, warmup: float, duration: float, folder: str
) -> dict[str, Any]:
    path = os.path.join(folder, f"{variant}-{time.monotonic_ns()}.jsonl")
    server = start(__file__, ["--serve", variant, "--path", path], stdin=False)
    clients: list[subprocess.Popen[str]] = []
    try:
        port = int(read_line(server, 30, f"{variant} server").split()[1])
        shares = [pairs // processes + (1 if i < pairs % processes else 0) for i in range(processes)]
        for index, share in enumerate(s for s in shares if s):
            client = start(
                bench_relay.__file__,
                ["--client", "ours", "--port", str(port), "--pairs", str(share), "--index", str(index)],
            )
            clients.append(client)
            if (line := read_line(client, 80, f"client {index} setup")) != "READY":
                raise RuntimeError(f"client {index}: expected READY, got {line!r}")
        (server_cpu,), results = go_window([server.pid], clients, warmup=warmup, duration=duration, grace=60)
    finally:
        for client in clients:
            stop(client)
        stop(server)
    messages = sum(r["messages"] for r in results)
    size = os.path.getsize(path) if os.path.exists(path) else 0
    return {
        "variant": variant,
        "messages": messages,
        "per_server_cpu_s": round(messages / server_cpu, 1) if server_cpu > 0 else None,
        "transcript_bytes": size,
    }


def generator_client(port: int, users: int, record: str | None, warmup: float, duration: float) -> None:
    """Round trips per client CPU-second of ``users`` gevent connections (recording to ``record`` if given)."""
    import gevent
    from _common import chat_frame

    from simulator.load import record as recording
    from simulator.protocol import encode

    pin("client")
    if record:
        recording.start(record, {})
    connect = recording.opener("customer")
    frames = [encode(chat_frame(u)) for u in range(users)]
    counts = [0]
    window = [0.0, 0.0]

    def user(k: int) -> None:
        conn = connect(f"ws://127.0.0.1:{port}/ws", timeout=20)
        data = frames[k]
        while time.monotonic() < window[1]:
            conn.send(data)
            conn.wait_for(lambda f: True, 10)
            if window[0] <= time.monotonic() < window[1]:
                counts[0] += 1
        conn.close()

    window[0] = time.monotonic() + warmup
    window[1] = window[0] + duration
    greenlets = [gevent.spawn(user, k) for k in range(users)]
    gevent.sleep(max(0.0, window[0] - time.monotonic()))
    cpu0 = cpu_seconds()
    gevent.sleep(max(0.0, window[1] - time.monotonic()))
    cpu1 = cpu_seconds()
    gevent.joinall(greenlets, timeout=30)
    recording.stop()
    print(json.dumps({"round_trips": counts[0], "per_client_cpu_s": round(counts[0] / (cpu1 - cpu0), 1)}), flush=True)


def measure_generator(port: int, users: int, record: str | None, warmup: float, duration: float) -> dict[str, Any]:
    args = ["--gen-client", str(port), "--users", str(users), "--warmup", str(warmup), "--duration", str(duration)]
    client = start(__file__, [*args, *(["--path", record] if record else [])], stdin=False)
    try:
        result: dict[str, Any] = json.loads(read_line(client, warmup + duration + 60, "generator client"))
    finally:
        stop(client)
    result["variant"] = "record" if record else "plain"
    return result


def ratio(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    pairs = [(r["record"][key], r["plain"][key]) for r in runs if r["record"][key] and r["plain"][key]]
    values = [a / b for a, b in pairs]
    return {
        "median": round(statistics.median(values), 3) if values else None,
        "range": [round(min(values), 3), round(max(values), 3)] if values else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="10 pairs, 20 users, one short run of each (CI smoke)")
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--part", choices=("relay", "generator"), nargs="+", default=["relay", "generator"])
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--serve", nargs="?", const="echo", choices=("plain", "record", "echo"), help=argparse.SUPPRESS)
    parser.add_argument("--lifetime", type=float, default=900.0, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--gen-client", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.users, args.repeat, args.duration, args.warmup = 10, 20, 1, 1.5, 0.5
    if args.serve == "echo":
        serve_echo(args.lifetime, stats=False)
        return 0
    if args.serve:
        serve(args.serve, args.path, args.lifetime)
        return 0
    if args.gen_client:
        generator_client(args.gen_client, args.users, args.path, args.warmup, args.duration)
        return 0
    document: dict[str, Any] = {"pairs": args.pairs, "users": args.users, "repeat": args.repeat}
    with tempfile.TemporaryDirectory(prefix="bench-record-") as folder:
        if "relay" in args.part:
            runs = []
            for n in range(args.repeat):
                cell = {}
                for variant in ("plain", "record"):
                    cell[variant] = measure_relay(
                        variant, args.pairs, args.processes, args.warmup, args.duration, folder
                    )
                    print(f"relay {n} {variant}: {cell[variant]}", flush=True)
                runs.append(cell)
            document["relay"] = {"runs": runs, "record_over_plain_per_server_cpu_s": ratio(runs, "per_server_cpu_s")}
            print(
                "relay: record / plain messages per server CPU-second:",
                document["relay"]["record_over_plain_per_server_cpu_s"],
            )
        if "generator" in args.part:
            echo, port = start_server(__file__, stdin=False)
            try:
                runs = []
                for n in range(args.repeat):
                    cell = {
                        "plain": measure_generator(port, args.users, None, args.warmup, args.duration),
                        "record": measure_generator(
                            port, args.users, os.path.join(folder, f"g{n}.jsonl"), args.warmup, args.duration
                        ),
                    }
                    print(f"generator {n}: {cell}", flush=True)
                    runs.append(cell)
            finally:
                stop(echo)
            document["generator"] = {
                "runs": runs,
                "record_over_plain_per_client_cpu_s": ratio(runs, "per_client_cpu_s"),
            }
            print(
                "generator: record / plain round trips per client CPU-second:",
                document["generator"]["record_over_plain_per_client_cpu_s"],
            )
    save_results(args.json, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
