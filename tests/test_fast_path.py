"""The chat path's frames written as bytes (simulator/mock/wire.py) are the
model path's, byte for byte: the ``message`` frame (the sender's copy and
the others'), the agents' ``new message`` and the ``participant update`` of a
language change, across messages that change unread counts and the
unanswered-since stamp, participants joining, leaving and disconnecting,
read receipts, resends and retention cuts; and a :class:`PreparedFrame` is
a plain ``Frame`` as soon as anything looks inside."""

from __future__ import annotations

import asyncio
import copy
import gc
import pickle
import random
import tracemalloc
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

from simulator.mock.conversation import State
from simulator.mock.engine import Delivery, Engine, EngineConfig, Role, Routing
from simulator.mock.framing import queue_text, text_frame
from simulator.mock.server import ServerConfig, WebchatServer
from simulator.mock.wire import summary_bytes, summary_frame
from simulator.protocol import EventType, Frame, FrameType, decode, encode
from simulator.protocol.prepared import PreparedFrame, envelope, prepared, wire_bytes
from tests.engine_harness import A1, A2, C1, Chat, engaged_pair, event, of, queue_uuid_of
from tests.sdk import sdk_validate

BODIES = [
    "hello?",
    'quotes " and \\ backslashes, a tab\t and a newline\n',
    "non-ASCII: café, 日本語, emoji 🎉, line separator \u2028",
    "",  # with media only
]


def _model_frames(chat: Chat, conv_uuid: str) -> dict[str, bytes]:
    """What the model path writes for the conversation as it is now."""
    conv = chat.engine._conversations[conv_uuid]
    summary = conv.summary()
    return {
        "message": encode(conv.messages[-1].model_frame()),
        "new message": encode(conv.event(EventType.NEW_MESSAGE, event_new_message=summary)),
        "participant update": encode(conv.event(EventType.PARTICIPANT_UPDATE, event_participant_update=summary)),
    }


def _say(chat: Chat, conn: int, conv: str, body: str, **message: Any) -> list[Delivery]:
    payload: dict[str, Any] = {"body": body, **message} if body else dict(message)
    deliveries = chat.send(conn, {"type": "message", "conversation_uuid": conv, "message": payload})
    expected = _model_frames(chat, conv)
    conversation = chat.engine._conversations[conv]
    fast = summary_bytes(conversation, closed=conversation.state is State.CLOSED)
    for kind, key in (
        (EventType.NEW_MESSAGE, "event_new_message"),
        (EventType.PARTICIPANT_UPDATE, "event_participant_update"),
    ):
        assert wire_bytes(summary_frame(conversation, kind, key, fast)) == expected[kind.value]  # delivered or not
    assert deliveries, "nothing delivered"
    for delivery in deliveries:
        frame = delivery.frame
        assert frame.error is None, encode(frame)
        data = wire_bytes(frame)
        assert data is not None, "not written on the fast path"
        kind = frame.event_type.value if frame.event_type is not None else str(frame.type)
        assert data == expected[kind], kind
    return deliveries


def _recipients(deliveries: list[Delivery]) -> list[tuple[str, tuple[int, ...]]]:
    return [(str(d.frame.event_type or d.frame.type), d.recipients) for d in deliveries]


def test_a_chat_back_and_forth_is_byte_identical() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    for round_ in range(3):
        for body in BODIES:
            media = {"media_urls": ["https://shop.test/a.png"]} if not body else {}
            _say(chat, C1, conv, body, client_message_id=f"c-{round_}-{len(body)}", **media)
        _say(chat, A1, conv, f"answer {round_}")  # clears the unanswered-since stamp, unread counts move
        _say(chat, C1, conv, "and again", language_iso_code="fr" if round_ % 2 else "en")


def test_the_same_bytes_go_to_everyone_once() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    deliveries = _say(chat, C1, conv, "hello?", language_iso_code="de")
    assert _recipients(deliveries) == [
        ("message", (C1, A1)),
        ("new message", (A1,)),
        ("participant update", (C1, A1)),
    ]
    agent_copy = of(chat.take(A1), FrameType.MESSAGE)[0].message
    assert agent_copy is not None and agent_copy.body == "hello?"


def test_joining_leaving_and_disconnecting_participants() -> None:
    chat = Chat(routing=Routing.MANUAL, reconnect_grace=60)
    chat.agent(A1)
    chat.agent(A2, email="second@shop.test")
    conv = chat.start(C1, email="jane@shop.test").conversation_uuid
    assert conv is not None
    chat.engage(A1, queue_uuid_of(chat, C1))
    _say(chat, C1, conv, "one agent")
    second = chat.engine._conns[A2]
    chat.deliver(chat.engine.join_engaged(chat.engine._conversations[conv], second, chat.now))
    _say(chat, A2, conv, "two agents")
    _say(chat, C1, conv, "to both")
    chat.send(A2, event("participant left", conv))
    _say(chat, C1, conv, "one left")
    chat.disconnect(A1)  # in its grace: status disconnected, its transport status queued
    _say(chat, C1, conv, "one away")
    conversation = chat.engine._conversations[conv]
    states = [p.status for p in conversation.summary().participants or ()]
    assert states == ["active", "disconnected", "left"]
    assert b'"status":"queued"' in encode(conversation.messages[-1].frame)


def test_read_receipts_resends_and_retention_cuts() -> None:
    chat = Chat(history_hold_bytes=12_000)
    conv = engaged_pair(chat)
    first = _say(chat, C1, conv, "read me", client_message_id="c-1")[0].frame
    assert first.message is not None and first.message.conversation_message_uuid is not None
    chat.send(
        A1,
        event(
            "read message",
            conv,
            event_read_message={"conversation_message_uuid": first.message.conversation_message_uuid},
        ),
    )
    stored = chat.engine._conversations[conv].by_uuid[first.message.conversation_message_uuid]
    assert encode(stored.frame) == encode(stored.model_frame())  # its transport statuses changed
    assert b'"status":"read"' in encode(stored.frame)
    resent = chat.send(
        C1, {"type": "message", "conversation_uuid": conv, "message": {"body": "read me", "client_message_id": "c-1"}}
    )
    assert [d.recipients for d in resent] == [(C1,)]
    assert encode(resent[0].frame) == encode(stored.model_frame())
    for n in range(40):  # past the history cap: the oldest are dropped, the counts go on
        _say(chat, C1 if n % 3 else A1, conv, f"message {n} " + "x" * 500)
    conversation = chat.engine._conversations[conv]
    assert conversation.dropped > 0


def test_a_prepared_frame_is_a_frame_when_looked_into() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    (message, summary) = _say(chat, C1, conv, "look inside")
    frame, data = summary.frame, wire_bytes(summary.frame)
    assert data is not None and type(frame) is PreparedFrame
    assert isinstance(frame, Frame)
    assert frame.event_type is EventType.NEW_MESSAGE and frame.conversation_uuid == conv
    assert type(frame) is PreparedFrame  # the envelope fields leave it as it is
    assert frame == decode(data, context=False)  # anything else: a Frame decoded from its bytes
    assert type(frame) is Frame and wire_bytes(frame) is None
    assert encode(frame) == data
    assert frame.event_new_message is not None and frame.event_new_message.message_count == 2
    other = message.frame
    assert other.model_dump(exclude_none=True)["message"]["body"] == "look inside"
    assert "look inside" in repr(prepared(encode(other), envelope(FrameType.MESSAGE, None, conv, "arn")))


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.AGENT])
def test_the_author_reads_everything_before_its_message(role: Role) -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    for n in range(3):
        _say(chat, A1 if role is Role.CUSTOMER else C1, conv, f"unread {n}")
    deliveries = _say(chat, C1 if role is Role.CUSTOMER else A1, conv, "now I answer")
    summary = deliveries[-1].frame.event_new_message
    assert summary is not None and summary.participants is not None
    assert [p.unread_messages for p in summary.participants] == ([0, 1] if role is Role.CUSTOMER else [1, 0])


# ---------------------------------------------------------------------------
# Framing once per frame (simulator/mock/framing.py)


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frame_is_what_websockets_writes(length: int) -> None:
    data = b"x" * length
    assert text_frame(data) == WsFrame(Opcode.TEXT, data).serialize(mask=False, extensions=[])


def test_queue_text_frames_once_and_leaves_extensions_to_websockets() -> None:
    plain = ServerProtocol()
    plain.state = OPEN
    framed = queue_text(plain, b'{"type":"ping"}', None)
    assert framed == text_frame(b'{"type":"ping"}')
    assert queue_text(plain, b'{"type":"ping"}', framed) is framed  # the next recipient: the same bytes
    assert plain.data_to_send() == [framed, framed]
    compressed = ServerProtocol()
    compressed.state = OPEN
    compressed.extensions = [PerMessageDeflate(False, False, 15, 15)]
    assert queue_text(compressed, b'{"type":"ping"}' * 20, None) is None
    (written,) = compressed.data_to_send()
    assert written[0] == 0xC1 and written != text_frame(b'{"type":"ping"}' * 20)  # RSV1: compressed


@pytest.mark.timeout(30)
@pytest.mark.parametrize("compression", [False, True], ids=["plain", "deflate"])
def test_a_real_server_relays_the_fast_frames(compression: bool) -> None:
    async def scenario() -> None:
        engine = Engine(EngineConfig(), rng=random.Random(5))
        async with WebchatServer(engine, ServerConfig(port=0, compression=compression)) as server:
            deflate = "deflate" if compression else None
            async with (
                connect(f"{server.url}?role=agent&name=Ann", proxy=None, compression=deflate) as agent,
                connect(f"{server.url}?role=customer&name=Cy", proxy=None, compression=deflate) as customer,
            ):
                start = {"queue_name": "support", "question": "hi"}
                await customer.send(
                    orjson.dumps(event("webchat start conversation", None, event_engage_customer=start)).decode()
                )
                conv = None
                while conv is None:
                    frame = decode(await agent.recv())
                    if frame.event_type is EventType.PARTICIPANT_JOIN:
                        conv = frame.conversation_uuid
                say = {
                    "type": "message",
                    "conversation_uuid": conv,
                    "message": {"body": "über 🎉", "client_message_id": "c-9"},
                }
                await customer.send(orjson.dumps(say).decode())
                got: list[Frame] = []
                while len(got) < 2:
                    raw = await agent.recv()
                    assert isinstance(raw, str)
                    sdk_validate(raw)
                    frame = decode(raw)
                    ours = frame.message is not None and frame.message.client_message_id == "c-9"
                    if ours or (got and frame.event_type is EventType.NEW_MESSAGE):
                        got.append(frame)
                assert got[0].message is not None and got[0].message.body == "über 🎉"
                assert got[1].event_new_message is not None and got[1].event_new_message.message_count == 2
                while (ack := decode(await customer.recv())).message is None or ack.message.client_message_id != "c-9":
                    pass
                assert ack == got[0]

    async def bounded() -> None:
        async with asyncio.timeout(20):
            await scenario()

    asyncio.run(bounded())


def test_every_way_into_a_prepared_frame_makes_it_a_frame_first() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    data = wire_bytes(_say(chat, C1, conv, "copy me")[0].frame)
    assert data is not None
    decoded = decode(data, context=False)
    made = [prepared(data, envelope(FrameType.MESSAGE, None, conv, decoded.conversation_arn or "")) for _ in range(7)]
    assert copy.copy(made[0]) == decoded
    assert pickle.loads(pickle.dumps(made[1])) == decoded
    assert made[2].model_copy(update={"conversation_arn": "x"}).conversation_arn == "x"
    made[3].conversation_arn = "changed"  # its own fields now, not the shared envelope's
    assert made[3].conversation_arn == "changed" and made[4].conversation_arn == decoded.conversation_arn
    assert made[4].model_fields_set == decoded.model_fields_set
    assert Frame.model_validate(made[5]) == decoded
    assert copy.deepcopy(made[6]) == decoded


# ---------------------------------------------------------------------------
# What the kept parts cost (the byte account, simulator/mock/account.py)


@pytest.mark.parametrize("close", [False, True], ids=["open", "closed"])
def test_the_kept_parts_are_on_the_account_and_go_when_the_chat_closes(close: bool) -> None:
    """orjson's output keeps a 4 KiB buffer: parts kept raw held 36 KB per
    chat against an account of 8 KB. Within 20 % either way, open or closed."""
    chats = 100
    chat = Chat(validate=False, max_chats_per_agent=1, history_hold_bytes=10**12, retain_bytes=10**12)
    for agent in range(chats):
        chat.agent(1000 + agent)
    gc.collect()
    tracemalloc.start()
    try:
        baseline, held = tracemalloc.get_traced_memory()[0], chat.engine._held.bytes
        for customer in range(1, chats + 1):
            conv = chat.start(customer).conversation_uuid
            assert conv is not None
            for n in range(4):
                _say(chat, customer if n % 2 == 0 else 999 + customer, conv, "x" * 100)
            if close:
                chat.close(customer, conv)
                assert chat.engine._conversations[conv].wire is None
            chat.clear()
        chat.log.clear()
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    account = chat.engine._held.bytes - held
    assert 0.8 * account <= traced <= 1.2 * account, (traced, account)
