"""The websocket server with real clients on 127.0.0.1 and random ports."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from simulator.mock.app import MockOptions, build_core
from simulator.mock.engine import Engine, EngineConfig, Routing
from simulator.mock.server import ServerConfig, WebchatServer
from simulator.pace import Pace
from simulator.protocol import Frame, decode
from tests.sdk import sdk_validate

pytestmark = pytest.mark.timeout(60)


def run(coro: Coroutine[Any, Any, None], timeout: float = 30.0) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(timeout):
            await coro

    asyncio.run(bounded())


@asynccontextmanager
async def mock(
    *, agents: int = 0, routing: Routing = Routing.ROUND_ROBIN, seed: int = 7, **server: Any
) -> AsyncIterator[WebchatServer]:
    engine = EngineConfig(routing=routing, position_interval=0.01, status_interval=0.01, reconnect_grace=0.2)
    options = MockOptions(
        server=ServerConfig(port=0, **server), engine=engine, agents=agents, pace=Pace.FAST, seed=seed, exchanges=(2, 2)
    )
    srv = WebchatServer(build_core(options), options.server)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


class Client:
    """A test client that validates every frame it receives with the SDK."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[Frame] = []
        self._seen = 0

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str, query: str) -> AsyncIterator[Client]:
        async with connect(f"{url}?{query}", proxy=None, open_timeout=5) as ws:
            yield cls(ws)

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(frame if isinstance(frame, (str, bytes)) else orjson.dumps(frame).decode())

    async def _recv(self) -> Frame:
        raw = await self.ws.recv()
        assert isinstance(raw, str), "server sent a binary frame"
        sdk_validate(raw)
        frame = decode(raw)
        self.frames.append(frame)
        return frame

    async def expect(self, predicate: Callable[[Frame], bool], timeout: float = 5.0) -> Frame:
        """The first frame not looked at yet that matches (frames before it stay recorded)."""
        for i in range(self._seen, len(self.frames)):
            if predicate(self.frames[i]):
                self._seen = i + 1
                return self.frames[i]
        async with asyncio.timeout(timeout):
            while True:
                frame = await self._recv()
                if predicate(frame):
                    self._seen = len(self.frames)
                    return frame

    async def quiet(self, seconds: float = 0.1) -> list[Frame]:
        """Collect what arrives within ``seconds`` (for asserting absence)."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    await self._recv()
        except TimeoutError:
            pass
        return self.frames


def start_frame(question: str = "Where is my order 1234?", queue: str = "support", lang: str = "en") -> dict[str, Any]:
    return {
        "type": "event",
        "event_type": "webchat start conversation",
        "event_engage_customer": {
            "conversation_participant_name": "Chris",
            "email": "chris@example.com",
            "question": question,
            "queue_name": queue,
            "participant_language_iso_code": lang,
        },
    }


def event(name: str) -> Callable[[Frame], bool]:
    return lambda f: f.event_type is not None and f.event_type.value == name


def is_error(code: str | None = None) -> Callable[[Frame], bool]:
    return lambda f: f.error is not None and (code is None or f.error.error_code == code)


def test_customer_chats_with_an_autopilot_agent_from_start_to_close() -> None:
    async def scenario() -> None:
        async with mock(agents=1) as srv, Client.open(srv.url, "role=customer&lang=en") as c:
            await c.send(start_frame())
            new = await c.expect(event("new conversation"))
            conv = new.conversation_uuid or (
                new.event_new_conversation.conversation_uuid if new.event_new_conversation else None
            )
            assert conv
            await c.expect(event("participant join"))
            reply = await c.expect(
                lambda f: (
                    f.message is not None
                    and f.message.author_conversation_participant_name is not None
                    and "autopilot" in f.message.author_conversation_participant_name
                )
            )
            assert reply.message is not None and reply.message.body
            await c.send(
                {
                    "type": "message",
                    "conversation_uuid": conv,
                    "message": {"body": "Thanks, bye!", "client_message_id": "bye-1"},
                }
            )
            await c.expect(lambda f: f.message is not None and f.message.client_message_id == "bye-1")
            closed = await c.expect(event("conversation closed"), timeout=10)
            assert closed.event_conversation_closed is not None and closed.event_conversation_closed.closed is True

    run(scenario())


def test_three_customers_one_agent_positions_drain() -> None:
    async def scenario() -> None:
        async with (
            mock(agents=0, routing=Routing.MANUAL) as srv,
            Client.open(srv.url, "role=customer") as c1,
            Client.open(srv.url, "role=customer") as c2,
            Client.open(srv.url, "role=customer") as c3,
        ):
            convs = []
            for c in (c1, c2, c3):
                await c.send(start_frame())
                new = await c.expect(event("new conversation"))
                convs.append(new.conversation_uuid)
            for c, conv, expected in zip((c1, c2, c3), convs, (1, 2, 3), strict=True):
                await c.send({"type": "check queue position", "conversation_uuid": conv})
                pos = await c.expect(
                    lambda f, n=expected: f.event_queue_position is not None and f.event_queue_position.position == n
                )
                assert pos.event_queue_position is not None
                assert pos.event_queue_position.available is False  # no agent logged in yet
            async with Client.open(srv.url, "role=agent&name=Ada&queues=support") as agent:
                status = await agent.expect(
                    lambda f: (
                        f.event_queue_status_update is not None
                        and f.event_queue_status_update.customer_waiting_count == 3
                    )
                )
                assert status.event_queue_status_update is not None
                entries = status.event_queue_status_update.queue_entries or []
                assert [e.conversation_webchat_queue_uuid is not None for e in entries] == [True] * 3
                await c2.send({"type": "check queue position", "conversation_uuid": convs[1]})
                pos = await c2.expect(
                    lambda f: f.event_queue_position is not None and f.event_queue_position.available is True
                )
                assert pos.event_queue_position is not None and pos.event_queue_position.position == 2
                # engage the first customer: the others move up
                await agent.send(
                    {
                        "type": "event",
                        "event_type": "engage customer",
                        "event_engage_customer": {
                            "conversation_webchat_queue_uuid": entries[0].conversation_webchat_queue_uuid
                        },
                    }
                )
                await agent.expect(event("new conversation"))
                await c1.expect(event("participant join"))
                await c2.expect(lambda f: f.event_queue_position is not None and f.event_queue_position.position == 1)
                await c3.expect(lambda f: f.event_queue_position is not None and f.event_queue_position.position == 2)
                await c1.send({"type": "check queue position", "conversation_uuid": convs[0]})
                gone = await c1.expect(event("queue position"))
                assert gone.event_queue_position is not None and gone.event_queue_position.position == -1

    run(scenario())


def test_manual_engage_typing_and_isolation_between_conversations() -> None:
    async def scenario() -> None:
        async with (
            mock(agents=0, routing=Routing.MANUAL) as srv,
            Client.open(srv.url, "role=agent&name=Ada&queues=support") as agent,
            Client.open(srv.url, "role=customer") as c1,
            Client.open(srv.url, "role=customer") as c2,
        ):
            await c1.send(start_frame("Order 1 question"))
            conv1 = (await c1.expect(event("new conversation"))).conversation_uuid
            member = await agent.expect(event("queue new member"))
            assert member.event_queue_new_member is not None
            await agent.send(
                {
                    "type": "event",
                    "event_type": "engage customer",
                    "event_engage_customer": {
                        "conversation_webchat_queue_uuid": member.event_queue_new_member.conversation_webchat_queue_uuid
                    },
                }
            )
            await agent.expect(
                lambda f: (
                    f.event_type is not None
                    and f.event_type.value == "new conversation"
                    and f.conversation_uuid == conv1
                )
            )
            await c1.expect(event("participant join"))
            # a second customer, queued, never engaged
            await c2.send(start_frame("Order 2 question"))
            conv2 = (await c2.expect(event("new conversation"))).conversation_uuid
            assert conv2 != conv1
            # typing goes to the others only
            await c1.send(
                {"type": "event", "event_type": "typing", "conversation_uuid": conv1, "event_typing": {"value": "Hel"}}
            )
            typing = await agent.expect(event("typing"))
            assert typing.event_typing is not None and typing.event_typing.value == "Hel"
            assert typing.event_typing.author_conversation_participant_arn
            await c1.send(
                {
                    "type": "message",
                    "conversation_uuid": conv1,
                    "message": {"body": "Hello agent", "client_message_id": "m1"},
                }
            )
            await c1.expect(lambda f: f.message is not None and f.message.client_message_id == "m1")
            await agent.expect(lambda f: f.message is not None and f.message.body == "Hello agent")
            await agent.send(
                {"type": "event", "event_type": "typing", "conversation_uuid": conv1, "event_typing": {"value": "Sure"}}
            )
            await c1.expect(event("typing"))
            await c1.quiet(0.2)
            await c2.quiet(0.2)
            assert not any(
                f.event_type is not None
                and f.event_type.value == "typing"
                and f.event_typing is not None
                and f.event_typing.value == "Hel"
                for f in c1.frames
            )
            # c2 never sees anything of conversation 1
            assert all(f.conversation_uuid in (None, conv2) for f in c2.frames)
            assert not any(f.message is not None and f.message.body == "Hello agent" for f in c2.frames)
            # c2 may not act on conversation 1
            await c2.send(
                {
                    "type": "message",
                    "conversation_uuid": conv1,
                    "message": {"body": "intruder", "client_message_id": "x"},
                }
            )
            err = await c2.expect(is_error())
            assert err.error is not None and "intruder" not in orjson.dumps(err.model_dump(exclude_none=True)).decode()
            await agent.quiet(0.2)
            assert not any(f.message is not None and f.message.body == "intruder" for f in agent.frames)

    run(scenario())


BAD_FRAMES: list[tuple[str, str | bytes, str]] = [
    ("not json", "{not json", "invalid_json"),
    ("array", "[1,2]", "not_object"),
    ("binary", b"\x00\x01binary", "binary_frame"),
    ("unknown type", '{"type": "pong"}', "invalid_enum"),
    ("unknown event", '{"type": "event", "event_type": "dance"}', "invalid_enum"),
    ("wrong type", '{"type": "check queue position", "conversation_uuid": 42}', "invalid_type"),
    ("missing payload", '{"type": "event", "event_type": "typing", "conversation_uuid": "c"}', "missing_field"),
    ("NaN in an additional property", '{"type": "ping", "x": [NaN]}', "invalid_json"),
]


@pytest.mark.parametrize(("name", "raw", "code"), BAD_FRAMES, ids=[b[0] for b in BAD_FRAMES])
def test_bad_frames_get_an_error_and_the_connection_survives(name: str, raw: str | bytes, code: str) -> None:
    async def scenario() -> None:
        async with (
            mock() as srv,
            Client.open(srv.url, "role=customer") as c,
            Client.open(srv.url, "role=customer") as bystander,
        ):
            await bystander.send(start_frame())
            await bystander.expect(event("new conversation"))
            await c.send(raw)
            err = await c.expect(is_error())
            assert err.error is not None and err.error.error_code == code, err
            assert err.error.developer_message and err.error.user_message
            # still open and serving
            await c.send({"type": "ping"})
            await c.expect(lambda f: f.type is not None and f.type.value == "ping")
            await bystander.quiet(0.1)
            assert not any(f.error is not None for f in bystander.frames)

    run(scenario())


def test_foreign_conversation_is_refused_without_leaking() -> None:
    async def scenario() -> None:
        async with (
            mock() as srv,
            Client.open(srv.url, "role=customer") as owner,
            Client.open(srv.url, "role=customer") as other,
        ):
            await owner.send(start_frame("My secret order 999"))
            conv = (await owner.expect(event("new conversation"))).conversation_uuid
            for frame in (
                {"type": "check queue position", "conversation_uuid": conv},
                {"type": "event", "event_type": "conversation closed", "conversation_uuid": conv},
                {"type": "event", "event_type": "typing", "conversation_uuid": conv, "event_typing": {"value": "x"}},
            ):
                await other.send(frame)
                err = await other.expect(is_error())
                assert err.error is not None
                assert "secret" not in json.dumps(err.model_dump(exclude_none=True))
            await owner.quiet(0.1)
            assert not any(
                f.event_type is not None and f.event_type.value in ("conversation closed", "typing")
                for f in owner.frames
            )
            await owner.send({"type": "check queue position", "conversation_uuid": conv})
            pos = await owner.expect(event("queue position"))
            assert pos.event_queue_position is not None and pos.event_queue_position.position == 1

    run(scenario())


def test_oversized_frame_closes_with_1009_and_others_are_unaffected() -> None:
    async def scenario() -> None:
        async with (
            mock(max_frame_bytes=4096) as srv,
            Client.open(srv.url, "role=customer") as c,
            Client.open(srv.url, "role=customer") as other,
        ):
            await c.send({"type": "ping", "padding": "x" * 10_000})
            with pytest.raises(ConnectionClosed) as info:
                await c.expect(lambda f: False, timeout=5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009
            await other.send({"type": "ping"})
            await other.expect(lambda f: f.type is not None and f.type.value == "ping")

    run(scenario())


def test_flood_is_refused_then_closed_with_1008() -> None:
    async def scenario() -> None:
        async with mock(frames_per_second=5.0, burst=5) as srv, Client.open(srv.url, "role=customer") as c:
            await c.send(start_frame())
            conv = (await c.expect(event("new conversation"))).conversation_uuid
            await c.send(
                {
                    "type": "message",
                    "conversation_uuid": conv,
                    "message": {"body": "accepted before the flood", "client_message_id": "keep"},
                }
            )
            await c.expect(lambda f: f.message is not None and f.message.client_message_id == "keep")
            for _ in range(40):
                try:
                    await c.send({"type": "ping"})
                except ConnectionClosed:
                    break
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await c._recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1008
            assert any(f.error is not None and f.error.error_code == "rate_limited" for f in c.frames)
            # what was accepted before is still there for an agent
            async with Client.open(srv.url, "role=agent&name=Ada&queues=support") as agent:
                msg = await agent.expect(
                    lambda f: f.message is not None and f.message.body == "accepted before the flood", timeout=5
                )
                assert msg.conversation_uuid == conv

    run(scenario())


async def closed_with(client: Client) -> tuple[int, str]:
    """Read until the server closes ``client``; its close code and reason."""
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await client._recv()
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


def secret_of(frame: Frame) -> str:
    token = (frame.model_extra or {}).get("resume_token")
    assert isinstance(token, str) and token
    return token


@pytest.mark.parametrize("agents", [0, 1], ids=["engine", "autopilot-hub"])
def test_a_connection_for_a_held_agent_name_is_refused_without_its_secret(agents: int) -> None:
    async def scenario() -> None:
        async with mock(agents=agents) as srv, Client.open(srv.url, "role=agent&name=Ada") as real:
            await real.expect(event("queue status update"))
            for query in ("role=agent&name=Ada", "role=agent&name=Ada&token=" + "f" * 43):
                async with Client.open(srv.url, query) as intruder:
                    refusal = await intruder.expect(is_error())
                    assert refusal.error is not None and refusal.error.error_code == "identity_in_use"
                    assert await closed_with(intruder) == (1008, "agent name held by another session")
                    assert not [f for f in intruder.frames if f.error is None]  # shown nothing of Ada's
            await real.send({"type": "ping"})  # the real one is still connected
            await real.expect(lambda f: f.type is not None and f.type.value == "ping")
            assert not [f for f in real.frames if f.error is not None]

    run(scenario())


def test_an_autopilot_agent_cannot_be_claimed_and_stays_in_its_queue() -> None:
    async def scenario() -> None:
        async with mock(agents=1) as srv, Client.open(srv.url, "role=customer&lang=en") as customer:
            (bot,) = srv.status()["autopilot"]
            await customer.send(start_frame("My password reset code is 271828, where is my order?"))
            await customer.expect(event("participant join"))
            async with Client.open(srv.url, "role=agent&name=" + urllib.parse.quote(bot)) as intruder:
                await intruder.expect(is_error("identity_in_use"))
                assert await closed_with(intruder) == (1008, "agent name held by another session")
                assert len(intruder.frames) == 1
            await asyncio.sleep(0.3)  # past the reconnect grace (0.2 s): nothing happens, nothing to await
            assert srv.status()["queues"]["support"]["agents"] == 1
            async with Client.open(srv.url, "role=customer&lang=en") as newcomer:
                await newcomer.send(start_frame())
                await newcomer.expect(event("participant join"), timeout=5)

    run(scenario())


@pytest.mark.parametrize("agents", [0, 1], ids=["engine", "autopilot-hub"])
def test_a_session_taken_over_closes_the_old_socket_with_1000_after_its_error(agents: int) -> None:
    async def scenario() -> None:
        async with mock(agents=agents) as srv, Client.open(srv.url, "role=agent&name=Ada") as old:
            secret = secret_of(await old.expect(event("queue status update")))
            async with Client.open(srv.url, "role=agent&name=Ada&token=" + secret) as new:
                await new.expect(event("queue status update"))
                await old.expect(is_error("session_replaced"))
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        await old._recv()
                assert info.value.rcvd is not None
                assert (info.value.rcvd.code, info.value.rcvd.reason) == (1000, "session replaced by a new connection")
                await new.send({"type": "ping"})
                await new.expect(lambda f: f.type is not None and f.type.value == "ping")
            assert not srv._identities  # each identity parsed once, taken by its connection

    run(scenario())


def test_healthz_404_and_bad_identity() -> None:
    async def scenario() -> None:
        async with mock(agents=1) as srv:
            base = f"http://127.0.0.1:{srv.port}"
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(base + "/healthz", timeout=5).read())
            status = json.loads(body)
            assert status["status"] == "ok" and "queues" in status and "conversations" in status
            for query, code in (("role=wizard", 400), ("role=agent", 400)):
                with pytest.raises(InvalidStatus) as info:
                    async with connect(f"{srv.url}?{query}", proxy=None, open_timeout=5):
                        pass
                assert info.value.response.status_code == code
            with pytest.raises(InvalidStatus) as info:
                async with connect(f"ws://127.0.0.1:{srv.port}/elsewhere", proxy=None, open_timeout=5):
                    pass
            assert info.value.response.status_code == 404

    run(scenario())


def test_engine_core_without_autopilot_serves_too() -> None:
    async def scenario() -> None:
        srv = WebchatServer(Engine(EngineConfig(), rng=random.Random(1)), ServerConfig(port=0))
        async with srv, Client.open(srv.url, "role=customer") as c:
            await c.send({"type": "ping"})
            await c.expect(lambda f: f.type is not None and f.type.value == "ping")

    run(scenario())


def test_cli_serve_prints_url_and_stops_on_sigterm_with_1001() -> None:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", "--port", "0", "--agents", "1", "--pace", "fast"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("webchat-sim serving ws://127.0.0.1:"), line
        url = line.split()[2]

        async def client() -> None:
            async with connect(url + "?role=customer", proxy=None, open_timeout=5) as ws:
                await ws.send('{"type":"ping"}')
                assert orjson.loads(await ws.recv()) == {"type": "ping"}
                proc.send_signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed) as info:
                    async with asyncio.timeout(10):
                        while True:
                            await ws.recv()
                assert info.value.rcvd is not None and info.value.rcvd.code == 1001

        run(client())
        assert proc.wait(10) == 0
        assert proc.stderr is not None and "no authentication" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)

