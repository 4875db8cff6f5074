"""Server capacity: memory per concurrent session, ours vs a bare websockets server holding idle connections.

    python benchmarks/bench_capacity.py [--quick] [--sessions 1000 5000 10000 15000] [--trace] [--json PATH]

For each session count N, two servers run, each in a fresh process on
127.0.0.1 (random port), with uvloop (``--loops`` adds asyncio):

* ``ours`` — :class:`simulator.mock.server.WebchatServer` around an
  :class:`simulator.mock.engine.Engine` (no autopilot, round-robin routing,
  ``max_chats_per_agent=10``) holding a realistic mix: N/50 agents logged in,
  10 chats each; the other sessions are customers who started a conversation
  (with a question), 10/49 of them engaged and chatting (each sent one more
  message, acknowledged), the rest waiting in the queue;
* ``bare`` — ``websockets.asyncio.server.serve`` (same library, loop and
  defaults: no compression) whose handler just waits for the connection to
  close: N idle connections.

Clients are light (:mod:`rawws`: raw asyncio protocols) and spread over
several processes, at most 4,000 connections each (the open-file limit is
20,000 per process). Customers connect and queue first, then the agents log in
and take their chats (so no ``queue new member`` storm: each arrival would
otherwise be announced to every agent).

Figure: server RSS (``/proc/PID/status`` VmRSS, after a ``gc.collect()`` in
the server, once pushes have settled) minus its RSS before any connection,
divided by N. Target: 15,000 sessions in one process at <= 25 KB each.
``--trace`` runs the servers under ``tracemalloc`` and prints where the
memory of the sessions went (slower; figures then include tracing overhead).
Results go to benchmarks/results/bench_capacity.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import (
    RESULTS_DIR,
    Target,
    Verdict,
    client_process,
    error_note,
    pin,
    print_header,
    print_targets,
    read_line,
    report_head,
    rss_bytes,
    run_loop,
    save_results,
    start,
    stop,
    target_keys,
    tell,
    versions,
)

RESULTS = RESULTS_DIR / "bench_capacity.json"
SERVERS = ("bare", "ours")
LOOPS = ("uvloop", "asyncio")
TARGET_SESSIONS = 15_000
TARGET_BYTES = 25 * 1024

# Mix
AGENT_SHARE = 50  # one agent per 50 sessions
MAX_CHATS = 10
# Bounds
PER_PROCESS = 4_000
CONNECT_CONCURRENCY = 100
CONNECT_TIMEOUT = 30.0
SETUP_TIMEOUT = 180.0
SETTLE = 2.5  # coalesced queue pushes are due within 1 s (position_interval, status_interval)
QUICK_SETTLE = 1.3
SERVER_LIFETIME = 1800.0
TRACE_DEPTH = 3  # frames kept per allocation with --trace


# ---------------------------------------------------------------------------
# The servers (asyncio; one process each). Commands on stdin, one per line:
# MEASURE -> gc.collect(), then "RSS <bytes> <sockets>" (and with --trace the
# allocations since the first MEASURE on stderr).


def serve(variant: str, loop_name: str, trace: bool) -> None:
    pin("server")
    if trace:
        import tracemalloc

        tracemalloc.start(TRACE_DEPTH)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        sockets: Callable[[], int]
        if variant == "ours":
            import random

            from simulator.mock.engine import Engine, EngineConfig, Routing
            from simulator.mock.server import ServerConfig, WebchatServer

            engine = Engine(
                EngineConfig(routing=Routing.ROUND_ROBIN, max_chats_per_agent=MAX_CHATS), rng=random.Random(1)
            )
            server = WebchatServer(engine, ServerConfig(port=0, max_connections=100_000))
            await server.start()
            port = server.port
            sockets = lambda: server.status()["sockets"]  # noqa: E731
        else:
            from websockets.asyncio.server import ServerConnection
            from websockets.asyncio.server import serve as ws_serve

            async def idle(ws: ServerConnection) -> None:
                await ws.wait_closed()

            bare = await ws_serve(idle, "127.0.0.1", 0, compression=None, backlog=1024)
            port = bare.sockets[0].getsockname()[1]
            sockets = lambda: len(bare.connections)  # noqa: E731
        baseline: Any = None

        def command() -> None:
            nonlocal baseline
            line = sys.stdin.readline()
            if not line:
                stop.set()
                return
            if line.strip() == "MEASURE":
                gc.collect()
                if trace:
                    baseline = report_trace(baseline)
                print(f"RSS {rss_bytes()} {sockets()}", flush=True)

        loop.add_reader(sys.stdin.fileno(), command)
        print(f"PORT {port}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SERVER_LIFETIME)
        loop.remove_reader(sys.stdin.fileno())
        if variant == "ours":
            await server.stop()
        else:
            bare.close()
            await bare.wait_closed()

    run_loop(loop_name, main())


def report_trace(baseline: Any) -> Any:
    """First call: take the baseline snapshot. Then: print the top allocation sites since."""
    import tracemalloc

    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    if baseline is None:
        return snapshot
    stats = snapshot.compare_to(baseline, "traceback")
    total = sum(s.size_diff for s in stats)
    print(f"tracemalloc: {total / 1024:,.0f} KiB more since the first MEASURE; top sites:", file=sys.stderr)
    for stat in stats[:30]:
        where = " < ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(stat.traceback))
        print(f"  {stat.size_diff / 1024:>10,.0f} KiB {stat.count_diff:>9,} blocks  {where}", file=sys.stderr)
    sys.stderr.flush()
    return baseline


# ---------------------------------------------------------------------------
# Client processes (asyncio + uvloop; rawws clients). "READY <json>" when set
# up, then wait for a line on stdin, close everything and print the result.


async def client_main(role: str, port: int, count: int, offset: int, expected: int) -> dict[str, Any]:
    import orjson
    from rawws import RawClient, connect

    loop = asyncio.get_running_loop()
    clients: list[RawClient] = []
    errors: list[str] = []
    counts = {"queued": 0, "engaged": 0, "acked": 0, "chats": 0}
    done = loop.create_future()
    path = "/ws" if role != "bare" else "/"
    start = orjson.dumps(
        {
            "type": "event",
            "event_type": "webchat start conversation",
            "event_engage_customer": {
                "queue_name": "support",
                "question": "Hi! Where is my order? It was due yesterday.",
                "conversation_participant_name": "Jordan Example",
                "participant_language_iso_code": "en",
            },
        }
    )

    def check_done() -> None:
        if done.done():
            return
        if role == "agent" and counts["chats"] >= expected:
            done.set_result(None)
        if role == "customer" and counts["queued"] >= count:
            done.set_result(None)

    def on_agent(data: bytes) -> None:
        if b'"event_type":"new conversation"' in data:
            counts["chats"] += 1
            check_done()

    semaphore = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def open_one(number: int) -> None:
        async with semaphore:
            try:
                if role == "customer":
                    handle = make_customer(number)
                    own: list[RawClient] = []  # the client, once connected (frames only come after)
                    client = await connect(
                        "127.0.0.1",
                        port,
                        f"{path}?role=customer",
                        lambda data: handle(data, own[0]),
                        timeout=CONNECT_TIMEOUT,
                    )
                    own.append(client)
                    clients.append(client)
                    client.send_text(start)
                elif role == "agent":
                    query = f"role=agent&name=cap-agent-{offset + number}&queues=support"
                    clients.append(
                        await connect("127.0.0.1", port, f"{path}?{query}", on_agent, timeout=CONNECT_TIMEOUT)
                    )
                else:
                    clients.append(await connect("127.0.0.1", port, path, None, timeout=CONNECT_TIMEOUT))
            except (OSError, TimeoutError) as exc:
                errors.append(f"connect: {exc!r}")

    def make_customer(number: int) -> Callable[[bytes, RawClient], None]:
        marker = f'"client_message_id":"cap-{offset + number}"'.encode()

        def on_text(data: bytes, client: RawClient) -> None:
            if b'"event_type":"new conversation"' in data:
                counts["queued"] += 1
                check_done()
            elif b'"event_type":"participant join"' in data:
                counts["engaged"] += 1
                message = {
                    "type": "message",
                    "conversation_uuid": orjson.loads(data)["conversation_uuid"],
                    "message": {"body": "Order 4711, shipped to Lyon.", "client_message_id": f"cap-{offset + number}"},
                }
                client.send_text(orjson.dumps(message))
            elif data.startswith(b'{"type":"message"') and marker in data:
                counts["acked"] += 1

        return on_text

    began = time.monotonic()
    await asyncio.gather(*(open_one(number) for number in range(count)))
    connected_s = time.monotonic() - began
    if role != "bare" and not errors:
        try:
            async with asyncio.timeout(SETUP_TIMEOUT):
                await done
        except TimeoutError:
            errors.append(f"{role}: setup incomplete after {SETUP_TIMEOUT:g} s: {counts}")
    print("READY " + json.dumps({"connected": len(clients), "connect_s": round(connected_s, 2)}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    result = {"role": role, "connections": len(clients), **counts, "errors": errors[:5], "error_count": len(errors)}
    for client in clients:
        client.close()
    try:
        async with asyncio.timeout(10):
            await asyncio.gather(*(client.closed for client in clients))
    except TimeoutError:
        for client in clients:
            client.abort()
    return result


# ---------------------------------------------------------------------------
# Orchestration (no event loop here)


def shares(total: int) -> list[int]:
    processes = max(1, -(-total // PER_PROCESS))
    return [total // processes + (1 if i < total % processes else 0) for i in range(processes)]


def measure(variant: str, loop_name: str, sessions: int, trace: bool, settle: float) -> dict[str, Any]:
    server = start(__file__, ["--serve", variant, "--loop", loop_name, *(["--trace"] if trace else [])])
    clients: list[subprocess.Popen[str]] = []
    try:
        port = int(read_line(server, 30, f"{variant} server").split()[1])
        tell(server, "MEASURE")
        before = int(read_line(server, 60, "baseline RSS").split()[1])
        began = time.monotonic()
        agents = max(1, sessions // AGENT_SHARE) if variant == "ours" else 0
        customers = sessions - agents
        groups: list[tuple[str, int, int]] = []  # role, count, offset
        offset = 0
        for share in shares(customers):
            groups.append(("customer" if variant == "ours" else "bare", share, offset))
            offset += share
        setups = []
        for role, count, first in groups:  # customers queue first, in parallel
            clients.append(
                start(__file__, ["--client", role, "--port", str(port), "--count", str(count), "--offset", str(first)])
            )
        for client in clients:
            setups.append(json.loads(read_line(client, SETUP_TIMEOUT + 60, "client setup").split(" ", 1)[1]))
        if agents:  # then the agents log in and take their chats
            expected = min(agents * MAX_CHATS, customers)
            agent = start(
                __file__,
                ["--client", "agent", "--port", str(port), "--count", str(agents), "--expected", str(expected)],
            )
            clients.append(agent)
            setups.append(json.loads(read_line(agent, SETUP_TIMEOUT + 60, "agent setup").split(" ", 1)[1]))
        setup_s = time.monotonic() - began
        time.sleep(settle)
        tell(server, "MEASURE")
        _, after_text, sockets_text = read_line(server, 120, "RSS").split()
        after, sockets = int(after_text), int(sockets_text)
        for client in clients:
            tell(client, "STOP")
        results = [json.loads(read_line(c, 60, "client result")) for c in clients]
    finally:
        for client in clients:
            stop(client, 15)
        stop(server, 15)
    connected = sum(s["connected"] for s in setups)
    per_session = (after - before) / sessions
    row = {
        "server": variant,
        "loop": loop_name,
        "sessions": sessions,
        "connected": connected,
        "server_sockets": sockets,
        "rss_before": before,
        "rss_after": after,
        "bytes_per_session": round(per_session),
        "setup_s": round(setup_s, 2),
        "client_processes": len(clients),
        "queued": sum(r.get("queued", 0) for r in results) - sum(r.get("engaged", 0) for r in results),
        "chatting": sum(r.get("engaged", 0) for r in results),
        "messages_acked": sum(r.get("acked", 0) for r in results),
        "agents": sum(r["connections"] for r in results if r["role"] == "agent"),
        "errors": [e for r in results for e in r["errors"]][:5],
        "error_count": sum(r["error_count"] for r in results),
    }
    return row


def orchestrate(counts: Sequence[int], loops: Sequence[str], trace: bool, output: Path, quick: bool) -> bool:
    runs: list[dict[str, Any]] = []
    for loop_name in loops:
        for sessions in counts:
            for variant in SERVERS:
                row = measure(variant, loop_name, sessions, trace, QUICK_SETTLE if quick else SETTLE)
                runs.append(row)
                mix = (
                    f" ({row['agents']} agents, {row['chatting']} chatting, {row['queued']} queued)"
                    if variant == "ours"
                    else ""
                )
                print(
                    f"  {variant:4} {loop_name:7} {sessions:>6} sessions: {row['connected']:>6} connected{mix}, "
                    f"{row['bytes_per_session'] / 1024:6.1f} KB each, setup {row['setup_s']:.1f} s{error_note(row)}",
                    flush=True,
                )
    summary = []
    for loop_name in loops:
        for sessions in counts:
            ours = next(
                r for r in runs if r["loop"] == loop_name and r["sessions"] == sessions and r["server"] == "ours"
            )
            bare = next(
                r for r in runs if r["loop"] == loop_name and r["sessions"] == sessions and r["server"] == "bare"
            )
            summary.append(
                {
                    "loop": loop_name,
                    "sessions": sessions,
                    "ours_kb": round(ours["bytes_per_session"] / 1024, 2),
                    "bare_kb": round(bare["bytes_per_session"] / 1024, 2),
                    "ratio": round(ours["bytes_per_session"] / bare["bytes_per_session"], 2)
                    if bare["bytes_per_session"] > 0
                    else None,
                    "ours_rss_mb": round(ours["rss_after"] / 2**20, 1),
                    "bare_rss_mb": round(bare["rss_after"] / 2**20, 1),
                    "ours_connected": ours["connected"],
                    "bare_connected": bare["connected"],
                }
            )
    print()
    print("server RSS per session: (RSS after - RSS before connections) / sessions, after gc.collect()")
    header = (
        f"{'loop':>7} {'sessions':>8} | {'ours KB':>7} {'bare KB':>7} {'ratio':>5} | "
        f"{'ours RSS MB':>11} {'bare RSS MB':>11} | {'connected ours/bare':>19}"
    )
    print_header(header)
    for row in summary:
        print(
            f"{row['loop']:>7} {row['sessions']:>8} | {row['ours_kb']:>7.1f} {row['bare_kb']:>7.1f} "
            f"{row['ratio'] or 0:>5.2f} | {row['ours_rss_mb']:>11.1f} {row['bare_rss_mb']:>11.1f} | "
            f"{row['ours_connected']:>9}/{row['bare_connected']:<9}"
        )
    largest = max(counts)
    worst = max(r["ours_kb"] for r in summary if r["sessions"] == largest)
    complete = all(r["ours_connected"] == r["sessions"] for r in summary if r["sessions"] == largest)
    errors = sum(r["error_count"] for r in runs)
    within = complete and worst * 1024 <= TARGET_BYTES
    figures = f"({largest:,} sessions {'all' if complete else 'NOT all'} connected, {worst:.1f} KB each)"
    figures += f"; {errors} client errors" if errors else ""
    what = f"{TARGET_SESSIONS:,} sessions in one process at <= {TARGET_BYTES // 1024} KB each"
    if largest >= TARGET_SESSIONS:
        target = Target(what, Verdict.MET if within else Verdict.MISSED, figures)
    else:
        limit = f"{'within' if within else 'OVER'} the per-session limit there"
        target = Target(what, Verdict.NOT_MEASURED, f"(largest run {largest:,}; {limit}) {figures}")
    met = target.verdict is Verdict.MET
    print_targets([target])
    report = {
        **report_head(
            "bench_capacity",
            "server RSS bytes per concurrent session",
            versions=versions(("websockets", "pydantic", "uvloop")),
            quick=quick,
            traced=trace,
        ),
        "settings": {
            "sessions": list(counts),
            "loops": list(loops),
            "agent_share": AGENT_SHARE,
            "max_chats_per_agent": MAX_CHATS,
            "per_client_process": PER_PROCESS,
        },
        "target": {"sessions": TARGET_SESSIONS, "bytes_per_session": TARGET_BYTES, "met": met},
        **target_keys([target]),
        "summary": summary,
        "runs": runs,
    }
    save_results(output, report)
    return met


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="500 and 1,000 sessions (CI smoke)")
    parser.add_argument("--sessions", type=int, nargs="+", help="session counts (default 1000 5000 10000 15000)")
    parser.add_argument("--loops", nargs="+", choices=LOOPS, help="server event loops (default uvloop)")
    parser.add_argument("--trace", action="store_true", help="tracemalloc in the servers: where the memory goes")
    parser.add_argument("--json", type=Path, default=RESULTS, help="results file")
    # Internal modes
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--loop", choices=LOOPS, default="uvloop", help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=("customer", "agent", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--expected", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve:
        serve(args.serve, args.loop, args.trace)
        return 0
    if args.client:
        client_process(client_main(args.client, args.port, args.count, args.offset, args.expected))
        return 0
    counts = args.sessions or ([500, 1000] if args.quick else [1000, 5000, 10000, 15000])
    orchestrate(counts, args.loops or ["uvloop"], args.trace, args.json, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
