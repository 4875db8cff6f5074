"""Client transport cost: chat round trips per CPU-second of the load generator process.

    python benchmarks/bench_client.py [--quick] [--users 10 100 1000] [--repeat 3]

A bare websockets echo server (asyncio, uvloop if available, no compression)
runs in its own process on 127.0.0.1, random port. For each user count, two
client variants run, each in a fresh gevent monkey-patched process (as in
Locust; patching must not leak between variants):

* ``ours`` — :class:`simulator.load.transport.Connection` (websockets' sans-I/O
  protocol on a gevent socket, one receive greenlet per connection);
* ``baseline`` — ``websockets.sync.client.connect(..., proxy=None)`` (a helper
  thread, i.e. greenlet, per connection), reading bytes with ``recv``.

Every user sends a typical ~600-byte chat ``message`` frame, waits for its
echo (ours: ``wait_for`` on the ``client_message_id``; baseline: ``recv`` until
the frame with that id), and repeats, bounded in count and in time. Both
variants encode with :func:`simulator.protocol.encode` and validate what they
receive with :func:`simulator.protocol.decode`, so the ratio compares the
transports, not the codec (whose own cost is printed for reference).

The figure is round trips (one frame sent, one received) per CPU-second of
the client process (``resource.getrusage`` deltas over the measured phase,
connects and warm-up excluded). Results go to benchmarks/results/bench_client.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from _common import (
    RESULTS_DIR,
    chat_frame,
    cpu_seconds,
    error_note,
    format_ratio,
    paired_ratios,
    pin,
    print_header,
    report_head,
    run_json,
    save_results,
    serve_echo,
    start_server,
    stop,
    versions,
)

RESULTS = RESULTS_DIR / "bench_client.json"
VARIANTS = ("ours", "baseline")

# Bounds
CONNECT_TIMEOUT = 20.0
ROUND_TRIP_TIMEOUT = 30.0
CONNECT_CONCURRENCY = 100
WARMUP_ROUND_TRIPS = 2
CLIENT_GRACE = 120.0  # beyond the measured phase: connects, warm-up, closing


Session = tuple[Callable[[int], None], Callable[[], None]]
"""A connected user: (one round trip with a message number, close)."""


# ---------------------------------------------------------------------------
# A client variant (gevent, monkey-patched; its own process)


def run_client(variant: str, port: int, users: int, per_user: int, duration: float) -> dict[str, Any]:
    from gevent import monkey

    monkey.patch_all()
    pinned = pin("client")

    import gevent
    import gevent.pool

    from simulator.protocol import Frame, decode, encode

    url = f"ws://127.0.0.1:{port}/"
    frames = [chat_frame(user) for user in range(users)]

    def open_ours(user: int) -> Session:
        from simulator.load.transport import Connection

        conn = Connection.connect(url, timeout=CONNECT_TIMEOUT, close_timeout=5)
        frame = frames[user]
        message = frame.message
        assert message is not None

        def round_trip(number: int) -> None:
            cid = f"{user}-{number}"
            message.client_message_id = cid
            conn.send(frame)
            conn.wait_for(
                lambda f: f.message is not None and f.message.client_message_id == cid,
                ROUND_TRIP_TIMEOUT,
                description="echo",
            )

        return round_trip, lambda: conn.close(timeout=5)

    def open_baseline(user: int) -> Session:
        from websockets.sync.client import connect

        ws = connect(url, proxy=None, legacy=True, open_timeout=CONNECT_TIMEOUT, close_timeout=5)
        frame = frames[user]
        message = frame.message
        assert message is not None

        def round_trip(number: int) -> None:
            cid = f"{user}-{number}"
            message.client_message_id = cid
            ws.send(encode(frame), text=True)
            while True:
                echoed: Frame = decode(ws.recv(ROUND_TRIP_TIMEOUT, decode=False))
                if echoed.message is not None and echoed.message.client_message_id == cid:
                    return

        return round_trip, ws.close

    opener = open_ours if variant == "ours" else open_baseline
    sessions: list[Session | None] = [None] * users
    errors: list[str] = []

    def open_one(user: int) -> None:
        try:
            sessions[user] = opener(user)
        except Exception as exc:
            errors.append(f"connect: {exc!r}")

    pool = gevent.pool.Pool(CONNECT_CONCURRENCY)
    pool.map(open_one, range(users))
    live = [s for s in sessions if s is not None]

    def loop(session: Session, first: int, count: int, deadline: float) -> int:
        round_trip = session[0]
        done = 0
        try:
            for number in range(first, first + count):
                if time.perf_counter() >= deadline:
                    break
                round_trip(number)
                done += 1
        except Exception as exc:
            errors.append(f"round trip: {exc!r}")
        return done

    def run_all(first: int, count: int, limit: float) -> int:
        deadline = time.perf_counter() + limit
        greenlets = [gevent.spawn(loop, s, first, count, deadline) for s in live]
        gevent.joinall(greenlets, timeout=limit + ROUND_TRIP_TIMEOUT + 5)
        gevent.killall([g for g in greenlets if not g.dead], block=True, timeout=5)
        return sum(g.value or 0 for g in greenlets)

    run_all(0, WARMUP_ROUND_TRIPS, duration)
    cpu_start, wall_start = cpu_seconds(), time.perf_counter()
    done = run_all(WARMUP_ROUND_TRIPS, per_user, duration)
    cpu, wall = cpu_seconds() - cpu_start, time.perf_counter() - wall_start

    closer = gevent.pool.Pool(CONNECT_CONCURRENCY)
    closer.map(lambda s: s[1](), live)
    return {
        "variant": variant,
        "users": users,
        "connected": len(live),
        "round_trips": done,
        "cpu_s": round(cpu, 4),
        "wall_s": round(wall, 4),
        "per_cpu_s": round(done / cpu, 1) if cpu > 0 else None,
        "per_wall_s": round(done / wall, 1) if wall > 0 else None,
        "errors": errors[:5],
        "error_count": len(errors),
        "pinned": pinned,
    }


# ---------------------------------------------------------------------------
# Orchestration (no gevent, no asyncio here)


def codec_cost(iterations: int = 20_000) -> float:
    """Encode + decode round trips of the chat frame per CPU-second, for reference."""
    from simulator.protocol import decode, encode

    frame = chat_frame(0)
    start = time.process_time()
    for _ in range(iterations):
        decode(encode(frame))
    return iterations / (time.process_time() - start)


def measure(variant: str, port: int, users: int, per_user: int, duration: float) -> dict[str, Any]:
    command = [sys.executable, __file__, "--client", variant, "--port", str(port), "--users", str(users)]
    command += ["--per-user", str(per_user), "--duration", str(duration)]
    return run_json(command, timeout=duration + CLIENT_GRACE, what=f"{variant} client with {users} users")


def orchestrate(user_counts: Sequence[int], total: int, duration: float, repeat: int) -> None:
    print("codec only (encode + decode of the chat frame): ", end="", flush=True)
    codec = codec_cost()
    print(f"{codec:,.0f} per CPU-second")
    runs: list[dict[str, Any]] = []
    server, port = start_server(__file__, stdin=False)
    try:
        for users in user_counts:
            per_user = max(20, total // users)
            for round_number in range(repeat):
                for variant in VARIANTS:
                    result = measure(variant, port, users, per_user, duration)
                    result["repeat"] = round_number
                    runs.append(result)
                    print(
                        f"  {variant:8} users={users:<5} #{round_number + 1}: {result['round_trips']:>7} round trips, "
                        f"{result['per_cpu_s']:>9,.0f}/CPU-s, {result['per_wall_s']:>9,.0f}/s wall{error_note(result)}",
                        flush=True,
                    )
    finally:
        stop(server)

    summary = []
    for users in user_counts:
        row: dict[str, Any] = {"users": users}
        for variant in VARIANTS:
            mine = [r for r in runs if r["users"] == users and r["variant"] == variant and r["per_cpu_s"]]
            row[f"{variant}_per_cpu_s"] = statistics.median(r["per_cpu_s"] for r in mine) if mine else None
            row[f"{variant}_per_wall_s"] = statistics.median(r["per_wall_s"] for r in mine) if mine else None
        ratios = paired_ratios(runs, "per_cpu_s", field="variant", variant="ours", baseline="baseline", users=users)
        row["ratio"], row["ratio_range"] = ratios.median(2), ratios.range(2)
        summary.append(row)

    print()
    print(f"round trips per CPU-second of the client process (median of {repeat}; 1 round trip = 1 sent + 1 received)")
    print("ratio: median of the paired ours/baseline ratios, [min-max]")
    print_header(
        f"{'users':>6} | {'ours':>9} | {'baseline':>9} | {'ratio':>17} | {'ours wall/s':>11} | {'base wall/s':>11}"
    )
    for row in summary:
        print(
            f"{row['users']:>6} | {row['ours_per_cpu_s'] or 0:>9,.0f} | {row['baseline_per_cpu_s'] or 0:>9,.0f} | "
            f"{format_ratio(row['ratio'], row['ratio_range']):>17} | {row['ours_per_wall_s'] or 0:>11,.0f} | "
            f"{row['baseline_per_wall_s'] or 0:>11,.0f}"
        )
    report = {
        **report_head(
            "bench_client",
            "round trips per CPU-second of the client process",
            versions=versions(("websockets", "gevent", "pydantic", "uvloop")),
        ),
        "settings": {"users": list(user_counts), "total_per_cell": total, "duration_cap_s": duration, "repeat": repeat},
        "codec_per_cpu_s": round(codec, 1),
        "summary": summary,
        "runs": runs,
    }
    save_results(RESULTS, report)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="10 and 100 users, few messages, one run each")
    parser.add_argument("--users", type=int, nargs="+", help="user counts (default 10 100 1000; --quick: 10 100)")
    parser.add_argument("--total", type=int, help="round trips per cell, spread over the users")
    parser.add_argument("--duration", type=float, help="time cap of each measured phase, seconds")
    parser.add_argument("--repeat", type=int, help="runs per cell; the median is reported")
    # Internal modes
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lifetime", type=float, default=3600.0, help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--per-user", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve:
        serve_echo(args.lifetime, stats=False)
        return
    if args.client:
        users = args.users[0] if args.users else 10
        result = run_client(args.client, args.port, users, args.per_user, args.duration or 10.0)
        print(json.dumps(result))
        return
    user_counts = args.users or ([10, 100] if args.quick else [10, 100, 1000])
    total = args.total or (2_000 if args.quick else 40_000)
    duration = args.duration or (5.0 if args.quick else 20.0)
    repeat = args.repeat or (1 if args.quick else 5)
    orchestrate(user_counts, total, duration, repeat)


if __name__ == "__main__":
    main()
