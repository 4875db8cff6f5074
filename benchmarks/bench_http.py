"""HTTP frameworks: aiohttp's web server vs Starlette on uvicorn, and the mock's own aiohttp front door.

    python benchmarks/bench_http.py [--quick] [--repeat 3] [--duration 3] [--connections 20] [--json PATH]

Issue 10 asks for a real HTTP framework, aiohttp or Starlette on uvicorn:
this measures both in one run. Each server runs in its own process on
127.0.0.1 (a random port; pinned to one CPU, uvloop) and serves the same two
endpoints, both answering with orjson-encoded JSON:

* ``get``: ``GET /healthz``, a tiny JSON object (about 60 bytes);
* ``put``: ``PUT /rest/v2/conversation/conversations/{uuid}/join`` with a
  JSON body of about 1 KB, parsed, answered with about 1 KB of JSON (the
  shape of a REST join or markread).

The servers: ``aiohttp`` (``web.Application`` on an ``AppRunner``, no access
log; the baseline), ``starlette`` (Starlette on ``uvicorn.Server`` with
httptools, the parser ``uvicorn[standard]`` uses) and ``starlette-h11``
(the same on uvicorn's pure-Python h11 parser, what a bare ``pip install
uvicorn`` gives). Without starlette or uvicorn installed (the ``bench``
extra) their cells are "not measured". A fourth cell, ``mock``, is the real
thing: ``python -m simulator serve --port 0 --agents 0`` (websockets and the
aiohttp front door in one process and loop) and its real ``GET /healthz`` on
the HTTP port, to show what our front door costs over bare aiohttp.

The load: client processes (pinned to the other CPU, uvloop) holding a fixed
number of keep-alive HTTP/1.1 connections in all, each sending one request,
reading the whole answer (``Content-Length``) and sending the next, for a
fixed window after a warm-up. The figures per cell: requests per second
(wall), requests per server CPU-second (the server's user + system time from
/proc over the window), p50/p99 latency, and how busy server and clients
were. The ratios are Starlette / aiohttp (and mock / aiohttp), the median of
the runs paired by repeat. Report only, no target. Results go to
benchmarks/results/bench_http.json.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from _common import (
    RESULTS_DIR,
    ROOT,
    Target,
    Verdict,
    child_env,
    client_process,
    error_note,
    format_ratio,
    go_window,
    paired_ratios,
    percentile,
    pin,
    print_header,
    print_targets,
    read_line,
    report_head,
    run_loop,
    save_results,
    start,
    start_ready,
    stop,
    target_keys,
    versions,
    wait_go,
)

RESULTS = RESULTS_DIR / "bench_http.json"
SCRIPT = Path(__file__).resolve()  # what the server and client processes run
BASELINE = "aiohttp"
STARLETTE = ("starlette", "starlette-h11")
SERVERS = (BASELINE, *STARLETTE, "mock")
ENDPOINTS = ("get", "put")
UVICORN_PARSER = {"starlette": "httptools", "starlette-h11": "h11"}
NOT_MEASURED = Verdict.NOT_MEASURED.value

# Bounds (seconds)
START_TIMEOUT = 30.0
CONNECT_TIMEOUT = 30.0
REQUEST_TIMEOUT = 10.0
CLIENT_GRACE = 30.0  # beyond the window: the last answers, the result line

# The two endpoints
HEALTH_PATH = "/healthz"
PUT_PATH = "/rest/v2/conversation/conversations/5a0c6f4e-2b1d-4c3e-9f8a-000000000001/join"


def put_body() -> bytes:
    """The PUT's JSON body, about 1 KB."""
    arn = "arn:webchat-sim:DEMO:participant/customer-000001"
    return orjson.dumps(
        {
            "conversation_participant_arn": arn,
            "conversation_participant_name": "Jordan Example",
            "language_iso_code": "en",
            "merchant_id": "DEMO",
            "question": (
                "Hi! I ordered the blue running shoes last Tuesday and tracking still says 'label created'. "
                "Has the parcel shipped? I need them by Saturday."
            ),
            "customer_profile": {"email": "jordan@example.com", "first_name": "Jordan", "last_name": "Example"},
            "properties": [{"name": f"property_{i}", "value": f"value number {i} of the join"} for i in range(12)],
            "last_message_dts": "2026-11-25T14:05:25.123Z",
        }
    )


def answer(uuid: str, request: dict[str, Any]) -> bytes:
    """The PUT's JSON answer, about 1 KB: the conversation the request joined."""
    return orjson.dumps(
        {
            "conversation": {
                "conversation_uuid": uuid,
                "conversation_arn": f"arn:webchat-sim:DEMO:conversation/{uuid}",
                "merchant_id": request.get("merchant_id"),
                "participants": [
                    {
                        "conversation_participant_arn": request.get("conversation_participant_arn"),
                        "conversation_participant_name": request.get("conversation_participant_name"),
                        "language_iso_code": request.get("language_iso_code"),
                        "status": "joined",
                        "joined_dts": "2026-11-25T14:05:25.123Z",
                    }
                ],
                "properties": request.get("properties", [])[:10],
                "last_conversation_message_body": request.get("question"),
                "unread_messages": False,
                "visible": True,
            },
            "metadata": {},
            "success": True,
        }
    )


def health() -> bytes:
    return orjson.dumps({"status": "ok", "connections": 0, "uptime_s": round(time.monotonic(), 1)})


# ---------------------------------------------------------------------------
# The servers (one process each)


def listening_socket() -> socket.socket:
    sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
    sock.setblocking(False)
    return sock


def serve(server: str) -> None:
    """Serve both endpoints with ``server``'s framework; print ``PORT <n>``; run until SIGTERM."""
    pin("server")
    sock = listening_socket()
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    run_loop("uvloop", serve_aiohttp(sock) if server == BASELINE else serve_starlette(sock, UVICORN_PARSER[server]))


async def serve_aiohttp(sock: socket.socket) -> None:
    from aiohttp import web

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(body=health(), content_type="application/json")

    async def join(request: web.Request) -> web.Response:
        body = answer(request.match_info["uuid"], orjson.loads(await request.read()))
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get(HEALTH_PATH, healthz)
    app.router.add_put("/rest/v2/conversation/conversations/{uuid}/join", join)
    runner = web.AppRunner(app, access_log=None)  # SIGTERM ends the process
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    await asyncio.Event().wait()


async def serve_starlette(sock: socket.socket, parser: str) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def healthz(request: Request) -> Response:
        return Response(health(), media_type="application/json")

    async def join(request: Request) -> Response:
        body = answer(request.path_params["uuid"], orjson.loads(await request.body()))
        return Response(body, media_type="application/json")

    app = Starlette(
        routes=[
            Route(HEALTH_PATH, healthz, methods=["GET"]),
            Route("/rest/v2/conversation/conversations/{uuid}/join", join, methods=["PUT"]),
        ]
    )
    config = uvicorn.Config(app, http=parser, lifespan="off", access_log=False, log_level="warning", backlog=1024)
    await uvicorn.Server(config).serve(sockets=[sock])  # SIGTERM: a graceful exit


def pin_server() -> None:
    pin("server")


def start_mock() -> tuple[subprocess.Popen[str], int]:
    """``python -m simulator serve --port 0 --agents 0`` pinned to the server CPU; it and its HTTP port (the
    second stdout line: ``webchat-sim REST http://H:P/rest/v2 …``)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", "--port", "0", "--agents", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the development-mode warning
        text=True,
        cwd=ROOT,
        env=child_env(),
        preexec_fn=pin_server,
    )
    try:
        read_line(proc, START_TIMEOUT, "mock server")  # webchat-sim serving ws://…
        assert proc.stdout is not None
        # Bounded: printed right after the first line (which may have brought it into the pipe's buffer, where
        # select would not see it), or EOF if the server died.
        line = proc.stdout.readline()
        if not line.startswith("webchat-sim REST "):
            raise RuntimeError(f"mock server: expected 'webchat-sim REST http://H:P/rest/v2 …', got {line!r}")
        rest_url = line.split()[2]  # http://127.0.0.1:P/rest/v2
        return proc, int(rest_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    except BaseException:
        stop(proc)
        raise


# ---------------------------------------------------------------------------
# The load client (its own process): keep-alive HTTP/1.1, one request at a time per connection


def request_bytes(endpoint: str, port: int) -> bytes:
    host = f"Host: 127.0.0.1:{port}\r\n"
    if endpoint == "get":
        return f"GET {HEALTH_PATH} HTTP/1.1\r\n{host}\r\n".encode()
    body = put_body()
    head = f"PUT {PUT_PATH} HTTP/1.1\r\n{host}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def load(endpoint: str, port: int, connections: int) -> dict[str, Any]:
    request = request_bytes(endpoint, port)
    streams = [
        await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), CONNECT_TIMEOUT) for _ in range(connections)
    ]
    t0, t1 = await wait_go()
    latencies: list[float] = []
    errors: list[str] = []
    sizes: list[int] = []

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        clock = time.monotonic
        while (sent := clock()) < t1:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = -1
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length < 0:
                raise RuntimeError(f"no Content-Length: {head[:200]!r}")
            await reader.readexactly(length)
            done = clock()
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head.split(b"\r\n", 1)[0].decode(errors="replace"))
            elif sent >= t0 and done <= t1:
                latencies.append(done - sent)
                if len(sizes) < 1:
                    sizes.append(length)

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(one(reader, writer), t1 - time.monotonic() + REQUEST_TIMEOUT)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
        finally:
            writer.close()

    await asyncio.gather(*(guarded(r, w) for r, w in streams))
    return {
        "requests": len(latencies),
        "latencies_ms": [round(x * 1000, 3) for x in latencies],
        "response_bytes": sizes[0] if sizes else None,
        "errors": errors[:5],
        "error_count": len(errors),
    }


# ---------------------------------------------------------------------------
# Orchestration (no event loop here)


def installed(server: str = "starlette-h11") -> bool:
    """Whether a Starlette cell can run: starlette and uvicorn (and httptools for ``starlette``) installed."""
    needed = ("starlette", "uvicorn", *(("httptools",) if UVICORN_PARSER[server] == "httptools" else ()))
    return all(importlib.util.find_spec(name) is not None for name in needed)


def measure(
    server: str, endpoint: str, proc: subprocess.Popen[str], port: int, args: argparse.Namespace
) -> dict[str, Any]:
    shares = [args.connections // args.clients + (i < args.connections % args.clients) for i in range(args.clients)]
    clients: list[subprocess.Popen[str]] = []
    try:
        for index, share in enumerate(s for s in shares if s):
            command = ["--client", endpoint, "--port", str(port), "--connections", str(share)]
            clients.append(start_ready(SCRIPT, command, timeout=CONNECT_TIMEOUT + 10, what=f"client {index}"))
        pids = [proc.pid, *(c.pid for c in clients)]
        cpu, results = go_window(pids, clients, warmup=args.warmup, duration=args.duration, grace=CLIENT_GRACE)
    finally:
        for client in clients:
            stop(client)
    server_cpu, client_cpu = cpu[0], sum(cpu[1:])
    requests = sum(r["requests"] for r in results)
    latencies = [x for r in results for x in r["latencies_ms"]]
    return {
        "server": server,
        "endpoint": endpoint,
        "status": "measured",
        "connections": args.connections,
        "clients": len(clients),
        "requests": requests,
        "wall_s": args.duration,
        "per_s": round(requests / args.duration, 1),
        "server_cpu_s": round(server_cpu, 3),
        "per_server_cpu_s": round(requests / server_cpu, 1) if server_cpu > 0 else None,
        "server_cpu_us_per_request": round(server_cpu / requests * 1e6, 2) if requests else None,
        "server_busy": round(server_cpu / args.duration, 3),
        "client_busy": round(client_cpu / args.duration, 3),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "response_bytes": next((r["response_bytes"] for r in results if r["response_bytes"]), None),
        "errors": [e for r in results for e in r["errors"]][:5],
        "error_count": sum(r["error_count"] for r in results),
    }


def run_server(server: str, repeat: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every endpoint of one server (started once for them), or ``not measured`` rows."""
    endpoints = ("get",) if server == "mock" else ENDPOINTS
    if server in STARLETTE and not installed(server):
        return [{"server": server, "endpoint": e, "status": NOT_MEASURED, "repeat": repeat} for e in endpoints]
    if server == "mock":
        proc, port = start_mock()
    else:
        proc = start(SCRIPT, ["--serve", server], stdin=False)
    runs = []
    try:
        if server != "mock":
            port = int(read_line(proc, START_TIMEOUT, f"{server} server").split()[1])
        for endpoint in endpoints:
            run = measure(server, endpoint, proc, port, args)
            run["repeat"] = repeat
            runs.append(run)
            print(
                f"  {server:>13} {endpoint} #{repeat + 1}: {run['per_s']:>8,.0f} req/s,"
                f" {run['per_server_cpu_s'] or 0:>8,.0f} req/server-CPU-s, p50 {run['p50_ms'] or 0:5.2f} ms,"
                f" p99 {run['p99_ms'] or 0:5.2f} ms, server {run['server_busy']:.2f} / clients"
                f" {run['client_busy']:.2f} cores{error_note(run)}",
                flush=True,
            )
    finally:
        stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()
    return runs


def median_of(runs: Sequence[dict[str, Any]], server: str, endpoint: str, key: str) -> float | None:
    found = [r[key] for r in runs if r["server"] == server and r["endpoint"] == endpoint and r.get(key) is not None]
    return statistics.median(found) if found else None


def ratio(runs: Sequence[dict[str, Any]], key: str, variant: str, endpoint: str) -> dict[str, Any]:
    found = paired_ratios(runs, key, field="server", variant=variant, baseline=BASELINE, endpoint=endpoint)
    return {"median": found.median(3), "range": found.range(3)}


def print_table(runs: Sequence[dict[str, Any]], args: argparse.Namespace) -> None:
    print()
    print(f"{args.connections} keep-alive connections, {args.duration:g} s per cell, median of {args.repeat}")
    header = (
        f"{'server':>13} | {'endpoint':>8} | {'req/s':>8} | {'req/server-CPU-s':>16} | {'µs CPU/req':>10}"
        f" | {'p50 ms':>7} | {'p99 ms':>7} | {'server cores':>12} | {'bytes':>5}"
    )
    print_header(header)
    for server in SERVERS:
        for endpoint in ENDPOINTS:
            cell = [r for r in runs if r["server"] == server and r["endpoint"] == endpoint]
            if not cell:
                continue
            if cell[0]["status"] != "measured":
                print(f"{server:>13} | {endpoint:>8} | {NOT_MEASURED} (pip install -e '.[bench]')")
                continue

            def med(key: str, cell_server: str = server, cell_endpoint: str = endpoint) -> float:
                return median_of(runs, cell_server, cell_endpoint, key) or 0.0

            print(
                f"{server:>13} | {endpoint:>8} | {med('per_s'):>8,.0f} | {med('per_server_cpu_s'):>16,.0f} |"
                f" {med('server_cpu_us_per_request'):>10.1f} | {med('p50_ms'):>7.2f} | {med('p99_ms'):>7.2f} |"
                f" {med('server_busy'):>12.2f} | {cell[0]['response_bytes'] or 0:>5}"
            )


def orchestrate(args: argparse.Namespace) -> int:
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeat):
        for server in SERVERS:
            runs.extend(run_server(server, repeat, args))
    print_table(runs, args)

    ratios: dict[str, Any] = {}
    for variant in (*STARLETTE, "mock"):
        for endpoint in ("get",) if variant == "mock" else ENDPOINTS:
            ratios[f"{variant}/{BASELINE} {endpoint}"] = {
                key: ratio(runs, key, variant, endpoint) for key in ("per_server_cpu_s", "per_s", "p50_ms", "p99_ms")
            }
    print("\nratios (median [min-max] of the paired runs)")
    print_header(f"{'cells':>26} | {'req/server-CPU-s':>18} | {'req/s':>18} | {'p50':>18} | {'p99':>18}")
    for name, found in ratios.items():
        shown = [format_ratio(found[key]["median"], found[key]["range"]) for key in found]
        print(f"{name:>26} | " + " | ".join(f"{text:>18}" for text in shown))

    if installed("starlette"):
        get, put = (ratios[f"starlette/{BASELINE} {endpoint}"]["per_server_cpu_s"]["median"] for endpoint in ENDPOINTS)
        starlette_line = f"Starlette on uvicorn (httptools) / aiohttp: {get or 0:.2f}x (GET), {put or 0:.2f}x (PUT)"
    else:
        starlette_line = f"Starlette on uvicorn: {NOT_MEASURED} (starlette, uvicorn or httptools not installed)"
    mock = ratios[f"mock/{BASELINE} get"]["per_server_cpu_s"]["median"]
    targets = [
        Target(f"requests per server CPU-second, {starlette_line}", Verdict.REPORT),
        Target(f"the mock's GET /healthz per server CPU-second / bare aiohttp: {mock or 0:.2f}x", Verdict.REPORT),
    ]
    print()
    print_targets(targets)

    document = {
        **report_head(
            "bench_http",
            "HTTP requests per server CPU-second (and per wall second, p50/p99 latency)",
            versions=versions(["aiohttp", "starlette", "uvicorn", "httptools", "h11", "uvloop", "orjson"]),
            quick=args.quick,
        ),
        "settings": {
            "connections": args.connections,
            "clients": args.clients,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "repeat": args.repeat,
            "pinned": "server and clients on separate CPUs" if hasattr(os, "sched_setaffinity") else "not pinned",
            "put_body_bytes": len(put_body()),
        },
        **target_keys(targets),
        "ratios": ratios,
        "runs": runs,
    }
    save_results(args.json, document)
    return 0 if all(not r.get("error_count") for r in runs) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 s per cell, one repeat")
    parser.add_argument("--repeat", type=int, help="runs per cell, paired by repeat (default 3; --quick: 1)")
    parser.add_argument("--duration", type=float, help="measured seconds per cell (default 3; --quick: 1)")
    parser.add_argument("--warmup", type=float, help="seconds of load before the window (default 0.5; --quick: 0.3)")
    parser.add_argument("--connections", type=int, default=20, help="keep-alive connections in all (default 20)")
    parser.add_argument("--clients", type=int, default=2, help="client processes sharing them (default 2)")
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--serve", choices=(BASELINE, *STARLETTE), help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=ENDPOINTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    if args.client:
        client_process(load(args.client, args.port, args.connections))
        return 0
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.duration = args.duration or (1.0 if args.quick else 3.0)
    args.warmup = args.warmup or (0.3 if args.quick else 0.5)
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
