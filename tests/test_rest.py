"""The REST conversation API (simulator/mock/rest.py) over the engine, sans
I/O: every response deserializes with UltraCart's SDK model of its
operation, actions produce the websocket frames the corresponding frame
would, access follows the websocket's rule, and bad input is an
``ErrorResponse``; plus the aiohttp routes, with the SDK's own client."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from ultracart import model_utils
from ultracart.api_client import ApiClient
from ultracart.model.conversation_agent_profile_response import ConversationAgentProfileResponse
from ultracart.model.conversation_canned_messages_response import ConversationCannedMessagesResponse
from ultracart.model.conversation_messages_response import ConversationMessagesResponse
from ultracart.model.conversation_response import ConversationResponse
from ultracart.model.conversation_webchat_context import ConversationWebchatContext
from ultracart.model.conversation_webchat_queue_statuses_response import ConversationWebchatQueueStatusesResponse
from ultracart.model.conversations_response import ConversationsResponse
from ultracart.model.error_response import ErrorResponse

from simulator.errors import TokenExpired, TokenWrongRole
from simulator.mock import rest
from simulator.mock.conversation import Role
from simulator.mock.rest import ENDPOINTS, Caller, Endpoint, RestResult
from simulator.mock.rest_models import MAX_BODY_BYTES
from simulator.protocol import EventType
from tests.engine_harness import A1, A2, C1, C2, Chat, engaged_pair, event, kinds, of, queue_uuid_of

pytestmark = pytest.mark.timeout(60)

_CFG = ApiClient().configuration
BY_OP = {e.operation_id: e for e in ENDPOINTS}
RESPONSE_MODELS: dict[str, Any] = {
    "get_conversations": ConversationsResponse,
    "get_conversation": ConversationResponse,
    "get_conversation_messages": ConversationMessagesResponse,
    "get_conversation_webchat_queue_statuses": ConversationWebchatQueueStatusesResponse,
    "get_conversation_canned_messages": ConversationCannedMessagesResponse,
    "search_conversation_canned_messages": ConversationCannedMessagesResponse,
    "get_agent_profile": ConversationAgentProfileResponse,
    "update_agent_profile": ConversationAgentProfileResponse,
    "get_conversation_context": ConversationWebchatContext,
}


def sdk(body: Any, model: Any) -> Any:
    """Deserialize ``body`` (after a JSON round trip) with the SDK model, as its client does."""
    data = orjson.loads(orjson.dumps(body))
    return model_utils.validate_and_convert_types(data, (model,), ["body"], True, True, _CFG)


def run(chat: Chat, op: str, caller: Caller, body: Any = None, raw: bytes | None = None, **params: Any) -> RestResult:
    """Call one endpoint at the chat's clock, deliver its frames (checked against
    the SDK by the harness) and check its body against the SDK's model."""
    endpoint: Endpoint = BY_OP[op]
    data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
    result = rest.call(endpoint, chat.engine, caller, {k: str(v) for k, v in params.items()}, data, chat.now)
    if result.deliveries:
        chat.deliver(result.deliveries)
    if result.status >= 400:
        assert result.body is not None
        assert result.body["success"] is False
        sdk(result.body, ErrorResponse)
        assert not result.deliveries
    elif result.body is None:
        assert result.status == 204
    else:
        model = sdk(result.body, RESPONSE_MODELS[op])
        if op != "get_conversation_context":
            assert model.success is True
    return result


def agent(conn: int = A1, queues: tuple[str, ...] = ()) -> Caller:
    return Caller(role=Role.AGENT, name=f"agent-{conn}", queues=queues, user_id=conn)


def customer(chat: Chat, conn: int) -> Caller:
    return Caller(role=Role.CUSTOMER, participant_arn=chat.engine._conns[conn].arn)


def code(result: RestResult) -> str:
    assert result.body is not None
    value = result.body["error"]["error_code"]
    assert isinstance(value, str)
    return value


# ---------------------------------------------------------------------------
# Reads


def test_lists_gets_and_pages_messages_as_the_sdk_models() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    for i in range(4):
        chat.now += 1
        chat.say(C1 if i % 2 else A1, conv, f"line {i}")
    chat.start(C2)
    listed = run(chat, "get_conversations", agent()).body
    assert listed is not None
    assert [c["conversation_uuid"] for c in listed["conversations"]][1] == conv
    assert listed["metadata"]["result_set"]["total_records"] == 2
    one = run(chat, "get_conversation", agent(), conversation_uuid=conv).body
    assert one is not None
    assert one["conversation"]["message_count"] == 5
    assert [m["body"] for m in one["conversation"]["messages"]][-1] == "line 3"
    messages = run(chat, "get_conversation_messages", agent(), conversation_uuid=conv, since=0, limit=2).body
    assert messages is not None
    _first, second = messages["conversation_messages"]
    assert messages["metadata"]["result_set"] == {
        "count": 2,
        "limit": 2,
        "more": True,
        "next_offset": 2,
        "offset": 0,
        "total_records": 5,
    }
    newer = run(chat, "get_conversation_messages", agent(), conversation_uuid=conv, since=second["message_epoch"])
    assert newer.body is not None
    assert [m["body"] for m in newer.body["conversation_messages"]] == ["line 1", "line 2", "line 3"]
    page = run(chat, "get_conversations", agent(), limit=1, offset=1).body
    assert page is not None
    assert [c["conversation_uuid"] for c in page["conversations"]] == [conv]
    assert run(chat, "get_conversations", agent(), medium="sms").body["conversations"] == []  # type: ignore[index]
    before = run(chat, "get_conversations", agent(), before="2000-01-01T00:00:00Z").body
    assert before is not None
    assert before["conversations"] == []


def test_a_customer_sees_only_its_own_and_outsiders_cannot_tell_not_yours_from_missing() -> None:
    chat = Chat(queues=("support", "sales"))
    conv = engaged_pair(chat)
    chat.start(C2, queue_name="sales")
    mine = run(chat, "get_conversations", customer(chat, C1)).body
    assert mine is not None
    assert [c["conversation_uuid"] for c in mine["conversations"]] == [conv]
    stranger = run(chat, "get_conversation", customer(chat, C2), conversation_uuid=conv)
    missing = run(chat, "get_conversation", customer(chat, C2), conversation_uuid="0" * 36)
    assert stranger.status == missing.status == 404
    assert code(stranger) == code(missing) == "conversation_not_found"
    sales_agent = agent(A2, queues=("sales",))
    assert run(chat, "get_conversation", sales_agent, conversation_uuid=conv).status == 404
    assert run(chat, "get_conversation_messages", sales_agent, conversation_uuid=conv, since=0).status == 404
    assert run(chat, "mark_read_conversation", sales_agent, conversation_uuid=conv).status == 404
    seen = run(chat, "get_conversations", sales_agent).body
    assert seen is not None
    assert conv not in [c["conversation_uuid"] for c in seen["conversations"]]
    # the agent who took the chat keeps seeing it even through a narrower queue list
    assert run(chat, "get_conversation", agent(A1, queues=("sales",)), conversation_uuid=conv).status == 200


# ---------------------------------------------------------------------------
# Actions produce the frames


def test_join_engages_like_the_frame_and_conflicts_are_409() -> None:
    chat = Chat(routing="manual")
    chat.agent(A1)
    chat.agent(A2)
    conv = chat.start(C1).conversation_uuid
    assert conv is not None
    chat.clear()
    assert run(chat, "join_conversation", customer(chat, C1), conversation_uuid=conv).status == 403
    joined = run(chat, "join_conversation", agent(), {"participant_language_iso_code": "fr"}, conversation_uuid=conv)
    assert joined.status == 204
    assert EventType.PARTICIPANT_JOIN in [f.event_type for f in chat.take(C1)]
    mine = chat.take(A1)
    assert kinds(mine)[:2] == ["new conversation", "participant join"]
    assert run(chat, "join_conversation", agent(), conversation_uuid=conv).status == 204  # already in: no-op
    assert not chat.take(C1)
    chat.say(C1, conv, "still there?")
    chat.clear()
    second = run(chat, "join_conversation", agent(A2), conversation_uuid=conv)  # joins the first agent
    assert second.status == 204
    assert kinds(chat.take(A2))[:3] == ["new conversation", "participant join", "message"]
    assert of(chat.take(C1), EventType.PARTICIPANT_JOIN) and of(chat.take(A1), EventType.PARTICIPANT_JOIN)
    summary = run(chat, "get_conversation", agent(), conversation_uuid=conv).body
    assert summary is not None
    arns = [p["conversation_participant_arn"] for p in summary["conversation"]["participants"]]
    assert len([arn for arn in arns if "agent" in arn]) == 2
    absent = run(chat, "join_conversation", agent(A3 := 13), conversation_uuid=conv)
    assert (absent.status, code(absent)) == (409, "not_connected"), A3


def test_markread_and_leave_send_the_frames_the_websocket_would() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.say(A1, conv, "Hello there")
    chat.clear()
    assert run(chat, "mark_read_conversation", customer(chat, C1), conversation_uuid=conv).status == 204
    assert kinds(chat.take(A1)) == ["read message", "updated message"]
    assert run(chat, "mark_read_conversation", customer(chat, C1), conversation_uuid=conv).status == 204
    assert not chat.take(A1)  # read already: nothing new
    assert run(chat, "leave_conversation", agent(), conversation_uuid=conv).status == 204
    got = chat.take(C1)
    assert of(got, EventType.PARTICIPANT_LEFT)
    assert of(got, EventType.CONVERSATION_CLOSED)
    again = run(chat, "leave_conversation", agent(), conversation_uuid=conv)
    assert again.status == 409
    closed = run(chat, "get_conversation", customer(chat, C1), conversation_uuid=conv).body
    assert closed is not None
    assert closed["conversation"]["closed"] is True


def test_context_reads_what_the_customer_sent_and_relays_a_rest_update() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    empty = run(chat, "get_conversation_context", agent(), conversation_uuid=conv)
    assert empty.body == {}
    sent = run(
        chat,
        "get_conversation_context",
        customer(chat, C1),
        {"url": "https://shop.example/p", "cart_id": "CART1"},
        conversation_uuid=conv,
    )
    assert sent.status == 200
    assert kinds(chat.take(A1)) == ["webchat context"]
    read = run(chat, "get_conversation_context", agent(), conversation_uuid=conv)
    assert read.body == {"current_url": "https://shop.example/p", "cart": {"cart_id": "CART1"}}
    assert run(chat, "get_conversation_context", agent(), {"url": "x"}, conversation_uuid=conv).status == 403


def test_queue_statuses_and_an_agent_setting_its_status() -> None:
    chat = Chat(routing="manual", queues=("support", "sales"))
    chat.agent(A1)
    chat.start(C1)
    statuses = run(chat, "get_conversation_webchat_queue_statuses", agent()).body
    assert statuses is not None
    support = statuses["queue_statuses"][0]
    assert (support["queue_name"], support["agent_count"], support["customer_waiting_count"]) == ("support", 1, 1)
    only_sales = run(chat, "get_conversation_webchat_queue_statuses", agent(queues=("sales",))).body
    assert only_sales is not None
    assert [q["queue_name"] for q in only_sales["queue_statuses"]] == ["sales"]
    assert run(chat, "get_conversation_webchat_queue_statuses", customer(chat, C1)).status == 403
    op = "update_conversation_webchat_queue_status"
    assert run(chat, op, agent(), {"agent_status": "unavailable"}, queue_name="support").status == 204
    after = run(chat, "get_conversation_webchat_queue_statuses", agent()).body
    assert after is not None
    assert after["queue_statuses"][0]["agent_count"] == 0
    assert run(chat, op, agent(), {"agent_status": "available"}, queue_name="support").status == 204
    assert chat.engine._queues["support"].agents
    assert run(chat, op, agent(), {"agent_status": "busy"}, queue_name="support").status == 204
    busy = run(chat, "get_conversation_webchat_queue_statuses", agent()).body
    assert busy is not None
    assert (busy["queue_statuses"][0]["agent_busy_count"], busy["queue_statuses"][0]["agent_count"]) == (1, 1)
    assert run(chat, op, agent(queues=("sales",)), {"agent_status": "available"}, queue_name="support").status == 404
    assert run(chat, op, agent(), {"agent_status": "available"}, queue_name="nope").status == 404
    assert run(chat, op, agent(), {}, queue_name="support").status == 400


def test_round_robin_hands_a_waiting_customer_to_an_agent_who_becomes_available() -> None:
    chat = Chat(queues=("support", "sales"))
    chat.agent(A1, queues=("sales",))
    chat.start(C1)  # nobody in support
    chat.clear()
    op = "update_conversation_webchat_queue_status"
    assert run(chat, op, agent(), {"agent_status": "available"}, queue_name="support").status == 204
    assert of(chat.take(C1), EventType.PARTICIPANT_JOIN)


def test_canned_messages_keepalive_and_profile() -> None:
    chat = Chat()
    chat.agent(A1)
    canned = run(chat, "get_conversation_canned_messages", agent()).body
    assert canned is not None
    codes = [m["short_code"] for m in canned["conversation_canned_messages"]]
    assert len(codes) == 36 and "fr-order-status" in codes and "de-goodbye" in codes
    found = run(chat, "search_conversation_canned_messages", agent(), {"short_code": "FR-", "max_results": 3}).body
    assert found is not None
    assert [m["short_code"] for m in found["conversation_canned_messages"]] == [
        "fr-greeting",
        "fr-order-status",
        "fr-shipping",
    ]
    assert run(chat, "get_conversation_canned_messages", Caller(role=Role.CUSTOMER)).status == 403
    assert run(chat, "get_agent_keep_alive", agent()).status == 204
    profile = run(chat, "get_agent_profile", agent()).body
    assert profile is not None
    assert profile["agent_profile"]["name"] == "agent-11"
    assert profile["agent_profile"]["user_id"] == A1
    changed = run(
        chat, "update_agent_profile", agent(), {"display_name": "Alice", "default_status": "busy", "user_id": 999}
    )
    assert changed.body is not None
    assert changed.body["agent_profile"]["display_name"] == "Alice"
    assert changed.body["agent_profile"]["user_id"] == A1  # read-only
    again = run(chat, "get_agent_profile", agent()).body
    assert again is not None
    assert again["agent_profile"]["default_status"] == "busy"


# ---------------------------------------------------------------------------
# Bad input: the right status and an ErrorResponse, nothing changed

HUGE = b'{"short_code": "' + b"x" * MAX_BODY_BYTES + b'"}'
BAD_BODIES: list[tuple[str, bytes, int, str]] = [
    (b, raw, status, err)
    for b in (
        "join_conversation",
        "update_conversation_webchat_queue_status",
        "search_conversation_canned_messages",
        "update_agent_profile",
        "get_conversation_context",
    )
    for raw, status, err in (
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_body"),
        (b'"text"', 400, "invalid_body"),
        (b'{"no_such_field": 1}', 400, "unknown_field"),
        (HUGE, 413, "body_too_large"),
    )
] + [
    ("join_conversation", b'{"participant_language_iso_code": 5}', 400, "invalid_type"),
    ("update_conversation_webchat_queue_status", b'{"agent_status": "asleep"}', 400, "invalid_value"),
    ("update_conversation_webchat_queue_status", b'{"agent_status": true}', 400, "invalid_type"),
    ("search_conversation_canned_messages", b'{"max_results": "3"}', 400, "invalid_type"),
    ("search_conversation_canned_messages", b'{"max_results": 0}', 400, "invalid_value"),
    ("search_conversation_canned_messages", b'{"max_results": true}', 400, "invalid_type"),
    ("update_agent_profile", b'{"chat_limit": 1.5}', 400, "invalid_type"),
    ("update_agent_profile", b'{"zohodesk_departments": ["a", 2]}', 400, "invalid_type"),
    ("update_agent_profile", b'{"ai_voice_personality": "Bob"}', 400, "invalid_value"),
    ("get_conversation_context", b'{"url": ["x"]}', 400, "invalid_type"),
]


@pytest.mark.parametrize(("op", "raw", "status", "error_code"), BAD_BODIES)
def test_bad_bodies_are_refused_with_an_error_response(op: str, raw: bytes, status: int, error_code: str) -> None:
    chat = Chat(routing="manual")
    chat.agent(A1)
    conv = chat.start(C1).conversation_uuid
    caller = customer(chat, C1) if op == "get_conversation_context" else agent()
    before = chat.engine.status()
    result = run(chat, op, caller, raw=raw, conversation_uuid=conv, queue_name="support")
    assert (result.status, code(result)) == (status, error_code)
    assert chat.engine.status() == before
    assert chat.engine.agent_profile("agent-11") == {}


@pytest.mark.parametrize(
    ("op", "params"),
    [
        ("get_conversations", {"limit": "ten"}),
        ("get_conversations", {"limit": "0"}),
        ("get_conversations", {"offset": "-1"}),
        ("get_conversations", {"medium": "fax"}),
        ("get_conversations", {"before": "yesterday"}),
        ("get_conversation", {"limit": "x"}),
        ("get_conversation_messages", {"since": "soon"}),
        ("get_conversation_messages", {"since": "0", "limit": "100000"}),
    ],
)
def test_bad_parameters_are_400(op: str, params: dict[str, str]) -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    query: dict[str, Any] = {"conversation_uuid": conv, **params}
    result = run(chat, op, agent(), **query)
    assert result.status == 400


def test_an_unexpected_failure_is_a_500_error_response_not_a_traceback() -> None:
    def broken(*args: Any) -> RestResult:
        raise RuntimeError("boom")

    result = rest.call(Endpoint("GET", "/x", "x", broken), Chat().engine, agent(), {}, None, 0.0)
    assert result.status == 500
    assert result.body is not None
    assert "boom" not in orjson.dumps(result.body).decode()
    sdk(result.body, ErrorResponse)


# ---------------------------------------------------------------------------
# The aiohttp routes, with the SDK's own client


def test_routes_serve_the_sdk_client_over_http() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer
    from ultracart.api.conversation_api import ConversationApi
    from ultracart.configuration import Configuration
    from ultracart.exceptions import ApiException

    chat = Chat()
    conv = engaged_pair(chat)
    chat.say(A1, conv, "Hello from the agent")
    chat.clear()
    sent: list[Any] = []

    def authenticate(request: web.Request) -> Caller:
        key = request.headers.get("x-ultracart-simple-key")
        if key is None:
            raise rest.RestError(401, "unauthorized", "no credentials")
        if key == "expired":
            raise TokenExpired("the token expired")
        if key == "wrong-role":
            raise TokenWrongRole("a customer token cannot be used here")
        if key == "broken":
            raise RuntimeError("secret detail")
        return agent() if key == "agent" else customer(chat, C1)

    def client(key: str, host: str) -> ConversationApi:
        config = Configuration(host=host, api_key={"ultraCartSimpleApiKey": key})
        return ConversationApi(ApiClient(config, header_name="X-UltraCart-Api-Version", header_value="2017-03-01"))

    async def main() -> None:
        app = web.Application()
        app.add_routes(rest.routes(lambda: chat.engine, authenticate, sent.append, clock=lambda: chat.now))
        async with TestServer(app, host="127.0.0.1") as server:
            base = str(server.make_url(rest.PREFIX))
            api = client("agent", base)
            listed = await asyncio.to_thread(api.get_conversations)
            assert [c.conversation_uuid for c in listed.conversations] == [conv]
            messages = await asyncio.to_thread(api.get_conversation_messages, conv, 0)
            assert messages.conversation_messages[-1].body == "Hello from the agent"
            statuses = await asyncio.to_thread(api.get_conversation_webchat_queue_statuses)
            assert statuses.queue_statuses[0].queue_name == "support"
            assert (await asyncio.to_thread(api.get_agent_profile)).agent_profile.name == "agent-11"
            await asyncio.to_thread(client("customer", base).mark_read_conversation, conv)
            with pytest.raises(ApiException) as refused:
                await asyncio.to_thread(client("customer", base).get_conversation_webchat_queue_statuses)
            assert refused.value.status == 403
            session = server.make_url("")
            import aiohttp

            async with aiohttp.ClientSession() as http:
                async with http.get(session.with_path(rest.PREFIX + "/conversation/conversations")) as response:
                    assert response.status == 401
                    sdk(await response.json(), ErrorResponse)
                async with http.get(
                    session.with_path(rest.PREFIX + "/nope"), headers={"x-ultracart-simple-key": "agent"}
                ) as response:
                    assert response.status == 404
                    sdk(await response.json(), ErrorResponse)
                for key, status in (("expired", 401), ("wrong-role", 403), ("broken", 500)):
                    url = session.with_path(rest.PREFIX + "/conversation/conversations")
                    async with http.get(url, headers={"x-ultracart-simple-key": key}) as response:
                        assert response.status == status
                        text = await response.text()
                        assert "secret detail" not in text and "Traceback" not in text
                        sdk(orjson.loads(text), ErrorResponse)
                url = session.with_path(rest.PREFIX + "/conversation/canned_messages/search")
                async with http.post(url, data=HUGE, headers={"x-ultracart-simple-key": "agent"}) as response:
                    assert response.status == 413
                    sdk(await response.json(), ErrorResponse)

    asyncio.run(main())
    assert sent and kinds([d.frame for batch in sent for d in batch]) == ["read message", "updated message"]


def test_through_the_autopilot_hub_its_agents_get_their_frames_and_only_real_connections_are_returned() -> None:
    from simulator.mock.app import MockOptions, build_core
    from simulator.mock.base import Identity
    from simulator.pace import Pace
    from simulator.protocol import decode

    core = build_core(MockOptions(agents=1, seed=7, pace=Pace.FAST))
    now = 1_764_079_525.0
    core.start(now)
    core.connect(C1, Identity(role=Role.CUSTOMER, name="Ann"), now)
    start = {
        "type": "event",
        "event_type": "webchat start conversation",
        "event_engage_customer": {"question": "Where is my order 1234?", "queue_name": "support"},
    }
    out = core.receive(C1, decode(orjson.dumps(start)), now)
    conv = next(d.frame.conversation_uuid for d in out if d.frame.event_type is EventType.NEW_CONVERSATION)
    assert conv is not None
    for _ in range(50):  # let the autopilot answer
        now += 0.5
        core.tick(now)
    engine = rest.engine_of(core)
    ann = Caller(role=Role.CUSTOMER, participant_arn=engine._conns[C1].arn)
    got = rest.call(BY_OP["get_conversation"], core, ann, {"conversation_uuid": conv}, None, now)
    assert got.status == 200
    body = sdk(got.body, ConversationResponse)
    assert body.conversation.message_count >= 2  # the question and the agent's answer
    read = rest.call(BY_OP["mark_read_conversation"], core, ann, {"conversation_uuid": conv}, None, now)
    assert read.status == 204
    assert all(r >= 0 for d in read.deliveries for r in d.recipients)  # the hub kept its agents' frames


def test_the_sdk_client_sends_bodies_the_handlers_accept_and_actions_reach_the_websocket() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer
    from ultracart.api.conversation_api import ConversationApi
    from ultracart.configuration import Configuration
    from ultracart.model.conversation_agent_profile import ConversationAgentProfile
    from ultracart.model.conversation_canned_messages_search import ConversationCannedMessagesSearch
    from ultracart.model.conversation_join_request import ConversationJoinRequest
    from ultracart.model.conversation_webchat_queue_status_update_request import (
        ConversationWebchatQueueStatusUpdateRequest,
    )

    chat = Chat(routing="manual")
    chat.agent(A1)
    conv = chat.start(C1).conversation_uuid
    assert conv is not None
    chat.clear()
    sent: list[Any] = []

    async def main() -> None:
        app = web.Application()
        app.add_routes(rest.routes(lambda: chat.engine, lambda request: agent(), sent.append, clock=lambda: chat.now))
        async with TestServer(app, host="127.0.0.1") as server:
            api = ConversationApi(ApiClient(Configuration(host=str(server.make_url(rest.PREFIX)))))
            await asyncio.to_thread(
                api.join_conversation, conv, join_request=ConversationJoinRequest(participant_language_iso_code="en")
            )
            context = await asyncio.to_thread(api.get_conversation_context, conv)
            assert context.to_dict() == {}
            found = await asyncio.to_thread(
                api.search_conversation_canned_messages,
                ConversationCannedMessagesSearch(short_code="es-", max_results=2),
            )
            assert [m.short_code for m in found.conversation_canned_messages] == ["es-greeting", "es-order-status"]
            profile = await asyncio.to_thread(
                api.update_agent_profile, ConversationAgentProfile(display_name="Alice", default_status="available")
            )
            assert profile.agent_profile.display_name == "Alice"
            await asyncio.to_thread(
                api.update_conversation_webchat_queue_status,
                "support",
                ConversationWebchatQueueStatusUpdateRequest(agent_status="available"),
            )
            await asyncio.to_thread(api.get_agent_keep_alive)
            await asyncio.to_thread(api.leave_conversation, conv)

    asyncio.run(main())
    frames = [d.frame for batch in sent for d in batch]
    chat.deliver([d for batch in sent for d in batch])
    assert "participant join" in kinds(frames)
    assert "participant left" in kinds(frames) and "conversation closed" in kinds(frames)
    assert of(chat.take(C1), EventType.CONVERSATION_CLOSED)


@pytest.mark.parametrize("action", ["join", "markread", "leave"])
def test_a_rest_action_sends_byte_for_byte_the_frames_of_its_websocket_frame(action: str) -> None:
    from simulator.protocol import encode

    def setup() -> tuple[Chat, str]:
        chat = Chat(routing="manual")
        chat.agent(A1)
        conv = chat.start(C1).conversation_uuid
        assert conv is not None
        if action != "join":
            chat.engage(A1, queue_uuid_of(chat, C1))
            chat.now += 1
            chat.say(A1, conv, "Hello")
        chat.clear()
        chat.log.clear()
        return chat, conv

    by_frame, conv = setup()
    if action == "join":
        by_frame.engage(A1, queue_uuid_of(by_frame, C1))
    elif action == "markread":
        message = by_frame.engine._conversations[conv].messages[-1].model.conversation_message_uuid
        by_frame.send(C1, event("read message", conv, event_read_message={"conversation_message_uuid": message}))
    else:
        by_frame.send(A1, event("participant left", conv))
    by_rest, same = setup()
    assert same == conv
    op = {"join": "join_conversation", "markread": "mark_read_conversation", "leave": "leave_conversation"}[action]
    caller = customer(by_rest, C1) if action == "markread" else agent()
    result = run(by_rest, op, caller, conversation_uuid=conv)
    assert result.status == 204
    assert by_frame.log and by_rest.log == by_frame.log
    assert [encode(d.frame) for d in result.deliveries] == by_frame.log


def test_an_outsiders_actions_are_404_and_change_nothing() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.say(A1, conv, "Hello")
    chat.start(C2)
    chat.clear()
    stranger = customer(chat, C2)
    before = (chat.engine.status(), orjson.dumps(chat.engine._conversations[conv].summary().model_dump()))
    for op, body in (
        ("mark_read_conversation", None),
        ("leave_conversation", None),
        ("get_conversation_context", {"url": "https://evil.example"}),
        ("get_conversation_messages", None),
    ):
        result = run(chat, op, stranger, body, conversation_uuid=conv, since=0)
        assert (result.status, code(result)) == (404, "conversation_not_found"), op
    assert (chat.engine.status(), orjson.dumps(chat.engine._conversations[conv].summary().model_dump())) == before
    assert not chat.inbox


def test_the_rate_limiter_refills_per_caller() -> None:
    from simulator.mock.rest import RateLimiter

    limiter = RateLimiter(rate=2, burst=2)
    assert [limiter.allow(agent(), 0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow(agent(A2), 0.0)  # another caller has its own bucket
    assert limiter.allow(agent(), 0.5)
    assert not limiter.allow(agent(), 0.5)


def test_routes_answer_429_over_the_rate() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from simulator.mock.rest import RateLimiter

    chat = Chat()
    chat.agent(A1)

    async def main() -> list[int]:
        app = web.Application()
        limiter = RateLimiter(rate=0.001, burst=2)
        app.add_routes(rest.routes(lambda: chat.engine, lambda request: agent(), limiter=limiter))
        async with TestClient(TestServer(app, host="127.0.0.1")) as http:
            statuses = []
            for _ in range(3):
                response = await http.get(rest.PREFIX + "/conversation/agent/keepalive")
                statuses.append(response.status)
                if response.status == 429:
                    sdk(await response.json(), ErrorResponse)
            return statuses

    assert asyncio.run(main()) == [204, 204, 429]
