"""The rest of the front door's REST API, sans I/O and with the SDK's client:
starting and resolving conversations, searching them, canned-message CRUD,
a second agent joining a chat, ``busy`` set by hand, the profile's
``chat_limit`` enforced, and query parameters parsed strictly."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from ultracart import model_utils
from ultracart.api_client import ApiClient
from ultracart.model.conversation_canned_message_response import ConversationCannedMessageResponse
from ultracart.model.conversation_search_response import ConversationSearchResponse
from ultracart.model.conversation_start_response import ConversationStartResponse
from ultracart.model.error_response import ErrorResponse

from simulator.mock import rest
from simulator.mock.conversation import Role
from simulator.mock.rest import ENDPOINTS, Caller, RestResult
from simulator.mock.rest_models import strict_int
from simulator.protocol import EventType
from tests.engine_harness import A1, A2, C1, C2, Chat, engaged_pair, kinds, of, queue_uuid_of

pytestmark = pytest.mark.timeout(60)

_CFG = ApiClient().configuration
BY_OP = {e.operation_id: e for e in ENDPOINTS}
MODELS: dict[str, Any] = {
    "start_conversation": ConversationStartResponse,
    "get_conversations_search": ConversationSearchResponse,
    "insert_conversation_canned_message": ConversationCannedMessageResponse,
    "update_conversation_canned_message": ConversationCannedMessageResponse,
}


def sdk(body: Any, model: Any) -> Any:
    data = orjson.loads(orjson.dumps(body))
    return model_utils.validate_and_convert_types(data, (model,), ["body"], True, True, _CFG)


def run(chat: Chat, op: str, caller: Caller, body: Any = None, **params: Any) -> RestResult:
    raw = orjson.dumps(body) if body is not None else None
    result = rest.call(BY_OP[op], chat.engine, caller, {k: str(v) for k, v in params.items()}, raw, chat.now)
    if result.deliveries:
        chat.deliver(result.deliveries)
    if result.status >= 400:
        assert result.body is not None and not result.deliveries
        sdk(result.body, ErrorResponse)
    elif result.body is not None and op in MODELS:
        sdk(result.body, MODELS[op])
    return result


def agent(conn: int = A1) -> Caller:
    return Caller(role=Role.AGENT, name=f"agent-{conn}", user_id=conn)


def customer(chat: Chat, conn: int) -> Caller:
    return Caller(role=Role.CUSTOMER, participant_arn=chat.engine._conns[conn].arn)


def error(result: RestResult) -> tuple[int, str]:
    assert result.body is not None
    return result.status, result.body["error"]["error_code"]


# ---------------------------------------------------------------------------
# PUT /conversation/conversations


def test_a_connected_customer_starts_a_chat_over_rest_and_gets_the_websocket_frames() -> None:
    chat = Chat(routing="manual", queues=("support", "sales"))
    chat.agent(A1, queues=("sales",))
    chat.connect(C1)
    started = run(chat, "start_conversation", customer(chat, C1), {"queue_name": "sales", "question": "Hi?"})
    assert started.status == 200 and started.body is not None
    conv = started.body["conversation"]
    assert conv["messages"][0]["body"] == "Hi?"
    frames = chat.take(C1)
    assert kinds(frames)[:2] == ["new conversation", "message"]
    assert of(frames, EventType.NEW_CONVERSATION)[0].conversation_uuid == conv["conversation_uuid"]
    assert "queue new member" in kinds(chat.take(A1))  # the sales agent sees the new customer
    again = run(chat, "start_conversation", customer(chat, C1), {"resolve_only": True})
    assert again.body is not None and again.body["conversation"]["conversation_uuid"] == conv["conversation_uuid"]
    assert error(run(chat, "start_conversation", customer(chat, C1), {"queue_name": "nope"})) == (
        404,
        "unknown_queue",
    )
    assert error(run(chat, "start_conversation", customer(chat, C1), {"add_conversation_participant_arns": ["x"]})) == (
        403,
        "forbidden_for_role",
    )
    away = Caller(role=Role.CUSTOMER, participant_arn="arn:nobody")
    assert error(run(chat, "start_conversation", away, {})) == (409, "not_connected")


def test_an_agent_resolves_and_joins_by_conversation_arn_or_by_participant_arn() -> None:
    chat = Chat(routing="manual")
    chat.agent(A1)
    chat.agent(A2)
    first = chat.start(C1)
    conv_arn = first.event_new_conversation.conversation_arn  # type: ignore[union-attr]
    resolved = run(chat, "start_conversation", agent(), {"conversation_arn": conv_arn, "resolve_only": True})
    assert resolved.status == 200 and not resolved.deliveries  # resolve only: nobody joined
    chat.clear()
    joined = run(chat, "start_conversation", agent(), {"conversation_arn": conv_arn})
    assert joined.status == 200
    assert of(chat.take(C1), EventType.PARTICIPANT_JOIN)
    customer_arn = chat.engine._conns[C1].arn
    by_participant = run(chat, "start_conversation", agent(A2), {"add_conversation_participant_arns": [customer_arn]})
    assert by_participant.body is not None
    assert by_participant.body["conversation"]["conversation_arn"] == conv_arn
    assert of(chat.take(A2), EventType.NEW_CONVERSATION)  # the second agent is in it too
    nobody = {"add_conversation_participant_arns": ["arn:nobody"]}
    assert error(run(chat, "start_conversation", agent(), nobody))[0] == 409
    assert error(run(chat, "start_conversation", agent(), {**nobody, "resolve_only": True}))[0] == 404
    assert error(run(chat, "start_conversation", agent(), {"conversation_arn": conv_arn + "x"}))[0] == 404
    assert error(run(chat, "start_conversation", agent(), {}))[0] == 400


def test_another_customers_conversation_arn_is_404_and_changes_nothing() -> None:
    chat = Chat()
    chat.agent(A1)
    mine = chat.start(C1).event_new_conversation
    chat.start(C2)
    assert mine is not None
    chat.clear()
    refused = run(chat, "start_conversation", customer(chat, C2), {"conversation_arn": mine.conversation_arn})
    assert error(refused) == (404, "conversation_not_found")
    assert not chat.inbox


# ---------------------------------------------------------------------------
# POST /conversation/conversations/search


def test_search_filters_by_text_email_language_and_dates_and_pages() -> None:
    chat = Chat()
    engaged_pair(chat)
    chat.start(C2, question="Ma commande est en retard", email="zoe@example.com", participant_language_iso_code="fr")

    def uuids(body: dict[str, Any]) -> list[str]:
        result = run(chat, "get_conversations_search", agent(), body).body
        assert result is not None
        return [r["conversation_uuid"] for r in result["records"]]

    everything = uuids({})
    assert len(everything) == 2
    french = uuids({"language_filter": "fr"})
    assert french == uuids({"text_search": "COMMANDE"}) == uuids({"email_filter": "ZOE@"})
    assert len(french) == 1 and french[0] in everything
    assert uuids({"date_start": "2999-01-01T00:00:00Z"}) == []
    assert uuids({"order_by_oldest": True}) == everything[::-1]
    page = run(chat, "get_conversations_search", agent(), {"range_begin": 1, "range_end": 2}).body
    assert page is not None and (page["total"], page["range_begin"], len(page["records"])) == (2, 1, 1)
    assert uuids({"medium_filter": "sms"}) == []
    assert uuids({}) and run(chat, "get_conversations_search", customer(chat, C2), {}).body["total"] == 1  # type: ignore[index]
    assert error(run(chat, "get_conversations_search", agent(), {"range_begin": 2, "range_end": 1}))[0] == 400
    assert error(run(chat, "get_conversations_search", agent(), {"date_end": "yesterday"}))[0] == 400


# ---------------------------------------------------------------------------
# Canned messages: insert, update, delete


def test_canned_messages_are_inserted_updated_and_deleted_per_run() -> None:
    chat = Chat()
    created = run(chat, "insert_conversation_canned_message", agent(), {"short_code": "x-hi", "canned_message": "Hi!"})
    assert created.body is not None
    oid = created.body["conversation_canned_message"]["conversation_canned_message_oid"]
    found = run(chat, "search_conversation_canned_messages", agent(), {"short_code": "x-"}).body
    assert found is not None and [m["canned_message"] for m in found["conversation_canned_messages"]] == ["Hi!"]
    changed = run(
        chat,
        "update_conversation_canned_message",
        agent(),
        {"canned_message": "Hello!"},
        conversation_canned_message_oid=oid,
    )
    assert changed.body is not None and changed.body["conversation_canned_message"]["short_code"] == "x-hi"
    assert changed.body["conversation_canned_message"]["canned_message"] == "Hello!"
    assert run(chat, "delete_conversation_canned_message", agent(), conversation_canned_message_oid=oid).status == 204
    gone = run(chat, "delete_conversation_canned_message", agent(), conversation_canned_message_oid=oid)
    assert error(gone) == (404, "canned_message_not_found")
    other_run = Chat()  # another engine starts from the seeded set
    listed = run(other_run, "get_conversation_canned_messages", agent()).body
    assert listed is not None and len(listed["conversation_canned_messages"]) == 36
    customer_call = run(chat, "insert_conversation_canned_message", Caller(role=Role.CUSTOMER), {"short_code": "a"})
    assert error(customer_call)[0] == 403


@pytest.mark.parametrize(
    ("op", "body", "params", "expected"),
    [
        ("insert_conversation_canned_message", {"short_code": "a"}, {}, (400, "missing_field")),
        ("insert_conversation_canned_message", {"short_code": " ", "canned_message": "x"}, {}, (400, "invalid_value")),
        ("insert_conversation_canned_message", {"short_code": "a", "canned_message": 5}, {}, (400, "invalid_type")),
        (
            "insert_conversation_canned_message",
            {"short_code": "a", "canned_message": "x" * 4001},
            {},
            (400, "invalid_value"),
        ),
        ("insert_conversation_canned_message", {"nope": 1}, {}, (400, "unknown_field")),
        (
            "update_conversation_canned_message",
            {"canned_message": "x"},
            {"conversation_canned_message_oid": "abc"},
            (400, "invalid_type"),
        ),
        (
            "update_conversation_canned_message",
            {"canned_message": "x"},
            {"conversation_canned_message_oid": "999"},
            (404, "canned_message_not_found"),
        ),
        ("start_conversation", {"resolve_only": "yes"}, {}, (400, "invalid_type")),
        ("start_conversation", {"add_conversation_participant_arns": [1]}, {}, (400, "invalid_type")),
        ("get_conversations_search", {"range_begin": -1}, {}, (400, "invalid_value")),
        ("get_conversations_search", {"text_search": ["a"]}, {}, (400, "invalid_type")),
    ],
)
def test_bad_bodies_of_the_new_endpoints(op: str, body: Any, params: dict[str, str], expected: tuple[int, str]) -> None:
    chat = Chat()
    chat.agent(A1)
    assert error(run(chat, op, agent(), body, **params)) == expected


# ---------------------------------------------------------------------------
# A second agent, busy by hand, the profile's chat limit


def test_a_second_agent_joins_within_its_chat_limit_and_the_chat_goes_on_when_one_leaves() -> None:
    chat = Chat(max_chats_per_agent=1)
    conv = engaged_pair(chat)  # A1 took it
    other = engaged_pair(chat, customer=C2, agent=A2)  # A2 is at its limit
    assert other
    full = run(chat, "join_conversation", agent(A2), conversation_uuid=conv)
    assert error(full) == (409, "agent_at_capacity")
    chat.send(C2, {"type": "event", "event_type": "conversation closed", "conversation_uuid": other})
    assert run(chat, "join_conversation", agent(A2), conversation_uuid=conv).status == 204
    chat.clear()
    assert run(chat, "leave_conversation", agent(A1), conversation_uuid=conv).status == 204
    assert not of(chat.take(C1), EventType.CONVERSATION_CLOSED)  # A2 is still with the customer
    chat.say(C1, conv, "still there?")
    assert [f.message.body for f in chat.take(A2) if f.message is not None] == ["still there?"]


def test_busy_set_by_hand_stops_routing_until_available_again() -> None:
    chat = Chat()
    chat.agent(A1)
    op = "update_conversation_webchat_queue_status"
    assert run(chat, op, agent(), {"agent_status": "busy"}, queue_name="support").status == 204
    chat.start(C1)
    assert not of(chat.take(C1), EventType.PARTICIPANT_JOIN)  # nobody routed
    status = chat.engine.queue_statuses(())[0]
    assert (status.agent_busy_count, status.agent_available_count) == (1, 0)
    chat.clear()
    assert run(chat, op, agent(), {"agent_status": "available"}, queue_name="support").status == 204
    assert of(chat.take(C1), EventType.PARTICIPANT_JOIN)


def test_the_profiles_chat_limit_is_enforced_and_raising_it_routes_the_waiting() -> None:
    chat = Chat(max_chats_per_agent=3)
    chat.agent(A1)
    changed = run(chat, "update_agent_profile", agent(), {"chat_limit": 1})
    assert changed.body is not None and changed.body["agent_profile"]["chat_limit"] == 1
    chat.start(C1)
    chat.start(C2)
    assert of(chat.take(C1), EventType.PARTICIPANT_JOIN) and not of(chat.take(C2), EventType.PARTICIPANT_JOIN)
    status = chat.engine.queue_statuses(())[0]
    assert (status.agent_busy_count, status.customer_waiting_count) == (1, 1)
    refused = chat.engage(A1, queue_uuid_of(chat, C2))
    assert refused and refused[0].frame.error is not None
    assert refused[0].frame.error.error_code == "agent_at_capacity"
    raised = run(chat, "update_agent_profile", agent(), {"chat_limit": 2})
    assert raised.status == 200
    assert of(chat.take(C2), EventType.PARTICIPANT_JOIN)  # routed at once


# ---------------------------------------------------------------------------
# Strict integers (issue 11, item 5)


@pytest.mark.parametrize("text", ["\u00b2", "\u0661\u0662", "1" * 5000, "12a", " 12", "", "+3", "1e3", "0x10"])
def test_strict_int_refuses_what_is_not_ascii_digits(text: str) -> None:
    assert strict_int(text) is None


def test_strict_int_reads_ascii_integers() -> None:
    assert (strict_int("0"), strict_int("-7"), strict_int("1700000000000")) == (0, -7, 1_700_000_000_000)


@pytest.mark.parametrize("since", ["\u00b2", "\u0661\u0662", "9" * 5000])
def test_bad_since_in_rest_is_400(since: str) -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    result = run(chat, "get_conversation_messages", agent(), conversation_uuid=conv, since=since)
    assert error(result) == (400, "invalid_type")


# ---------------------------------------------------------------------------
# The SDK's own client over HTTP


def test_the_sdk_client_starts_searches_and_edits_canned_messages() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer
    from ultracart.api.conversation_api import ConversationApi
    from ultracart.configuration import Configuration
    from ultracart.model.conversation_canned_message import ConversationCannedMessage
    from ultracart.model.conversation_search_request import ConversationSearchRequest
    from ultracart.model.conversation_start_request import ConversationStartRequest

    chat = Chat(routing="manual")
    chat.agent(A1)
    first = chat.start(C1).event_new_conversation
    assert first is not None
    chat.clear()
    sent: list[Any] = []

    async def main() -> None:
        app = web.Application()
        app.add_routes(rest.routes(lambda: chat.engine, lambda request: agent(), sent.append, clock=lambda: chat.now))
        async with TestServer(app, host="127.0.0.1") as server:
            api = ConversationApi(ApiClient(Configuration(host=str(server.make_url(rest.PREFIX)))))
            started = await asyncio.to_thread(
                api.start_conversation, ConversationStartRequest(conversation_arn=first.conversation_arn)
            )
            assert started.conversation.conversation_uuid == first.conversation_uuid
            found = await asyncio.to_thread(
                api.get_conversations_search, ConversationSearchRequest(text_search="order")
            )
            assert [r.conversation_uuid for r in found.records] == [first.conversation_uuid]
            made = await asyncio.to_thread(
                api.insert_conversation_canned_message,
                ConversationCannedMessage(short_code="sdk-1", canned_message="From the SDK"),
            )
            oid = made.conversation_canned_message.conversation_canned_message_oid
            updated = await asyncio.to_thread(
                api.update_conversation_canned_message, oid, ConversationCannedMessage(canned_message="Edited")
            )
            assert updated.conversation_canned_message.canned_message == "Edited"
            await asyncio.to_thread(api.delete_conversation_canned_message, oid)

    asyncio.run(main())
    chat.deliver([d for batch in sent for d in batch])
    assert of(chat.take(C1), EventType.PARTICIPANT_JOIN)  # the REST start joined the agent
