"""Server relay throughput: customer -> agent chat messages per second, and per server CPU-second.

    python benchmarks/bench_relay.py [--quick] [--pairs 50 200] [--repeat 3] [--floor] [--db] [--json PATH]

Two servers, each in its own process on 127.0.0.1 (random port), pinned to one
CPU, run with the standard asyncio loop and with uvloop:

* ``ours`` — :class:`simulator.mock.server.WebchatServer` around an
  :class:`simulator.mock.engine.Engine` (no autopilot, round-robin routing,
  ``max_chats_per_agent=1``, rate limits raised): per message it decodes and
  validates the frame, stores and stamps it, acknowledges it to the customer,
  delivers it to the agent and sends the agent a ``new message`` summary;
* ``bare`` — the same ``websockets`` library and loop, no engine: each text
  frame is forwarded as is to the paired connection (``?pair=N&role=...``).
  Its throughput is the ceiling ours is compared with;
* ``floor`` (with ``--floor``) — the bare server sending what ours sends (the
  frame back to the sender, the frame and a summary-sized event to the peer,
  one write per connection), without an engine: how much of the gap is the
  protocol's I/O rather than our code;
* ``db`` (with ``--db``) — ours with storage (``serve --db``: a SQLite file
  in a temporary directory, WAL, group commit, every acknowledgement held
  until committed): the cost of durability, as ``db/ours`` per server
  CPU-second (target >= 0.75: at most 25 % fewer messages per CPU-second).

The same client drives all: several processes (asyncio + uvloop, the minimal
:mod:`rawws` client, so that the clients are not the bottleneck; pinned to the
other CPU), each holding some of the customer/agent pairs. In ours, every pair is a chat: a process logs its agents
in, then its customers start conversations and are engaged by them (processes
set up one after the other, so round-robin hands each customer an agent of
its own process). Each customer sends a typical ~600-byte chat ``message``
frame (unique ``client_message_id``), waits until its agent receives it, and
sends the next one (one message in flight per pair), bounded in time.

Figures over the measured window (after a warm-up): messages relayed per
second (wall), p50/p99 delivery latency (customer send -> agent receives the
``message`` frame) and messages per **server CPU-second** (``/proc`` deltas of
the server process) — the fairer figure on a 2-CPU machine shared with the
clients (their CPU use is printed too: near 1.0, they were the bottleneck).
Target: ours >= 0.6x bare, per second and per server CPU-second. Results go
to benchmarks/results/bench_relay.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import (
    RESULTS_DIR,
    ROOT,
    Target,
    Verdict,
    client_process,
    error_note,
    go_window,
    judge,
    paired_ratios,
    pin,
    print_header,
    print_targets,
    read_line,
    report_head,
    run_loop,
    save_results,
    start,
    stop,
    target_keys,
    versions,
)

RESULTS = RESULTS_DIR / "bench_relay.json"
SERVERS = ("bare", "ours")
FLOOR = "floor"
DB = "db"
DB_TARGET = 0.75
LOOPS = ("asyncio", "uvloop")
TARGET = 0.6
PROFILE_ENV = "BENCH_RELAY_PROFILE"  # set by --profile-server for the server processes

# Bounds
CONNECT_TIMEOUT = 20.0
DELIVERY_TIMEOUT = 10.0
SETUP_TIMEOUT = 60.0
SERVER_LIFETIME = 900.0
CLIENT_GRACE = 60.0  # beyond the measured window: closing, reporting
MAX_PER_PROCESS = 5_000

# ---------------------------------------------------------------------------
# The servers (asyncio; one process each)


def serve(variant: str, loop_name: str, lifetime: float, db: str | None = None) -> None:
    """Print ``PORT <n>``; serve until SIGTERM or ``lifetime`` seconds (with
    ``--profile-server``, ours under cProfile, its stats written at the end)."""
    pin("server")
    profile_to = os.environ.get(PROFILE_ENV) if variant == "ours" else None
    profiler = cProfile.Profile(time.process_time) if profile_to else None  # CPU time: the machine may be shared

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        if variant == "ours":
            await serve_ours(stop, lifetime, db)
        else:
            await serve_bare(stop, lifetime, floor=variant == FLOOR)

    if profiler is None:
        run_loop(loop_name, main())
        return
    profiler.enable()
    try:
        run_loop(loop_name, main())
    finally:
        profiler.disable()
        profiler.dump_stats(f"{profile_to}.{os.getpid()}")


async def serve_ours(stop: asyncio.Event, lifetime: float, db: str | None = None) -> None:
    import random

    from simulator.mock.engine import Engine, EngineConfig, Routing
    from simulator.mock.persist import StoreOptions, open_store
    from simulator.mock.server import ServerConfig, WebchatServer

    engine = Engine(
        EngineConfig(routing=Routing.ROUND_ROBIN, max_chats_per_agent=1, max_messages_per_conversation=10_000_000),
        rng=random.Random(1),
    )
    config = ServerConfig(port=0, frames_per_second=1e9, burst=1_000_000_000, max_connections=100_000)
    server = WebchatServer(engine, config)
    store = open_store(StoreOptions(path=db), engine) if db is not None else None
    if store is not None:
        server.store = store
        store.start(server.carry_out)
    async with server:
        print(f"PORT {server.port}", flush=True)
        await wait(stop, lifetime)
    if store is not None:
        await store.drain()
        store.close()


async def serve_bare(stop: asyncio.Event, lifetime: float, *, floor: bool) -> None:
    """The bare relay; with ``floor``, it sends what ours sends, without an
    engine: the frame back to the sender (its acknowledgement), the frame and
    a summary-sized event to the peer (one write per connection, as ours)."""
    from urllib.parse import parse_qs, urlsplit

    from websockets.asyncio.server import ServerConnection, broadcast
    from websockets.asyncio.server import serve as ws_serve

    peers: dict[tuple[str, str], ServerConnection] = {}
    other = {"customer": "agent", "agent": "customer"}
    summary = b'{"type":"event","event_type":"new message","padding":"' + b"x" * 1780 + b'"}'

    async def relay(ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
        pair, role = query["pair"][0], query["role"][0]
        peers[pair, role] = ws
        try:
            async for data in ws:
                if (peer := peers.get((pair, other[role]))) is None:
                    continue
                if not floor:
                    broadcast((peer,), data)
                    continue
                raw = data.encode() if isinstance(data, str) else data
                broadcast((ws,), raw, text=True)
                peer.protocol.send_text(raw)
                peer.protocol.send_text(summary)
                peer.transport.write(b"".join(peer.protocol.data_to_send()))
        finally:
            del peers[pair, role]

    async with ws_serve(relay, "127.0.0.1", 0, compression=None, backlog=4096, max_queue=64) as server:
        print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
        await wait(stop, lifetime)


async def wait(stop: asyncio.Event, lifetime: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), lifetime)


# ---------------------------------------------------------------------------
# A client process (asyncio + uvloop; rawws clients)


def chat_message(conversation_uuid: str, marker: str) -> tuple[bytes, bytes]:
    """A typical customer chat ``message`` frame, split around its client_message_id."""
    import orjson

    arn = "arn:aws:connect:us-east-1:000000000000:instance/DEMO/participant/5a0c6f4e-2b1d-4c3e-9f8a-0123456789ab"
    frame = {
        "type": "message",
        "conversation_uuid": conversation_uuid,
        "message": {
            "author_conversation_participant_arn": arn,
            "author_conversation_participant_name": "Jordan Example",
            "body": (
                "Hi! I ordered the blue running shoes last Tuesday and tracking still says 'label created'. "
                "Has the parcel shipped? I need them by Saturday."
            ),
            "client_message_id": marker,
            "language_iso_code": "en",
            "merchant_id": "DEMO",
            "message_dts": "2026-11-25T14:05:25.123Z",
            "message_epoch": 1795615525123,
            "type": "message",
            "transport_statuses": [{"conversation_participant_arn": arn, "status": "sent"}],
        },
    }
    head, tail = orjson.dumps(frame).split(marker.encode())
    return head, tail


_MESSAGE = b'{"type":"message"'
_CID = b'"client_message_id":"'


class Pending:
    """Messages sent and not yet received by their agent, keyed by client_message_id."""

    def __init__(self) -> None:
        self.waiting: dict[bytes, asyncio.Future[float]] = {}

    def on_agent_frame(self, data: bytes) -> None:
        if not data.startswith(_MESSAGE):
            return  # summaries, queue updates
        start = data.find(_CID)
        if start < 0:
            return
        start += len(_CID)
        cid = data[start : data.index(b'"', start)]
        future = self.waiting.pop(cid, None)
        if future is not None and not future.done():
            future.set_result(time.monotonic())


async def client_main(variant: str, port: int, pairs: int, index: int) -> dict[str, Any]:
    import orjson
    from rawws import RawClient, connect

    loop = asyncio.get_running_loop()
    pending = Pending()
    errors: list[str] = []
    sockets: list[RawClient] = []
    path = "/ws" if variant == "ours" else "/"

    async def open_ws(query: str, on_text: Callable[[bytes], None] | None) -> RawClient:
        client = await connect("127.0.0.1", port, f"{path}?{query}", on_text, timeout=CONNECT_TIMEOUT)
        sockets.append(client)
        return client

    customers: list[RawClient] = []
    conversations: list[str] = []
    if variant != "ours":
        for k in range(pairs):
            pair = f"{index}-{k}"
            await open_ws(f"pair={pair}&role=agent", pending.on_agent_frame)
            customers.append(await open_ws(f"pair={pair}&role=customer", None))
            conversations.append(f"00000000-0000-4000-8000-{index:04d}{k:08d}")
    else:
        # Agents first; then each customer starts a conversation and is engaged by one of them.
        for k in range(pairs):
            await open_ws(f"role=agent&name=bench-agent-{index}-{k}&queues=support", pending.on_agent_frame)
        engaged: list[asyncio.Future[str]] = [loop.create_future() for _ in range(pairs)]

        def on_customer_frame(k: int) -> Callable[[bytes], None]:
            future = engaged[k]

            def handle(data: bytes) -> None:
                if not future.done() and b'"participant join"' in data:
                    future.set_result(orjson.loads(data)["conversation_uuid"])

            return handle

        start = orjson.dumps(
            {
                "type": "event",
                "event_type": "webchat start conversation",
                "event_engage_customer": {"queue_name": "support", "question": "Hello?"},
            }
        )
        for k in range(pairs):
            customer = await open_ws(f"role=customer&name=bench-customer-{index}-{k}", on_customer_frame(k))
            customer.send_text(start)
            customers.append(customer)
        async with asyncio.timeout(SETUP_TIMEOUT):
            conversations = list(await asyncio.gather(*engaged))

    print("READY", flush=True)
    command = await loop.run_in_executor(None, sys.stdin.readline)
    _, t0_text, t1_text = command.split()
    t0, t1 = float(t0_text), float(t1_text)

    latencies: list[float] = []
    counted = 0

    async def chat(k: int) -> None:
        nonlocal counted
        head, tail = chat_message(conversations[k], "MARKER")
        customer = customers[k]
        number = 0
        while (sent := time.monotonic()) < t1:
            cid = f"{index}-{k}-{number}".encode()
            number += 1
            future: asyncio.Future[float] = loop.create_future()
            pending.waiting[cid] = future
            customer.send_text(head + cid + tail)
            try:
                arrived = await asyncio.wait_for(future, DELIVERY_TIMEOUT)
            except TimeoutError:
                errors.append(f"pair {k}: message {cid.decode()} not delivered within {DELIVERY_TIMEOUT:g} s")
                pending.waiting.pop(cid, None)
                return
            if sent >= t0:
                counted += 1
                latencies.append(arrived - sent)

    try:
        async with asyncio.timeout(t1 - time.monotonic() + DELIVERY_TIMEOUT + 5):
            await asyncio.gather(*(chat(k) for k in range(pairs)))
    except TimeoutError:
        errors.append("chat: did not end in time")
    for client in sockets:
        client.close()
    try:
        async with asyncio.timeout(5):
            await asyncio.gather(*(client.closed for client in sockets))
    except TimeoutError:
        for client in sockets:
            client.abort()
    latencies.sort()
    return {
        "index": index,
        "pairs": pairs,
        "messages": counted,
        "latencies_ms_sample": [round(x * 1000, 3) for x in latencies[:: max(1, len(latencies) // 2000)]],
        "errors": errors[:5],
        "error_count": len(errors),
    }


# ---------------------------------------------------------------------------
# Orchestration (no event loop here)


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(variant: str, loop_name: str, pairs: int, processes: int, warmup: float, duration: float) -> dict[str, Any]:
    scratch = tempfile.TemporaryDirectory(prefix="bench-relay-db-") if variant == DB else None
    storage = ["--db-file", str(Path(scratch.name) / "relay.db")] if scratch is not None else []
    served = "ours" if variant == DB else variant
    server = start(
        __file__, ["--serve", served, "--loop", loop_name, "--lifetime", str(SERVER_LIFETIME), *storage], stdin=False
    )
    clients: list[subprocess.Popen[str]] = []
    try:
        port = int(read_line(server, 30, f"{variant} server").split()[1])
        shares = [pairs // processes + (1 if i < pairs % processes else 0) for i in range(processes)]
        for index, share in enumerate(s for s in shares if s):
            client = start(
                __file__, ["--client", served, "--port", str(port), "--pairs", str(share), "--index", str(index)]
            )
            clients.append(client)
            # One process at a time: its customers are engaged by its own agents.
            line = read_line(client, SETUP_TIMEOUT + CONNECT_TIMEOUT, f"client {index} setup")
            if line != "READY":
                raise RuntimeError(f"client {index}: expected READY, got {line!r}")
        pids = [server.pid] + [c.pid for c in clients]
        cpu, results = go_window(pids, clients, warmup=warmup, duration=duration, grace=CLIENT_GRACE)
    finally:
        for client in clients:
            stop(client)
        stop(server)
        if scratch is not None:
            scratch.cleanup()
    server_cpu = cpu[0]
    client_cpu = sum(cpu[1:])
    messages = sum(r["messages"] for r in results)
    latencies = [x for r in results for x in r["latencies_ms_sample"]]
    errors = [e for r in results for e in r["errors"]]
    return {
        "server": variant,
        "loop": loop_name,
        "pairs": pairs,
        "processes": len(clients),
        "messages": messages,
        "wall_s": duration,
        "per_s": round(messages / duration, 1),
        "server_cpu_s": round(server_cpu, 3),
        "per_server_cpu_s": round(messages / server_cpu, 1) if server_cpu > 0 else None,
        "server_cpu_us_per_message": round(server_cpu / messages * 1e6, 2) if messages else None,
        "server_busy": round(server_cpu / duration, 3),
        "client_busy": round(client_cpu / duration, 3),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "errors": errors[:5],
        "error_count": sum(r["error_count"] for r in results),
    }


def paired_ratio(cell: Sequence[dict[str, Any]], key: str, baseline: str, variant: str = "ours") -> float | None:
    """The median of the paired ``variant / baseline`` ratios of ``key`` in a cell, rounded to 3 digits."""
    return paired_ratios(cell, key, field="server", variant=variant, baseline=baseline).median(3)


def orchestrate(
    pair_counts: Sequence[int],
    loops: Sequence[str],
    repeat: int,
    processes: int,
    warmup: float,
    duration: float,
    output: Path,
    quick: bool,
    floor: bool,
    db: bool = False,
) -> bool:
    variants = (*SERVERS, *((FLOOR,) if floor else ()), *((DB,) if db else ()))
    runs: list[dict[str, Any]] = []
    for pairs in pair_counts:
        for loop_name in loops:
            for round_number in range(repeat):
                for variant in variants:
                    result = measure(variant, loop_name, pairs, min(processes, pairs), warmup, duration)
                    result["repeat"] = round_number
                    runs.append(result)
                    print(
                        f"  {variant:5} {loop_name:7} pairs={pairs:<4} #{round_number + 1}: "
                        f"{result['per_s']:>8,.0f} msg/s, {result['per_server_cpu_s'] or 0:>8,.0f}/server-CPU-s, "
                        f"p50 {result['p50_ms'] or 0:6.2f} ms, p99 {result['p99_ms'] or 0:6.2f} ms, "
                        f"server busy {result['server_busy']:.2f}, clients busy {result['client_busy']:.2f}"
                        f"{error_note(result)}",
                        flush=True,
                    )

    summary = []
    for pairs in pair_counts:
        for loop_name in loops:
            cell = [r for r in runs if r["pairs"] == pairs and r["loop"] == loop_name]
            row: dict[str, Any] = {"pairs": pairs, "loop": loop_name}
            for variant in variants:
                mine = [r for r in cell if r["server"] == variant]
                for key in ("per_s", "per_server_cpu_s", "p50_ms", "p99_ms", "server_busy", "client_busy"):
                    values = [r[key] for r in mine if r[key] is not None]
                    row[f"{variant}_{key}"] = round(statistics.median(values), 3) if values else None
            for key in ("per_s", "per_server_cpu_s"):
                row[f"ratio_{key}"] = paired_ratio(cell, key, "bare")
            if floor:
                row["ratio_floor_per_server_cpu_s"] = paired_ratio(cell, "per_server_cpu_s", FLOOR)
                row["floor_over_bare_per_server_cpu_s"] = paired_ratio(cell, "per_server_cpu_s", "bare", FLOOR)
            if db:
                for key in ("per_s", "per_server_cpu_s"):
                    row[f"ratio_db_{key}"] = paired_ratio(cell, key, "ours", DB)
                    pairs_of = [(r, o) for r in cell if r["server"] == DB for o in cell if o["server"] == "ours"]
                    values = [r[key] / o[key] for r, o in pairs_of if o["repeat"] == r["repeat"] and r[key] and o[key]]
                    row[f"range_db_{key}"] = [round(min(values), 3), round(max(values), 3)] if values else None
            summary.append(row)

    print()
    print(f"customer -> agent messages (median of {repeat}); ratio = median of the paired ours/bare ratios")
    header = (
        f"{'pairs':>5} {'loop':>7} | {'ours/s':>7} {'bare/s':>7} {'ratio':>5} | {'ours/CPU-s':>10} {'bare/CPU-s':>10} "
        f"{'ratio':>5} | {'ours p50/p99 ms':>15} | {'bare p50/p99 ms':>15} | {'clients busy':>12}"
    )
    print_header(header)
    for row in summary:
        print(
            f"{row['pairs']:>5} {row['loop']:>7} | {row['ours_per_s'] or 0:>7,.0f} {row['bare_per_s'] or 0:>7,.0f} "
            f"{row['ratio_per_s'] or 0:>5.2f} | {row['ours_per_server_cpu_s'] or 0:>10,.0f} "
            f"{row['bare_per_server_cpu_s'] or 0:>10,.0f} {row['ratio_per_server_cpu_s'] or 0:>5.2f} | "
            f"{row['ours_p50_ms'] or 0:>7.2f}/{row['ours_p99_ms'] or 0:<7.2f} | "
            f"{row['bare_p50_ms'] or 0:>7.2f}/{row['bare_p99_ms'] or 0:<7.2f} | "
            f"{row['ours_client_busy'] or 0:>5.2f}/{row['bare_client_busy'] or 0:<6.2f}"
        )
    if floor:
        print()
        print("I/O floor: the bare server sending what ours sends (ack + message + summary-sized event), no engine")
        print(f"{'pairs':>5} {'loop':>7} | {'floor/CPU-s':>11} {'floor/bare':>10} | {'ours/floor':>10}")
        for row in summary:
            print(
                f"{row['pairs']:>5} {row['loop']:>7} | {row['floor_per_server_cpu_s'] or 0:>11,.0f} "
                f"{row['floor_over_bare_per_server_cpu_s'] or 0:>10.2f} | "
                f"{row['ratio_floor_per_server_cpu_s'] or 0:>10.2f}"
            )
    targets = []
    if db:
        print()
        print("durability: ours with --db (SQLite file, group commit, acks held until committed) / ours in memory")
        print(f"{'pairs':>5} {'loop':>7} | {'db/CPU-s':>9} {'db/ours':>7} {'range':>13} | {'db/s':>7} {'db/ours':>7} | "
              f"{'db p50/p99 ms':>15}")  # fmt: skip
        for row in summary:
            span = row["range_db_per_server_cpu_s"] or [0, 0]
            print(
                f"{row['pairs']:>5} {row['loop']:>7} | {row['db_per_server_cpu_s'] or 0:>9,.0f} "
                f"{row['ratio_db_per_server_cpu_s'] or 0:>7.2f} {span[0]:>6.2f}-{span[1]:<6.2f} | "
                f"{row['db_per_s'] or 0:>7,.0f} {row['ratio_db_per_s'] or 0:>7.2f} | "
                f"{row['db_p50_ms'] or 0:>7.2f}/{row['db_p99_ms'] or 0:<7.2f}"
            )
        worst_db = min((r["ratio_db_per_server_cpu_s"] or 0.0) for r in summary)
        targets.append(
            Target(
                f"with --db >= {DB_TARGET:g}x in memory, per server CPU-second (durability costs <= 25 %)",
                judge(worst_db, DB_TARGET, higher_is_better=True),
                f"(median of the paired runs {worst_db:.2f}x in the worst cell; each run's ratio in the range column)",
            )
        )
    worst_cpu = min((r["ratio_per_server_cpu_s"] or 0.0) for r in summary)
    worst_wall = min((r["ratio_per_s"] or 0.0) for r in summary)
    failures = sum(r["error_count"] for r in runs)
    target = Target(
        f"ours >= {TARGET:g}x bare, per server CPU-second and per second",
        judge(min(worst_cpu, worst_wall), TARGET, higher_is_better=True),
        f"(worst {worst_cpu:.2f}x per CPU-s, {worst_wall:.2f}x per s)"
        + (f"; {failures} client errors" if failures else ""),
    )
    met = target.verdict is Verdict.MET
    print_targets([target, *targets])
    report = {
        **report_head(
            "bench_relay",
            "customer -> agent chat messages: per second, per server CPU-second; latency in ms",
            versions=versions(("websockets", "pydantic", "orjson", "uvloop")),
            quick=quick,
        ),
        "settings": {
            "pairs": list(pair_counts),
            "loops": list(loops),
            "repeat": repeat,
            "client_processes": processes,
            "warmup_s": warmup,
            "duration_s": duration,
            "floor": floor,
            "db": db,
        },
        "target": {
            "ratio": TARGET,
            "met": met,
            "worst_ratio_per_server_cpu_s": worst_cpu,
            "worst_ratio_per_s": worst_wall,
        },
        **target_keys([target, *targets]),
        "summary": summary,
        "runs": runs,
    }
    save_results(output, report)
    return met


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="20 pairs, short runs, one run each (CI smoke)")
    parser.add_argument("--pairs", type=int, nargs="+", help="customer/agent pairs (default 50 200; --quick: 20)")
    parser.add_argument("--loops", nargs="+", choices=LOOPS, help="server event loops (default both)")
    parser.add_argument("--repeat", type=int, help="runs per cell; medians are reported (default 3; --quick: 1)")
    parser.add_argument("--processes", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--duration", type=float, help="measured window, seconds (default 5; --quick: 1.5)")
    parser.add_argument("--warmup", type=float, help="warm-up before the window, seconds (default 1; --quick: 0.5)")
    parser.add_argument(
        "--json", type=Path, default=RESULTS, help=f"results file (default {RESULTS.relative_to(ROOT)})"
    )
    parser.add_argument(
        "--profile-server",
        type=Path,
        metavar="PREFIX",
        help="run ours under cProfile (CPU time); each server process writes PREFIX.<pid> (pstats)",
    )
    # Internal modes
    parser.add_argument(
        "--floor", action="store_true", help="also measure the I/O floor: bare sending what ours sends, no engine"
    )
    parser.add_argument(
        "--db", action="store_true", help="also measure ours with storage (serve --db on a temporary file)"
    )
    parser.add_argument("--db-file", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--serve", choices=(*SERVERS, FLOOR), help=argparse.SUPPRESS)
    parser.add_argument("--loop", choices=LOOPS, default="uvloop", help=argparse.SUPPRESS)
    parser.add_argument("--lifetime", type=float, default=SERVER_LIFETIME, help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=(*SERVERS, FLOOR), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve:
        serve(args.serve, args.loop, args.lifetime, args.db_file)
        return 0
    if args.client:
        client_process(client_main(args.client, args.port, args.pairs[0], args.index))
        return 0
    if args.profile_server:
        os.environ[PROFILE_ENV] = str(args.profile_server.resolve())
    pair_counts = args.pairs or ([20] if args.quick else [50, 200])
    if max(pair_counts) * 2 > MAX_PER_PROCESS * args.processes:
        parser.error(f"at most {MAX_PER_PROCESS} connections per client process")
    met = orchestrate(
        pair_counts,
        args.loops or list(LOOPS),
        args.repeat or (1 if args.quick else 3),
        args.processes,
        args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0),
        args.duration or (1.5 if args.quick else 5.0),
        args.json,
        args.quick,
        args.floor,
        args.db,
    )
    del met  # the verdict is printed; a missed target is not a crash
    return 0


if __name__ == "__main__":
    sys.exit(main())
