"""Length limits on what clients name, and the byte bound of ``queue status update``.

Issue 11, defect 2: names, emails and questions had no length limit, so 19
customers x 3 chats with 60 KB start frames made ``queue status update``
frames of 3 MB, and an agent on a default client (1 MiB frame limit) was
closed with 1009 on every retry. Every field a client names that the engine
stores or forwards now has a limit (refused with ``field_too_long``), and the
status frame keeps its agents and queue entries within
``status_max_bytes`` (128 KiB by default), whatever the fields hold.
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from simulator.mock.engine import Routing
from simulator.protocol import EventType, encode
from tests.engine_harness import A1, C1, Chat, engaged_pair, error_of, event, of, start_frame

pytestmark = pytest.mark.timeout(60)

LIMITS = SimpleNamespace(
    name=200,
    email=254,
    language=35,
    queue_name=200,
    identifier=200,
    code=100,
    url=2048,
    text=10_000,
    entries=100,
    digest=64,
)
"""The limits docs/protocol.md (section 4.5) gives, in characters (``entries``: list entries)."""

STATUS_BOUND = 128 * 1024
"""The default ``status_max_bytes``: every ``queue status update`` encodes to at most this."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _rrweb(total_sha256: str) -> dict[str, Any]:
    return {
        "type": "init",
        "event_index": 0,
        "data": "abc",
        "data_part": 1,
        "data_total_parts": 2,
        "data_sha256": _digest("abc"),
        "data_total_sha256": total_sha256,
    }


def _item(**fields: Any) -> dict[str, Any]:
    return {"item_id": "SKU-1", "quantity": 1, **fields}


def test_the_engine_has_the_documented_limits() -> None:
    from simulator.mock.rules import LIMITS as ENGINE_LIMITS

    assert {name: getattr(ENGINE_LIMITS, name) for name in vars(LIMITS)} == vars(LIMITS)


# (who sends, frame as a function of the value, the path in the refusal, the limit, the code)
CASES: dict[str, tuple[int, Any, str, int, str]] = {
    "start name": (
        C1,
        lambda v: start_frame(conversation_participant_name=v),
        "event_engage_customer.conversation_participant_name",
        LIMITS.name,
        "field_too_long",
    ),
    "start email": (C1, lambda v: start_frame(email=v), "event_engage_customer.email", LIMITS.email, "field_too_long"),
    "start language": (
        C1,
        lambda v: start_frame(participant_language_iso_code=v),
        "event_engage_customer.participant_language_iso_code",
        LIMITS.language,
        "field_too_long",
    ),
    "start queue name": (
        C1,
        lambda v: start_frame(queue_name=v),
        "event_engage_customer.queue_name",
        LIMITS.queue_name,
        "field_too_long",
    ),
    "client_message_id": (
        C1,
        lambda v: {"type": "message", "message": {"body": "hi", "client_message_id": v}},
        "message.client_message_id",
        LIMITS.identifier,
        "field_too_long",
    ),
    "message language": (
        A1,
        lambda v: {"type": "message", "message": {"body": "hi", "language_iso_code": v}},
        "message.language_iso_code",
        LIMITS.language,
        "field_too_long",
    ),
    "media url": (
        C1,
        lambda v: {"type": "message", "message": {"media_urls": ["https://ok.test/", v]}},
        "message.media_urls[1]",
        LIMITS.url,
        "field_too_long",
    ),
    "typing": (
        C1,
        lambda v: {"type": "event", "event_type": "typing", "event_typing": {"value": v}},
        "event_typing.value",
        LIMITS.text,
        "field_too_long",
    ),
    "context url": (
        C1,
        lambda v: {"type": "event", "event_type": "webchat context", "event_webchat_context": {"url": v}},
        "event_webchat_context.url",
        LIMITS.url,
        "field_too_long",
    ),
    "context cart_id": (
        C1,
        lambda v: {"type": "event", "event_type": "webchat context", "event_webchat_context": {"cart_id": v}},
        "event_webchat_context.cart_id",
        LIMITS.identifier,
        "field_too_long",
    ),
    "context ucacid": (
        C1,
        lambda v: {"type": "event", "event_type": "webchat context", "event_webchat_context": {"ucacid": v}},
        "event_webchat_context.ucacid",
        LIMITS.identifier,
        "field_too_long",
    ),
    "coupon code": (
        A1,
        lambda v: {"type": "event", "event_type": "add coupon", "event_add_coupon": {"coupon_code": v}},
        "event_add_coupon.coupon_code",
        LIMITS.code,
        "field_too_long",
    ),
    "item id": (
        A1,
        lambda v: {"type": "event", "event_type": "add item", "event_add_item": {"items": [_item(item_id=v)]}},
        "event_add_item.items[0].item_id",
        LIMITS.code,
        "field_too_long",
    ),
    "item url": (
        A1,
        lambda v: {"type": "event", "event_type": "add item", "event_add_item": {"items": [_item(view_url=v)]}},
        "event_add_item.items[0].view_url",
        LIMITS.url,
        "field_too_long",
    ),
    "item description": (
        A1,
        lambda v: {"type": "event", "event_type": "add item", "event_add_item": {"items": [_item(description=v)]}},
        "event_add_item.items[0].description",
        LIMITS.text,
        "field_too_long",
    ),
    "item attribute": (
        A1,
        lambda v: {
            "type": "event",
            "event_type": "add item",
            "event_add_item": {"items": [_item(attributes=[{"name": "colour", "value": v}])]},
        },
        "event_add_item.items[0].attributes[0].value",
        LIMITS.text,
        "field_too_long",
    ),
    "rrweb total sha256": (
        C1,
        lambda v: {"type": "event", "event_type": "rrweb", "event_rrweb": _rrweb(v)},
        "event_rrweb.data_total_sha256",
        LIMITS.digest,
        "invalid_rrweb",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_field_a_client_names_has_a_length_limit(case: str) -> None:
    sender, build, path, limit, code = CASES[case]
    chat = Chat()
    conv = engaged_pair(chat)

    def send(value: str) -> list[Any]:
        frame = build(value)
        if frame["event_type" if "event_type" in frame else "type"] != "webchat start conversation":
            frame["conversation_uuid"] = conv
        chat.send(sender, frame)
        return chat.take(sender)

    pad = "a" if case != "rrweb total sha256" else "0"
    over = send(pad * (limit + 1))
    assert error_of(over) == code
    error = over[0].error
    assert error is not None and error.developer_message is not None
    assert error.developer_message.startswith(f"{path}: {limit + 1} characters"), error.developer_message
    assert str(limit) in error.developer_message
    assert chat.take(C1 if sender != C1 else A1) == []  # nothing reached anyone else
    # At the limit the same frame is accepted (no error frame to the sender)
    at = "0" * limit if case == "rrweb total sha256" else pad * limit
    if case == "start queue name":
        return  # a queue of that name does not exist: unknown_queue, not a length error
    assert all(f.error is None or f.error.error_code != code for f in send(at))


def test_too_many_items_are_refused() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    items = [_item(item_id=f"SKU-{i}") for i in range(LIMITS.entries + 1)]
    chat.send(A1, event("add item", conv, event_add_item={"items": items}))
    frames = chat.take(A1)
    assert error_of(frames) == "field_too_long"
    assert frames[0].error is not None and frames[0].error.developer_message is not None
    assert frames[0].error.developer_message.startswith(f"event_add_item.items: {LIMITS.entries + 1} entries")
    assert chat.take(C1) == []


def test_a_refused_start_changes_nothing() -> None:
    chat = Chat(routing=Routing.MANUAL)
    chat.agent(A1)
    chat.connect(C1)
    chat.tick(5)  # the status update the agent's login scheduled
    chat.clear()
    chat.send(C1, start_frame(conversation_participant_name="x" * 60_000, question="hi"))
    assert error_of(chat.take(C1)) == "field_too_long"
    chat.tick(5)
    assert chat.take(A1) == []  # no queue new member, no status update
    assert chat.engine.status()["conversations"]["open"] == 0


# ---------------------------------------------------------------------------
# The status frame's byte bound

WORST = "\x01"
"""A character JSON writes as six bytes (``\\u0001``): the most bytes per character."""


def _status_sizes(chat: Chat, agent: int) -> list[int]:
    return [len(encode(f)) for f in of(chat.take(agent), EventType.QUEUE_STATUS_UPDATE)]


def test_queue_status_update_stays_within_its_byte_bound_with_maximal_fields() -> None:
    chat = Chat(routing=Routing.MANUAL, reconnect_grace=60)
    agents = [1000 + i for i in range(300)]
    for i, conn in enumerate(agents):
        chat.agent(conn, name=f"{i:04d}" + WORST * (LIMITS.name - 4))
    for i in range(20):
        conn = 100 + i
        chat.connect(conn)
        for _ in range(3):
            entry = {
                "conversation_participant_name": f"{i:04d}" + WORST * (LIMITS.name - 4),
                "email": WORST * LIMITS.email,
                "participant_language_iso_code": WORST * LIMITS.language,
                "question": WORST * chat.engine.config.max_body_length,
            }
            chat.send(conn, start_frame(**entry))
            assert not [f for f in chat.take(conn) if f.error is not None]
    sizes = _status_sizes(chat, agents[0])
    chat.tick(5)
    sizes += _status_sizes(chat, agents[0])
    late = 5000
    sizes += [len(encode(f)) for f in of(chat.agent(late, name=WORST * LIMITS.name), EventType.QUEUE_STATUS_UPDATE)]
    assert sizes and max(sizes) <= STATUS_BOUND, max(sizes)
    (status,) = chat.engine.queue_statuses(())
    assert status.customer_waiting_count == 60  # the counts stay whole
    assert status.agent_count == 301
    assert status.queue_entries is not None and 0 < len(status.queue_entries) < 50  # capped by bytes
    assert status.agents is not None and 0 < len(status.agents) < 301
    # the oldest entries, in line order
    names = [e.conversation_participant_name or "" for e in status.queue_entries]
    assert names == sorted(names)
    assert names[0].startswith("0000")


def test_status_entries_limit_still_caps_by_count() -> None:
    chat = Chat(routing=Routing.MANUAL, status_entries_limit=5)
    chat.agent(A1)
    for i in range(4):
        conn = 100 + i
        chat.connect(conn)
        for _ in range(3):
            chat.send(conn, start_frame(question="short"))
    (status,) = chat.engine.queue_statuses(())
    assert status.customer_waiting_count == 12
    assert status.queue_entries is not None and len(status.queue_entries) == 5


# ---------------------------------------------------------------------------
# The REST side: the same limits, as 400 field_too_long


def _rest(chat: Chat, op: str, caller: Any, body: Any, **params: str) -> tuple[int, str | None]:
    from simulator.mock import rest

    (endpoint,) = [e for e in rest.ENDPOINTS if e.operation_id == op]
    result = rest.call(endpoint, chat.engine, caller, params, orjson.dumps(body), chat.now)
    assert not result.deliveries or result.status < 400
    code = result.body["error"]["error_code"] if result.status >= 400 and result.body is not None else None
    return result.status, code


def test_rest_bodies_have_the_same_limits() -> None:
    from simulator.mock.conversation import Role
    from simulator.mock.rest import Caller

    chat = Chat(routing=Routing.MANUAL)
    chat.agent(A1)
    conv = chat.start(C1).conversation_uuid
    assert conv is not None
    agent = Caller(role=Role.AGENT, name="agent-11")
    customer = Caller(role=Role.CUSTOMER, participant_arn=chat.engine._conns[C1].arn)
    long_language = {"participant_language_iso_code": "l" * (LIMITS.language + 1)}
    assert _rest(chat, "join_conversation", agent, long_language, conversation_uuid=conv) == (400, "field_too_long")
    url = {"url": "https://shop.test/" + "p" * LIMITS.url}
    assert _rest(chat, "get_conversation_context", customer, url, conversation_uuid=conv) == (400, "field_too_long")
    status = {"agent_status": "available", "custom_status_name": "s" * (LIMITS.name + 1)}
    assert _rest(chat, "update_conversation_webchat_queue_status", agent, status, queue_name="support") == (
        400,
        "field_too_long",
    )
    for profile in ({"display_name": "d" * (LIMITS.name + 1)}, {"zohodesk_departments": ["x"] * 1000}):
        assert _rest(chat, "update_agent_profile", agent, profile) == (400, "field_too_long")
    assert chat.engine._conversations[conv].context is None  # nothing was kept


def test_customer_auth_refuses_oversized_fields() -> None:
    import asyncio
    import random

    from aiohttp.test_utils import TestClient, TestServer

    from simulator.mock.app import MockOptions, build_door
    from simulator.mock.engine import Engine, EngineConfig
    from simulator.mock.http import make_app
    from simulator.mock.server import WebchatServer

    async def scenario() -> None:
        options = MockOptions(agents=0)
        door = build_door(options)
        server = WebchatServer(Engine(EngineConfig(), rng=random.Random(1)))
        async with TestClient(TestServer(make_app(server, door))) as client:
            for body, reason in (
                ({"name": "n" * (LIMITS.name + 1)}, f"name: {LIMITS.name + 1} characters, limit {LIMITS.name}"),
                ({"email": "e" * (LIMITS.email + 1)}, f"email: {LIMITS.email + 1} characters"),
                ({"language_iso_code": "l" * 36}, "language_iso_code: 36 characters"),
            ):
                response = await client.post("/rest/v2/webchat-sim/customer_auth", json=body)
                assert response.status == 400
                assert reason in (await response.json())["error"]["developer_message"]

    asyncio.run(asyncio.wait_for(scenario(), 30))
