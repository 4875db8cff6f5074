"""Running the mock server as a program: build the core from options, serve
until SIGINT/SIGTERM, print the URL when ready."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from .autopilot import AutopilotAgent, AutopilotHub, Pace
from .engine import Engine, EngineConfig, Routing
from .fake import ChatFaker
from .server import Core, ServerConfig, WebchatServer

__all__ = ["MockOptions", "build_core", "run", "serve_until_stopped"]

log = logging.getLogger("webchat_sim")


@dataclass(frozen=True, kw_only=True)
class MockOptions:
    """Everything ``webchat-sim serve`` can be told."""

    server: ServerConfig = field(default_factory=ServerConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    agents: int = 2
    pace: Pace = Pace.HUMAN
    seed: int | None = None
    coupon_probability: float = 0.2
    item_probability: float = 0.2
    exchanges: tuple[int, int] = (3, 6)


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
    options: MockOptions, *, out: TextIO = sys.stdout, ready: Callable[[WebchatServer], None] | None = None
) -> None:
    core = build_core(options)
    server = WebchatServer(core, options.server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(
        "WARNING: development mode, no authentication: any client may connect as any customer or agent "
        "(choose the role with ?role=customer or ?role=agent&name=…&queues=…)",
        file=sys.stderr,
        flush=True,
    )
    print(
        f"webchat-sim serving {server.url} (health: http://{options.server.host}:{server.port}/healthz, "
        f"queues: {','.join(options.engine.queues)}, autopilot agents: {options.agents}, "
        f"routing: {options.engine.routing.value}, pace: {options.pace.value})",
        file=out,
        flush=True,
    )
    if ready is not None:
        ready(server)
    try:
        await stop.wait()
    finally:
        print("webchat-sim: shutting down (closing connections with 1001)", file=out, flush=True)
        await server.stop()


def run(options: MockOptions) -> int:
    """Serve in this process until SIGINT/SIGTERM; uvloop when installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(serve_until_stopped(options))
    else:
        uvloop.run(serve_until_stopped(options))
    return 0
