"""The server's limits against peers that misbehave on the wire: a consumer
that stops reading, a flood, and the error count of ``/healthz``.

The misbehaving peers are :class:`tests.raw_peer.RawPeer` (a bare socket that
reads only when told); their partners are ordinary ``websockets`` clients.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import ServerConnection
from websockets.protocol import CLOSED

from tests.raw_peer import OP_TEXT, RawPeer, frame
from tests.test_server import Client, event, is_error, mock, run, start_frame

pytestmark = pytest.mark.timeout(60)

CLOSE_TIMEOUT = 2.0
MARGIN = 1.5  # for "promptly": far below the keepalive (20 s) the old code waited for


def is_disconnected_update(raw: str) -> bool:
    """A ``participant update`` that shows a participant ``disconnected``."""
    data = orjson.loads(raw)
    if data.get("event_type") != "participant update":
        return False
    participants = (data.get("event_participant_update") or {}).get("participants") or []
    return any(p.get("status") == "disconnected" for p in participants)


async def chat_until_told(agent: ClientConnection, conversation: str, limit: int) -> float | None:
    """Send 9 kB messages, each once the previous one is acknowledged, until a
    ``participant update`` shows the other side ``disconnected``: when it came
    (``None``: not after ``limit`` messages)."""
    body = "x" * 9_000
    for number in range(limit):
        cid = f"m{number}"
        message = {"body": body, "client_message_id": cid}
        envelope = {"type": "message", "conversation_uuid": conversation, "message": message}
        await agent.send(orjson.dumps(envelope).decode())
        while True:
            raw = await agent.recv()
            assert isinstance(raw, str)
            if is_disconnected_update(raw):
                return time.monotonic()
            data = orjson.loads(raw)
            if data.get("type") == "message" and (data.get("message") or {}).get("client_message_id") == cid:
                break
    return None


@pytest.mark.parametrize("ping_interval", [None, 20.0], ids=["no-keepalive", "default-keepalive"])
def test_a_slow_consumer_is_dropped_at_once_and_aborted_within_the_close_timeout(ping_interval: float | None) -> None:
    async def scenario() -> None:
        async with (
            mock(
                ping_interval=ping_interval,
                close_timeout=CLOSE_TIMEOUT,
                max_write_buffer=64 * 1024,
                frames_per_second=100_000.0,
                burst=100_000,
            ) as srv,
            Client.open(srv.url, "role=agent&name=Ada&queues=support") as agent,
        ):
            await agent.expect(event("queue status update"))
            customer = await RawPeer.open(srv.port, "/ws?role=customer", rcvbuf=4096)
            try:
                ws: ServerConnection = srv._conns[max(srv._conns)]  # the customer's, the latest
                await customer.send(frame(OP_TEXT, orjson.dumps(start_frame())))
                conv = (await agent.expect(event("new conversation"))).conversation_uuid
                assert conv
                # The agent chats with big messages (one in flight); the customer reads none of them.
                async with asyncio.timeout(30):
                    told = await chat_until_told(agent.ws, conv, 2_000)  # ~18 MB at most
                socket_state = ws.protocol.state
                assert told is not None, "the partner was never told that the slow consumer left"
                # The partner was told while the socket was still open (waiting out the close timeout)...
                assert socket_state is not CLOSED
                assert all(c is not ws for c in srv._conns.values())
                # ...and the socket is aborted once the close timeout has passed, keepalive or not.
                async with asyncio.timeout(CLOSE_TIMEOUT + MARGIN):
                    await ws.wait_closed()
                assert time.monotonic() - told < CLOSE_TIMEOUT + MARGIN
                assert srv.status()["sockets"] == 1 and srv.core.status()["connections"] == 1
            finally:
                customer.abort()

    run(scenario())


def test_stop_is_bounded_by_the_close_timeout_with_a_peer_that_stopped_reading() -> None:
    async def scenario() -> None:
        async with mock(
            close_timeout=CLOSE_TIMEOUT, ping_interval=None, frames_per_second=100_000.0, burst=100_000
        ) as srv:
            customer = await RawPeer.open(srv.port, "/ws?role=customer", rcvbuf=4096)
            try:
                ws: ServerConnection = srv._conns[max(srv._conns)]
                await customer.send(frame(OP_TEXT, orjson.dumps(start_frame())))
                conv = None
                while conv is None:  # the last frame it reads
                    received = await customer.receive()
                    assert received is not None
                    data = orjson.loads(received.payload)
                    conv = data.get("conversation_uuid") if data.get("event_type") == "new conversation" else None
                # Its own messages come back to it: unread, more than the transport's high-water mark
                # (where ws.close() waits for the peer to read) and less than max_write_buffer.
                body = "x" * 9_000
                for number in range(300):
                    message = {"body": body, "client_message_id": f"m{number}"}
                    envelope = {"type": "message", "conversation_uuid": conv, "message": message}
                    await customer.send(frame(OP_TEXT, orjson.dumps(envelope)))
                async with asyncio.timeout(10):
                    while ws.transport.get_write_buffer_size() <= 2**16:  # no event tells when the server wrote it
                        await asyncio.sleep(0.01)
                assert ws.transport.get_write_buffer_size() < srv.config.max_write_buffer
                started = time.monotonic()
                async with asyncio.timeout(CLOSE_TIMEOUT + MARGIN):
                    await srv.stop()
                assert time.monotonic() - started < CLOSE_TIMEOUT + MARGIN
                assert ws.protocol.state is CLOSED
            finally:
                customer.abort()

    run(scenario())


def test_a_flood_is_failed_at_once_and_nothing_more_of_it_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = [0]
    process_event = ServerConnection.process_event

    def counting(self: ServerConnection, received: Any) -> None:
        parsed[0] += 1
        process_event(self, received)

    monkeypatch.setattr(ServerConnection, "process_event", counting)

    async def scenario() -> None:
        async with mock(frames_per_second=5.0, burst=5) as srv:  # the default close timeout: 5 s
            peer = await RawPeer.open(srv.port, "/ws?role=customer")
            ping = frame(OP_TEXT, b'{"type":"ping"}')
            try:
                start = time.monotonic()
                await peer.send(ping * 20)  # 5 accepted, 5 refused, then the connection is closed
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    close = await peer.receive_close()
                closed_at = time.monotonic()
                assert close is not None and close.close_code == 1008
                assert close.payload[2:] == b"frame rate limit exceeded"
                assert closed_at - start < 1.0
                parsed_at_close = parsed[0]
                # The peer keeps flooding (as if it had not read the close): none of it is parsed.
                sender = asyncio.create_task(peer.send(ping * 50_000))
                try:
                    # The server does not wait for the peer's half of the handshake: the TCP stream ends at once.
                    async with asyncio.timeout(CLOSE_TIMEOUT):
                        assert await peer.receive() is None
                    assert time.monotonic() - start < 1.0
                    assert parsed[0] == parsed_at_close
                    assert srv.frames_in <= 11
                    # The engine was told at once.
                    assert srv.status()["sockets"] == 0 and srv.core.status()["connections"] == 0
                finally:
                    sender.cancel()
                    await asyncio.gather(sender, return_exceptions=True)
            finally:
                peer.abort()

    run(scenario())


def test_errors_sent_counts_every_error_frame_whoever_refused() -> None:
    async def scenario() -> None:
        async with mock() as srv, Client.open(srv.url, "role=customer") as c:
            assert srv.status()["errors_sent"] == 0
            await c.send("{not json")  # the codec
            await c.expect(is_error("invalid_json"))
            await c.send({"type": "check queue position", "conversation_uuid": "no-such-conversation"})  # the engine
            refusal = await c.expect(is_error())
            assert refusal.error is not None and refusal.error.error_code != "invalid_json"
            await c.send({"type": "ping"})
            await c.expect(lambda f: f.type is not None and f.type.value == "ping")
            assert srv.status()["errors_sent"] == 2

    run(scenario())
