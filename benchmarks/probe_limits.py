"""How fast the mock server gets rid of a slow consumer and of a flood: seconds, in one process.

    python benchmarks/probe_limits.py [--loop asyncio|uvloop] [--ping-interval 0|20] [--cap 60]

Not a throughput benchmark (run_all.py runs ``bench_*.py`` only): it times
two limits of :class:`simulator.mock.server.WebchatServer` with its default
settings (4 MiB ``max_write_buffer``, 5 s close timeout, 30 frames/s, burst 60;
no rate limit for the slow consumer's agent):

* **slow consumer** — a customer (a bare socket) that stops reading while its
  agent (a ``websockets`` client) sends it 9 kB messages: from the server's
  decision (its first 1008 close for the customer) to the agent's
  ``participant update`` showing the customer ``disconnected``, and to the
  customer's socket being gone on the server;
* **flood** — a ``websockets`` client sending ``ping`` frames as fast as it
  can: from its first frame to the 1008 close it observes, the frames the
  server's websocket layer parsed but the server never processed (accepted
  and dropped), and the client's sends that were still accepted after the
  server's decision; then a bare socket writing 100,000 ``ping`` frames at
  once: when its close frame came, when its stream ended, the frames parsed
  and never processed.

A figure that does not come within ``--cap`` seconds is reported as ``> cap``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import random
import time
from typing import Any

import orjson
from _common import run_loop
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from simulator.mock.engine import Engine, EngineConfig
from simulator.mock.server import ServerConfig, WebchatServer
from tests.raw_peer import OP_TEXT, RawPeer, frame

START = {
    "type": "event",
    "event_type": "webchat start conversation",
    "event_engage_customer": {"conversation_participant_name": "Chris", "question": "Hi", "queue_name": "support"},
}


def watch_closes(srv: WebchatServer, decisions: dict[str, float], only: list[ServerConnection] | None = None) -> None:
    """Record when the server first decides each kind of close (whichever method it closes with),
    for the connections of ``only`` if given."""
    for name in ("_close", "_close_later"):  # the current shell, or the one before issue 11
        method = getattr(srv, name, None)
        if method is None:
            continue

        def recording(ws: Any, code: int, reason: str, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            if only is None or ws in only:
                decisions.setdefault(reason.split(":")[0], time.monotonic())
            return _method(ws, code, reason, *args, **kwargs)

        setattr(srv, name, recording)
    original = ServerConnection.close  # the flood's close, before issue 11

    async def close(self: Any, code: int = 1000, reason: str = "") -> None:
        if only is None or self in only:
            decisions.setdefault(reason, time.monotonic())
        await original(self, code, reason)

    ServerConnection.close = close  # type: ignore[method-assign]


def is_disconnected(raw: str | bytes) -> bool:
    data = orjson.loads(raw)
    participants = (data.get("event_participant_update") or {}).get("participants") or []
    disconnected = any(p.get("status") == "disconnected" for p in participants)
    return bool(data.get("event_type") == "participant update" and disconnected)


async def chat_until_told(
    agent: ClientConnection, conversation: str, decisions: dict[str, float], sent: list[int]
) -> float:
    """Send 9 kB messages, each once the previous one is acknowledged, until
    the server decides that the customer is a slow consumer (at most 9,000:
    a conversation holds 10,000), then read until a ``participant update``
    shows the customer ``disconnected``: when it came. ``sent[0]`` counts
    the messages."""
    body = "x" * 9_000
    cid = ""
    while True:
        if not cid and "slow consumer" not in decisions and sent[0] < 9_000:
            sent[0] += 1
            cid = f"m{sent[0]}"
            message = {"body": body, "client_message_id": cid}
            envelope = {"type": "message", "conversation_uuid": conversation, "message": message}
            await agent.send(orjson.dumps(envelope).decode())
        raw = await agent.recv()
        if is_disconnected(raw):
            return time.monotonic()
        data = orjson.loads(raw)
        if data.get("type") == "message" and (data.get("message") or {}).get("client_message_id") == cid:
            cid = ""


def shown(seconds: float | None, cap: float) -> str:
    return f"> {cap:g} s" if seconds is None else f"{seconds:.2f} s"


async def slow_consumer(config: ServerConfig, cap: float) -> dict[str, float | None]:
    srv = WebchatServer(Engine(EngineConfig(), rng=random.Random(1)), config)
    decisions: dict[str, float] = {}
    customer_ws: list[ServerConnection] = []
    watch_closes(srv, decisions, customer_ws)
    async with srv, connect(f"{srv.url}?role=agent&name=Ada&queues=support", proxy=None) as agent:
        await agent.recv()  # its queue status: logged in
        customer = await RawPeer.open(srv.port, "/ws?role=customer")  # reads the handshake, then nothing
        try:
            ws = srv._conns[max(srv._conns)]
            customer_ws.append(ws)
            await customer.send(frame(OP_TEXT, orjson.dumps(START)))
            conversation = ""
            while not conversation:
                data = orjson.loads(await agent.recv())
                if data.get("event_type") == "new conversation":
                    conversation = data["conversation_uuid"]
            removed: list[float] = []
            ws.connection_lost_waiter.add_done_callback(lambda _: removed.append(time.monotonic()))
            told, sent = None, [0]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(cap):
                    told = await chat_until_told(agent, conversation, decisions, sent)
                    await ws.wait_closed()
            decided = decisions.get("slow consumer")
            return {
                "messages_sent": sent[0],
                "told_s": told - decided if told is not None and decided is not None else None,
                "removed_s": removed[0] - decided if removed and decided is not None else None,
            }
        finally:
            customer.abort()


async def flood(config: ServerConfig, cap: float, *, raw: bool) -> dict[str, float | None]:
    """A ``websockets`` client sending as fast as it can (``raw``: a bare socket writing 100,000 frames at once)."""
    parsed = [0, 0]  # all, after the decision
    process_event = ServerConnection.process_event
    decisions: dict[str, float] = {}

    def counting(self: ServerConnection, event: Any) -> None:
        parsed[0] += 1
        if decisions:
            parsed[1] += 1
        process_event(self, event)

    ServerConnection.process_event = counting  # type: ignore[method-assign]
    srv = WebchatServer(Engine(EngineConfig(), rng=random.Random(1)), config)
    watch_closes(srv, decisions)
    try:
        async with srv:
            started = time.monotonic()
            if raw:
                return await raw_flood(srv, decisions, parsed, started, cap)
            async with connect(f"{srv.url}?role=customer", proxy=None) as client:
                sent = [0, 0]  # all, after the decision

                async def send() -> None:
                    with contextlib.suppress(ConnectionClosed):
                        while True:
                            await client.send('{"type":"ping"}')
                            sent[0] += 1
                            if decisions:
                                sent[1] += 1
                            if sent[0] % 100 == 0:
                                await asyncio.sleep(0)  # let the reader run

                sender = asyncio.create_task(send())
                closed_after: float | None = None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(cap):
                        with contextlib.suppress(ConnectionClosed):
                            while True:
                                await client.recv()
                        closed_after = time.monotonic() - started
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
                return {
                    "close_seen_s": closed_after,
                    "ended_s": closed_after,
                    "parsed_not_processed": parsed[0] - srv.frames_in,
                    "parsed_after_decision": parsed[1],
                    "sends_after_decision": sent[1],
                }
    finally:
        ServerConnection.process_event = process_event  # type: ignore[method-assign]


async def raw_flood(
    srv: WebchatServer, decisions: dict[str, float], parsed: list[int], started: float, cap: float
) -> dict[str, float | None]:
    peer = await RawPeer.open(srv.port, "/ws?role=customer")
    sender = asyncio.create_task(peer.send(frame(OP_TEXT, b'{"type":"ping"}') * 100_000))
    close_seen: float | None = None
    ended: float | None = None
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(cap):
                if await peer.receive_close() is not None:
                    close_seen = time.monotonic() - started
                while await peer.receive() is not None:
                    pass
                ended = time.monotonic() - started
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        peer.abort()
    return {
        "close_seen_s": close_seen,
        "ended_s": ended,
        "parsed_not_processed": parsed[0] - srv.frames_in,
        "parsed_after_decision": parsed[1],
        "sends_after_decision": None,
    }


async def main(args: argparse.Namespace) -> None:
    ping = args.ping_interval or None
    config = ServerConfig(port=0, ping_interval=ping, ping_timeout=ping)
    slow = await slow_consumer(dataclasses.replace(config, frames_per_second=1e6, burst=1_000_000), args.cap)
    print(
        f"slow consumer (ping interval {args.ping_interval:g} s): partner told after {shown(slow['told_s'], args.cap)},"
        f" socket removed after {shown(slow['removed_s'], args.cap)} (after {slow['messages_sent']} messages)"
    )
    flooded = await flood(config, args.cap, raw=False)
    print(
        f"flood (websockets client): it saw the 1008 close after {shown(flooded['close_seen_s'], args.cap)};"
        f" {flooded['parsed_not_processed']} frames parsed and never processed"
        f" ({flooded['parsed_after_decision']} after the decision);"
        f" {flooded['sends_after_decision']} sends accepted after the decision"
    )
    flooded = await flood(config, args.cap, raw=True)
    print(
        f"flood (100,000 frames at once): the close frame came after {shown(flooded['close_seen_s'], args.cap)},"
        f" the end of the stream after {shown(flooded['ended_s'], args.cap)};"
        f" {flooded['parsed_not_processed']} frames parsed and never processed"
        f" ({flooded['parsed_after_decision']} after the decision)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    parser.add_argument("--ping-interval", type=float, default=20.0, help="the server's keepalive (0: off)")
    parser.add_argument("--cap", type=float, default=60.0, help="give up on a figure after this many seconds")
    arguments = parser.parse_args()
    run_loop(arguments.loop, main(arguments))
