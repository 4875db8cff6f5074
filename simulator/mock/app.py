"""Running the mock server as a program: build the core from options, serve
until SIGINT/SIGTERM, print the URL when ready; a socket that cannot be
bound is one line on stderr and exit status 1."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

from ..errors import BindError, StoreError
from ..fake import ChatFaker
from ..pace import DEFAULT_COUPON_PROBABILITY, DEFAULT_EXCHANGES, DEFAULT_ITEM_PROBABILITY, DEFAULT_PACE, Pace
from .access import FrontDoor
from .autopilot import AutopilotAgent, AutopilotHub
from .engine import Engine, EngineConfig, Routing
from .http import HttpSide, make_app
from .persist import StoreOptions, open_store
from .rest_models import RateLimiter, engine_of
from .server import Core, ServerConfig, WebchatServer
from .tokens import TokenIssuer, new_secret

T = TypeVar("T")

__all__ = [
    "BindError",
    "MockOptions",
    "bind_error_message",
    "build_core",
    "build_door",
    "run",
    "serve_until_stopped",
]

log = logging.getLogger("webchat_sim")


@dataclass(frozen=True, kw_only=True)
class MockOptions:
    """Everything ``webchat-sim serve`` can be told."""

    server: ServerConfig = field(default_factory=ServerConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    agents: int = 2
    pace: Pace = DEFAULT_PACE
    seed: int | None = None
    coupon_probability: float = DEFAULT_COUPON_PROBABILITY
    item_probability: float = DEFAULT_ITEM_PROBABILITY
    exchanges: tuple[int, int] = DEFAULT_EXCHANGES
    http_port: int | None = None
    """The HTTP side's port (``None``: the websocket port + 1, or 0 when that is 0)."""
    api_keys: dict[str, str | None] = field(default_factory=dict)
    """``--api-key KEY[=AGENT NAME]``; none: development mode."""
    auth_required: bool = False
    """Refuse query-string identities even without API keys."""
    jwt_secret: str | None = None
    """``None``: a fresh secret from ``secrets`` per run."""
    token_ttl: float = 3600.0
    rest_rate: float = 50.0
    """REST calls a second per caller (bursts of twice that); 0: no limit."""
    store: StoreOptions | None = None
    """``--db PATH`` (and ``--retain``): stored, restored at start (:mod:`.persist`); ``None``: memory only."""
    record: str | None = None
    """``--record FILE.jsonl``: a transcript of every frame (:mod:`.record`)."""

    @property
    def http_port_or_default(self) -> int:
        if self.http_port is not None:
            return self.http_port
        port = self.server.port
        return 0 if port in (0, 65535) else port + 1


def bind_error_message(error: OSError, host: str, port: int) -> str:
    """One line telling a user why ``host``:``port`` cannot be listened on, and what to try."""
    if isinstance(error, socket.gaierror):
        return f"cannot resolve --host {host!r} ({error.strerror or error}); try --host 127.0.0.1"
    code = error.errno
    if code == errno.EADDRINUSE:
        return f"port {port} on {host} is in use (try --port 0)"
    if code == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host} port {port}: not an address of this machine (try --host 127.0.0.1)"
    if code in (errno.EACCES, errno.EPERM):
        hint = "ports below 1024 need privileges; try --port 0" if 0 < port < 1024 else "try --port 0"
        return f"permission denied to listen on port {port} on {host} ({hint})"
    reason = error.strerror or str(error) or type(error).__name__
    return f"cannot listen on port {port} on {host}: {reason}"


def build_door(options: MockOptions) -> FrontDoor:
    """API keys and tokens: the secret is ``--jwt-secret`` or fresh from ``secrets``."""
    issuer = TokenIssuer(options.jwt_secret or new_secret(), options.engine.merchant_id, options.token_ttl)
    return FrontDoor(issuer, options.api_keys, auth_required=options.auth_required)


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _warn_mode(options: MockOptions, door: FrontDoor) -> None:
    """Say on stderr what anyone who can reach the ports may do."""
    if door.development:
        print(
            "WARNING: development mode, no authentication: any client may connect as any customer or agent "
            "(choose the role with ?role=customer or ?role=agent&name=…&queues=…) and any API key is accepted",
            file=sys.stderr,
            flush=True,
        )
    elif door.any_key:
        print(
            "WARNING: --auth required without --api-key: the websocket takes tokens only, "
            "but any API key gets one from PUT /rest/v2/conversation/agent/auth",
            file=sys.stderr,
            flush=True,
        )
    faults = options.server.faults
    if faults.any:
        shown = " ".join(f"{k}={v}" for k, v in faults.to_json().items() if v and k != "seed")
        print(f"WARNING: injecting faults: {shown} (GET/PUT /admin/faults)", file=sys.stderr, flush=True)
    host = options.server.host
    if door.any_key and host not in _LOOPBACK and not host.startswith("127."):
        print(
            f"WARNING: listening on {host} without --api-key: anyone who can reach it can act as any agent",
            file=sys.stderr,
            flush=True,
        )


def build_core(options: MockOptions) -> Core:
    """The engine, hosting ``options.agents`` autopilot agents if any."""
    rng = random.Random(options.seed)
    engine = Engine(options.engine, rng=random.Random(rng.getrandbits(64)))
    if options.agents <= 0:
        return engine
    names = ChatFaker(options.seed)
    bots = []
    for i in range(options.agents):
        persona = names.agent()
        bots.append(
            AutopilotAgent(
                name=f"{persona.name} (autopilot {i + 1})",
                queues=options.engine.queues,
                faker=ChatFaker(rng.getrandbits(64)),
                rng=random.Random(rng.getrandbits(64)),
                pace=options.pace,
                manual_routing=options.engine.routing is Routing.MANUAL,
                max_chats=options.engine.max_chats_per_agent,
                exchanges=options.exchanges,
                coupon_probability=options.coupon_probability,
                item_probability=options.item_probability,
            )
        )
    return AutopilotHub(engine, bots)


async def serve_until_stopped(
    options: MockOptions,
    *,
    out: TextIO = sys.stdout,
    ready: Callable[[WebchatServer], None] | None = None,
    stop: asyncio.Event | None = None,
    before_stop: Callable[[WebchatServer], Awaitable[None]] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set); ``ready`` is called
    once both listeners are up, ``before_stop`` awaited before they close."""
    core = build_core(options)
    writer = None
    if options.record:
        from ..transcript import TranscriptWriter
        from .record import RecordingCore

        writer = TranscriptWriter(options.record, source="serve", meta={"seed": options.seed})
        core = RecordingCore(core, writer)
    door = build_door(options)
    server = WebchatServer(core, options.server, door=door)
    rate = options.rest_rate
    limiter = RateLimiter(rate, max(1, round(2 * rate))) if rate > 0 else None
    web = HttpSide(make_app(server, door, limiter=limiter), options.server.host, options.http_port_or_default)
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    store = open_store(options.store, engine_of(core)) if options.store is not None else None  # before the bots log in
    if store is not None:
        server.store = store
        store.start(server.carry_out)
    try:
        await server.start()
    except OSError as exc:  # binding (or resolving the host) failed: nothing is listening
        if store is not None:
            await store.drain()
            store.close()
        raise BindError(bind_error_message(exc, options.server.host, options.server.port)) from exc
    try:
        await web.start()
    except OSError as exc:
        await server.stop()
        if store is not None:
            await store.drain()
            store.close()
        raise BindError(bind_error_message(exc, options.server.host, options.http_port_or_default)) from exc
    server.links.update(rest_url=web.rest_url, web_url=web.web_url)
    _warn_mode(options, door)
    print(
        f"webchat-sim serving {server.url} (health: http://{options.server.host}:{server.port}/healthz, "
        f"queues: {','.join(options.engine.queues)}, autopilot agents: {options.agents}, "
        f"routing: {options.engine.routing.value}, pace: {options.pace.value})",
        file=out,
        flush=True,
    )
    if door.development:
        mode = "development (any API key, query-string identities)"
    elif door.any_key:
        mode = "tokens required (any API key)"
    else:
        mode = f"tokens required ({len(options.api_keys)} API key(s))"
    print(
        f"webchat-sim REST {web.rest_url} web {web.web_url} (health: {web.base_url}/healthz, auth: {mode})",
        file=out,
        flush=True,
    )
    if store is not None:
        r = store.restored
        print(
            f"webchat-sim storage {store.db.path}: restored {r.get('open', 0)} open conversation(s), "
            f"{r.get('messages', 0)} message(s), {r.get('resumable', 0)} participant(s) who may resume "
            f"in {r.get('milliseconds', 0)} ms; {r.get('closed_pending', 0)} closed conversation(s) follow",
            file=out,
            flush=True,
        )
    if ready is not None:
        ready(server)
    try:
        await stop.wait()
    finally:
        try:
            if before_stop is not None:
                await before_stop(server)
        finally:
            print("webchat-sim: shutting down (closing connections with 1001)", file=out, flush=True)
            await web.stop()
            await server.stop()
            if store is not None:
                await store.drain()  # what the last frames changed is committed
                store.close()
            if writer is not None:
                writer.close()


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on uvloop when installed, else asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.run(main)
    return uvloop.run(main)


def run(options: MockOptions) -> int:
    """Serve in this process until SIGINT/SIGTERM; uvloop when installed.
    0 once stopped; 1, after one line on stderr, if the socket cannot be bound."""
    try:
        run_loop(serve_until_stopped(options))
    except BindError as exc:
        print(f"webchat-sim: {exc}", file=sys.stderr, flush=True)
        return 1
    except StoreError as exc:
        print(f"webchat-sim serve: error: --db {exc}", file=sys.stderr, flush=True)
        return 2
    return 0
