"""Issue 11, defect 2, end to end: an agent on a default client (1 MiB frame
limit, as websockets' and our own transport's default) stays connected while
many customers start chats with oversized and then maximal fields; every
``queue status update`` it gets encodes to at most 128 KiB. Real sockets on
127.0.0.1, a random port, bounded in count and time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from simulator.mock.engine import Engine, EngineConfig, Routing
from simulator.mock.server import ServerConfig, WebchatServer
from simulator.protocol import decode
from tests.sdk import sdk_validate
from tests.test_field_limits import LIMITS

pytestmark = pytest.mark.timeout(90)

STATUS_BOUND = 128 * 1024
CLIENT_MAX_SIZE = 2**20  # websockets' default, and simulator.load.transport's
CUSTOMERS = 19
CHATS = 3  # max_open_conversations_per_customer


@asynccontextmanager
async def _server() -> AsyncIterator[WebchatServer]:
    import random

    config = EngineConfig(routing=Routing.MANUAL, status_interval=0.05, position_interval=0.05)
    srv = WebchatServer(Engine(config, rng=random.Random(11)), ServerConfig(port=0, ping_interval=None))
    async with srv:
        yield srv


def _start(**entry: Any) -> str:
    return orjson.dumps(
        {"type": "event", "event_type": "webchat start conversation", "event_engage_customer": entry}
    ).decode()


async def _frames_until(ws: ClientConnection, done: Any, timeout: float = 20.0) -> list[bytes]:
    raws: list[bytes] = []
    async with asyncio.timeout(timeout):
        while True:
            raw = await ws.recv(decode=False)
            sdk_validate(raw)
            raws.append(raw)
            if done(raw):
                return raws


async def _customer(url: str, index: int) -> None:
    async with connect(f"{url}?role=customer", proxy=None, open_timeout=5, max_size=CLIENT_MAX_SIZE) as ws:
        # The start frame: 60 KB of name and email. Refused, nothing stored.
        await ws.send(_start(conversation_participant_name="n" * 30_000, email="e" * 29_000, question="hi"))
        (raw,) = await _frames_until(ws, lambda r: True)
        error = decode(raw).error
        assert error is not None and error.error_code == "field_too_long", raw[:300]
        # Then three chats with every field at its limit, the question in
        # 4-byte characters (10,000 of them: 40 KB in UTF-8).
        for _ in range(CHATS):
            await ws.send(
                _start(
                    conversation_participant_name=f"{index:03d}" + "é" * (LIMITS.name - 3),
                    email="e" * LIMITS.email,
                    participant_language_iso_code="l" * LIMITS.language,
                    question="😀" * 10_000,
                )
            )
            frames = await _frames_until(ws, lambda r: b'"queue position"' in r)
            assert not [f for f in frames if b'"error"' in f], frames[-1][:300]


def test_an_agent_on_a_default_client_stays_connected_and_status_frames_stay_bounded() -> None:
    async def scenario() -> None:
        async with (
            _server() as srv,
            connect(f"{srv.url}?role=agent&name=Ada", proxy=None, open_timeout=5, max_size=CLIENT_MAX_SIZE) as agent,
        ):
            sizes: list[int] = []
            waiting = CUSTOMERS * CHATS

            def status_done(raw: bytes) -> bool:
                if b'"queue status update"' not in raw:
                    return False
                sizes.append(len(raw))
                status = decode(raw).event_queue_status_update
                return status is not None and status.customer_waiting_count == waiting

            listening = asyncio.create_task(_frames_until(agent, status_done, timeout=60))
            await asyncio.gather(*(_customer(srv.url, i) for i in range(CUSTOMERS)))
            raws = await listening
            last = decode(raws[-1]).event_queue_status_update
            assert last is not None and last.queue_entries is not None
            assert 0 < len(last.queue_entries) < 50  # capped by bytes before the count limit
            assert max(sizes) <= STATUS_BOUND, max(sizes)
            await agent.send('{"type":"ping"}')  # still connected
            await _frames_until(agent, lambda r: r == b'{"type":"ping"}', timeout=5)

    asyncio.run(asyncio.wait_for(scenario(), 80))


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("role=agent&name=" + "a" * (LIMITS.name + 1), f"name: {LIMITS.name + 1} characters, limit {LIMITS.name}"),
        ("role=customer&email=" + "e" * (LIMITS.email + 1), f"email: {LIMITS.email + 1} characters"),
        ("role=customer&lang=" + "l" * (LIMITS.language + 1), f"lang: {LIMITS.language + 1} characters"),
        ("role=customer&since=" + "9" * 5000, "since: expected epoch milliseconds"),
    ],
    ids=["name", "email", "lang", "since"],
)
def test_an_oversized_identity_is_refused_at_the_handshake(query: str, reason: str) -> None:
    async def scenario() -> None:
        async with _server() as srv:
            with pytest.raises(InvalidStatus) as info:
                async with connect(f"{srv.url}?{query}", proxy=None, open_timeout=5):
                    pass
            response = info.value.response
            assert response.status_code == 400
            assert reason in response.body.decode(), response.body

    asyncio.run(asyncio.wait_for(scenario(), 30))
