"""UltraCart's REST conversation API (``/rest/v2``) over the engine, sans I/O,
plus the ``aiohttp`` route table that serves it.

Each endpoint is a plain function ``(core, caller, params, body, now) ->``
:class:`~.rest_models.RestResult`: the core (an
:class:`~simulator.mock.engine.Engine`, or the autopilot hub around one), the
:class:`~.rest_models.Caller`, the path and query parameters as strings, the
raw request body (``None``: none) and ``now``. It returns the HTTP status,
the response JSON shaped as the SDK's model (``ConversationsResponse``,
``ConversationResponse``, …; ``None`` for the SDK's bodiless operations,
answered 204) and the websocket deliveries the call produced, for the shell
to send. :data:`ENDPOINTS` lists them; :func:`routes` mounts them.

Access (the websocket's rule): a customer sees only its own conversations,
an agent those of its queues (``Caller.queues``, empty: all) and the ones it
is or was in; any other conversation answers 404 exactly as one that does
not exist. Agent-only endpoints answer 403 to customers. Actions (join,
leave, markread, context, queue status) go through the engine as the
corresponding frame would (:meth:`~.queries.QueriesMixin.act`), so the other
participants get the same frames; they need the caller's participant in the
engine (an agent signed in on the websocket, or within its reconnect grace;
a customer who started a chat), else 409 ``not_connected``.

Errors are UltraCart's ``ErrorResponse``: 400 bad parameters or body (see
:func:`~.rest_models.parse_body` for the policy; unknown fields are
refused), 401 from ``authenticate``, 403 wrong role, 404 unknown or not
yours, 409 state conflicts, 413 huge bodies; never a traceback (an
unexpected exception is logged and answered 500 ``internal_error``).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from ..errors import AccessDenied
from ..protocol import AgentStatus, EventType, Frame, FrameType, Medium
from .base import Delivery
from .conversation import Client, Conversation, Role, State
from .engine import Engine
from .rest_canned import (
    delete_canned_message,
    get_canned_messages,
    insert_canned_message,
    search_canned_messages,
    update_canned_message,
)
from .rest_models import (
    MAX_BODY_BYTES,
    BodySpec,
    Caller,
    Field,
    RateLimiter,
    RestError,
    RestResult,
    agent_only,
    caller_arn,
    client_of,
    engine_of,
    epoch_param,
    from_refusal,
    int_param,
    ok,
    parse_body,
    wire,
)
from .rest_search import search_conversations
from .rules import LIMITS, Refused

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["ENDPOINTS", "PREFIX", "Caller", "Endpoint", "RateLimiter", "RestError", "RestResult", "call", "routes"]

log = logging.getLogger("webchat_sim")

PREFIX = "/rest/v2"
Params = Mapping[str, str]
Handler = Callable[[Any, Caller, Params, "bytes | None", float], RestResult]

_NO_CONTENT = RestResult(204, None)
_STR = Field((str,), max_length=LIMITS.text)
_NAME = Field((str,), max_length=LIMITS.name)
_ID = Field((str,), max_length=LIMITS.identifier)
_URL = Field((str,), max_length=LIMITS.url)
_LANGUAGE = Field((str,), max_length=LIMITS.language)


# ---------------------------------------------------------------------------
# The core, the caller and its conversation


def _settle(core: Any, deliveries: list[Delivery], now: float) -> list[Delivery]:
    """Deliveries the engine produced, routed through an autopilot hub if
    ``core`` is one (its agents get theirs and may answer): what remains is
    for real connections."""
    route = getattr(core, "_route", None)
    run = getattr(core, "_run", None)
    if route is None or run is None:
        return deliveries
    routed: list[Delivery] = route(deliveries, now) + run(now)
    return routed


def _need_client(engine: Engine, caller: Caller) -> Client:
    client = client_of(engine, caller)
    if client is None:
        raise RestError(409, "not_connected", "sign in on the websocket first: the engine does not know you yet")
    return client


def _conversation(engine: Engine, caller: Caller, params: Params) -> Conversation:
    uuid = params.get("conversation_uuid", "")
    arn = caller_arn(engine, caller)
    conv = engine.visible_conversation(uuid, caller.role, arn=arn, name=caller.name, queues=caller.queues)
    if conv is None:  # alike whether it does not exist or is not the caller's
        raise RestError(404, "conversation_not_found", f"no conversation {uuid[:80]!r}", object_id=uuid[:200] or None)
    return conv


def _act(core: Any, client: Client, frame: Frame, now: float) -> list[Delivery]:
    try:
        deliveries = engine_of(core).act(client, frame, now)
    except Refused as refusal:
        raise from_refusal(refusal) from None
    return _settle(core, deliveries, now)


def _conversation_json(conv: Conversation, limit: int) -> dict[str, Any]:
    data = wire(conv.summary())
    data["messages"] = [wire(m.model) for m in conv.messages[-limit:]] if limit else []
    return data


def _page(total: int, offset: int, limit: int, count: int) -> dict[str, Any]:
    more = offset + count < total
    page: dict[str, Any] = {"count": count, "limit": limit, "more": more, "offset": offset, "total_records": total}
    if more:
        page["next_offset"] = offset + count
    return page


# ---------------------------------------------------------------------------
# Conversations


def get_conversations(core: Any, caller: Caller, params: Params, body: bytes | None, now: float) -> RestResult:
    """``GET /conversation/conversations`` → ``ConversationsResponse``, newest activity first."""
    engine = engine_of(core)
    medium = params.get("medium") or None
    if medium is not None and medium not in {m.value for m in Medium}:
        raise RestError(400, "invalid_value", f"medium: must be one of sms, websocket, got {medium[:40]!r}")
    limit = int_param("limit", params.get("limit"), default=25, low=1, high=200)
    offset = int_param("offset", params.get("offset"), default=0, low=0, high=10**9)
    before_ms: int | None = None
    if before := params.get("before"):
        before_ms = epoch_param("before", before)
    arn = caller_arn(engine, caller)
    found = (
        []
        if medium == Medium.SMS
        else engine.visible_conversations(caller.role, arn=arn, name=caller.name, queues=caller.queues)
    )
    if before_ms is not None:
        found = [c for c in found if (c.last_epoch or c.start_ms) < before_ms]
    page = found[offset : offset + limit]
    body_json = ok(
        {"conversations": [wire(c.summary()) for c in page]}, result_set=_page(len(found), offset, limit, len(page))
    )
    return RestResult(200, body_json)


def get_conversation(core: Any, caller: Caller, params: Params, body: bytes | None, now: float) -> RestResult:
    """``GET /conversation/conversations/{conversation_uuid}`` → ``ConversationResponse``
    (with its latest ``limit`` messages, 200 by default)."""
    conv = _conversation(engine_of(core), caller, params)
    limit = int_param("limit", params.get("limit"), default=200, low=0, high=10_000)
    return RestResult(200, ok({"conversation": _conversation_json(conv, limit)}))


def get_conversation_messages(core: Any, caller: Caller, params: Params, body: bytes | None, now: float) -> RestResult:
    """``GET …/{conversation_uuid}/messages/{since}`` → ``ConversationMessagesResponse``:
    the messages with ``message_epoch`` > ``since``, oldest first, at most ``limit`` (100)."""
    since = int_param("since", params.get("since"), default=0, low=0, high=2**63 - 1)
    limit = int_param("limit", params.get("limit"), default=100, low=1, high=1_000)
    conv = _conversation(engine_of(core), caller, params)
    newer = [m for m in conv.messages if m.epoch > since]
    page = newer[:limit]
    return RestResult(
        200,
        ok({"conversation_messages": [wire(m.model) for m in page]}, result_set=_page(len(newer), 0, limit, len(page))),
    )


JOIN_REQUEST: BodySpec = {"participant_language_iso_code": _LANGUAGE}


def join_conversation(core: Any, caller: Caller, params: Params, body: bytes | None, now: float) -> RestResult:
    """``PUT …/{conversation_uuid}/join`` (``ConversationJoinRequest``): the
    agent engages the waiting customer, as ``engage customer`` does, or joins
    the agent(s) already with the customer (``participant join`` to everyone,
    the history to it); 204. Already in it: 204, nothing happens. Closed, or
    at its chat limit: 409."""
    agent_only(caller)
    request = parse_body(body, JOIN_REQUEST)
    engine = engine_of(core)
    conv = _conversation(engine, caller, params)
    agent = _need_client(engine, caller)
    member = conv.members.get(agent)
    if member is not None and member.present and conv.state is not State.CLOSED:
        return _NO_CONTENT
    if conv.state is State.CLOSED:
        raise RestError(409, "conversation_closed", "that conversation is closed", object_id=conv.uuid)
    if language := request.get("participant_language_iso_code"):
        agent.language = language
    if conv.state is State.ENGAGED:  # another agent is with the customer: join them
        try:
            deliveries = engine_of(core).join_engaged(conv, agent, now)
        except Refused as refusal:
            raise from_refusal(refusal) from None
        return RestResult(204, None, _settle(core, deliveries, now))
    frame = Frame.model_validate(
        {
            "type": "event",
            "event_type": "engage customer",
            "event_engage_customer": {"conversation_webchat_queue_uuid": conv.queue_uuid},
        }
    )
    return RestResult(204, None, _act(core, agent, frame, now))


def leave_conversation(core: Any, caller: Caller, params: Params, body: bytes | None, now: float) -> RestResult:
    """``DELETE …/{conversation_uuid}/leave``: ``participant left``, as the frame; 204."""
    engine = engine_of(core)
    conv = _conversation(engine, caller, params)
    client = _need_client(engine, caller)
    frame = Frame(type=FrameType.EVENT, event_type=EventType.PARTICIPANT_LEFT, conversation_uuid=conv.uuid)
    return RestResult(204, None, _act(core, client, frame, now))


def mark_read_conversation(core: Any, caller: Caller, params: Params, body: bytes | None, now: float) -> RestResult:
    """``PUT …/{conversation_uuid}/markread``: ``read message`` of the latest
    message the caller did not write (everything before counts as read); 204."""
    engine = engine_of(core)
    conv = _conversation(engine, caller, params)
    client = _need_client(engine, caller)
    member = conv.members.get(client)
    if member is None or not member.present:
        raise RestError(409, "not_a_participant", "you are not in that conversation", object_id=conv.uuid)
    latest = next((m for m in reversed(conv.messages) if m.author is not member), None)
    if latest is None and conv.state is not State.CLOSED:
        return _NO_CONTENT  # nothing by others to read
    frame = Frame.model_validate(
        {
            "type": "event",
            "event_type": "read message",
            "conversation_uuid": conv.uuid,
            "event_read_message": {
                "conversation_message_uuid": latest.model.conversation_message_uuid if latest else ""
            },
        }
    )
    return RestResult(204, None, _act(core, client, frame, now))


CONTEXT_REQUEST: BodySpec = {"url": _URL, "cart_id": _ID, "ucacid": _ID}


def get_conversation_context(core: Any, caller: Caller, params: Params, body: bytes | None, now: float) -> RestResult:
    """``PUT …/{conversation_uuid}/context`` → ``ConversationWebchatContext``:
    the page context the customer last sent (``current_url``, ``cart.cart_id``).
    The SDK sends no body; as a mock extension a customer may send
    ``{"url", "cart_id", "ucacid"}``, relayed to the agents as ``webchat context`` is."""
    request = parse_body(body, CONTEXT_REQUEST)
    engine = engine_of(core)
    conv = _conversation(engine, caller, params)
    deliveries: list[Delivery] = []
    if request:
        if caller.role is not Role.CUSTOMER:
            raise RestError(403, "forbidden_for_role", "only the customer sets its webchat context")
        client = _need_client(engine, caller)
        frame = Frame.model_validate(
            {
                "type": "event",
                "event_type": "webchat context",
                "conversation_uuid": conv.uuid,
                "event_webchat_context": request,
            }
        )
        deliveries = _act(core, client, frame, now)
    context: dict[str, Any] = {}
    if conv.context is not None:
        if conv.context.url:
            context["current_url"] = conv.context.url
        if conv.context.cart_id:
            context["cart"] = {"cart_id": conv.context.cart_id}
    return RestResult(200, context, deliveries)


START_REQUEST: BodySpec = {
    "add_conversation_participant_arns": Field((list,), items=str, max_length=LIMITS.identifier),
    "conversation_arn": _ID,
    "conversation_webchat_queue_uuid": _ID,
    "resolve_only": Field((bool,)),
    # mock extensions (a customer starting a chat; the SDK sends neither)
    "queue_name": Field((str,), max_length=LIMITS.queue_name),
    "question": _STR,
}


def _newest_open(convs: Sequence[Conversation]) -> Conversation | None:
    return next((c for c in convs if c.state is not State.CLOSED), None)


def start_conversation(core: Any, caller: Caller, params: Params, body: bytes | None, now: float) -> RestResult:
    """``PUT /conversation/conversations`` (``ConversationStartRequest``) →
    ``ConversationStartResponse`` (``{"conversation": …}``, its latest 200 messages).

    * ``conversation_arn``: that conversation, if the caller may see it (else
      404); an agent who is not in it joins it (as ``join``) unless ``resolve_only``.
    * An agent with ``add_conversation_participant_arns``: the open
      conversation of one of those customers that it may see, joined as
      above; none: 404 with ``resolve_only``, else 409 (the mock does not
      start outbound conversations: customers start chats).
    * A customer (connected on the websocket): ``resolve_only``, its newest
      open conversation (404: none); otherwise a new chat in the queue
      ``queue_name`` (or ``conversation_webchat_queue_uuid``, which names a
      queue here; default: the first queue) with ``question``, exactly as
      ``webchat start conversation`` on the websocket (its frames go there)."""
    request = parse_body(body, START_REQUEST)
    engine = engine_of(core)
    resolve_only = bool(request.get("resolve_only"))
    deliveries: list[Delivery] = []
    conv: Conversation | None = None
    if arn := request.get("conversation_arn"):
        uuid = arn.replace(":", "/").rsplit("/", 1)[-1]
        conv = _conversation(engine, caller, {"conversation_uuid": uuid})
        if conv.arn != arn:
            raise RestError(404, "conversation_not_found", f"no conversation {arn[:80]!r}", object_id=arn[:200])
    elif caller.role is Role.AGENT:
        wanted = set(request.get("add_conversation_participant_arns", ()))
        if not wanted:
            raise RestError(400, "missing_field", "conversation_arn or add_conversation_participant_arns: required")
        found = engine.visible_conversations(
            Role.AGENT, arn=caller.participant_arn, name=caller.name, queues=caller.queues
        )
        conv = _newest_open([c for c in found if c.customer.arn in wanted])
        if conv is None:
            if resolve_only:
                raise RestError(404, "conversation_not_found", "none of those participants has an open conversation")
            raise RestError(
                409, "outbound_not_supported", "the mock does not start outbound conversations: customers start chats"
            )
    else:
        if request.get("add_conversation_participant_arns"):
            raise RestError(403, "forbidden_for_role", "add_conversation_participant_arns: for agents")
        client = _need_client(engine, caller)
        if resolve_only:
            mine = engine.visible_conversations(Role.CUSTOMER, arn=client.arn, name=None, queues=())
            conv = _newest_open(mine)
            if conv is None:
                raise RestError(404, "conversation_not_found", "you have no open conversation")
        else:
            start: dict[str, Any] = {"participant_language_iso_code": client.language}
            queue = request.get("queue_name") or request.get("conversation_webchat_queue_uuid")
            for key, value in (("queue_name", queue), ("question", request.get("question"))):
                if value:
                    start[key] = value
            frame = Frame.model_validate(
                {
                    "type": "event",
                    "event_type": EventType.WEBCHAT_START_CONVERSATION.value,
                    "event_engage_customer": start,
                }
            )
            deliveries = _act(core, client, frame, now)
            conv = max(client.conversations.values(), key=lambda c: c.seq)
    if caller.role is Role.AGENT and not resolve_only and conv.state is not State.CLOSED:
        agent = _need_client(engine, caller)
        member = conv.members.get(agent)
        if member is None or not member.present:
            joined = join_conversation(core, caller, {"conversation_uuid": conv.uuid}, None, now)
            deliveries = joined.deliveries
    return RestResult(200, {"conversation": _conversation_json(conv, 200)}, deliveries)


# ---------------------------------------------------------------------------
# Queues


def get_queue_statuses(core: Any, caller: Caller, params: Params, body: bytes | None, now: float) -> RestResult:
    """``GET /conversation/conversations/queues/statuses`` → ``ConversationWebchatQueueStatusesResponse``
    (the caller's queues)."""
    agent_only(caller)
    statuses = engine_of(core).queue_statuses(caller.queues)
    return RestResult(200, ok({"queue_statuses": [wire(s) for s in statuses]}))


STATUS_REQUEST: BodySpec = {
    "agent_status": Field((str,), frozenset(AgentStatus)),
    "custom_status_name": _NAME,
    "custom_status_uuid": _ID,
}


def update_queue_status(core: Any, caller: Caller, params: Params, body: bytes | None, now: float) -> RestResult:
    """``PUT /conversation/conversations/queues/{queue_name}/status``
    (``ConversationWebchatQueueStatusUpdateRequest``): ``available`` logs the
    agent in to the queue, ``busy`` too but routes it no new chats (the agent's
    flag, for all its queues, until it is ``available`` again),
    ``unavailable`` logs it out of the queue; 204."""
    agent_only(caller)
    request = parse_body(body, STATUS_REQUEST)
    engine = engine_of(core)
    queue_name = params.get("queue_name", "")
    if queue_name not in engine.queues_of(caller.queues):
        raise RestError(404, "unknown_queue", f"no queue {queue_name[:80]!r}", object_id=queue_name[:200] or None)
    if "agent_status" not in request:
        raise RestError(400, "missing_field", "agent_status: required")
    agent = _need_client(engine, caller)
    try:
        deliveries = engine.set_queue_status(agent, queue_name, AgentStatus(request["agent_status"]), now)
    except Refused as refusal:
        raise from_refusal(refusal) from None
    return RestResult(204, None, _settle(core, deliveries, now))


# ---------------------------------------------------------------------------
# Canned messages, the agent


def get_agent_keep_alive(core: Any, caller: Caller, params: Params, body: bytes | None, now: float) -> RestResult:
    """``GET /conversation/agent/keepalive``: 204 for an agent."""
    agent_only(caller)
    return _NO_CONTENT


_LIST_OF_STR = Field((list,), items=str, max_length=LIMITS.name)
PROFILE_REQUEST: BodySpec = {
    "ai": Field((bool,)),
    "ai_capabilities": Field((dict,)),
    "ai_chat_instructions": _STR,
    "ai_persona": _STR,
    "ai_sms_instructions": _STR,
    "ai_ticket_instructions": _STR,
    "ai_voice_instructions": _STR,
    "ai_voice_personality": Field((str,), frozenset({"Ara", "Rex", "Sal", "Eve", "Leo"})),
    "chat_limit": Field((int,), bounds=(1, 100)),
    "default_language_iso_code": _LANGUAGE,
    "default_status": Field((str,), frozenset(AgentStatus)),
    "display_name": _NAME,
    "name": _NAME,
    "profile_image_upload_key": _ID,
    "profile_image_url": _URL,
    "user_id": Field((int,)),
    "zohodesk_classifications": _LIST_OF_STR,
    "zohodesk_departments": _LIST_OF_STR,
}
_READ_ONLY = ("user_id", "profile_image_url")


def _profile(engine: Engine, caller: Caller) -> dict[str, Any]:
    name = caller.name or "Agent"
    client = engine.agent_named(name)
    profile: dict[str, Any] = {
        "ai": False,
        "chat_limit": engine.config.max_chats_per_agent,
        "default_language_iso_code": (client.language if client is not None else None) or "en",
        "default_status": AgentStatus.AVAILABLE.value,
        "display_name": name,
        "name": name,
    }
    if caller.user_id is not None:
        profile["user_id"] = caller.user_id
    profile.update(engine.agent_profile(name))
    return profile


def get_agent_profile(core: Any, caller: Caller, params: Params, body: bytes | None, now: float) -> RestResult:
    """``GET /conversation/agent/profile`` → ``ConversationAgentProfileResponse``."""
    agent_only(caller)
    return RestResult(200, ok({"agent_profile": _profile(engine_of(core), caller)}))


def update_agent_profile(core: Any, caller: Caller, params: Params, body: bytes | None, now: float) -> RestResult:
    """``PUT /conversation/agent/profile`` (``ConversationAgentProfile``) →
    ``ConversationAgentProfileResponse``: the fields are kept per agent and
    reported back (``user_id`` and ``profile_image_url`` are read-only);
    ``chat_limit`` is the agent's own chat limit from then on (instead of
    ``--max-chats-per-agent``): routing and ``busy`` follow it."""
    agent_only(caller)
    request = parse_body(body, PROFILE_REQUEST)
    engine = engine_of(core)
    fields = {k: v for k, v in request.items() if k not in _READ_ONLY}
    deliveries = engine.update_agent_profile(caller.name or "Agent", fields, now)
    return RestResult(200, ok({"agent_profile": _profile(engine, caller)}), _settle(core, deliveries, now))


# ---------------------------------------------------------------------------
# The table and the aiohttp routes


class Endpoint(NamedTuple):
    """One REST operation: method, path under :data:`PREFIX`, the SDK's operation id, the handler."""

    method: str
    path: str
    operation_id: str
    handler: Handler


_C = "/conversation/conversations"
_CM = "/conversation/canned_messages"
ENDPOINTS: Sequence[Endpoint] = (
    Endpoint("GET", "/conversation/agent/keepalive", "get_agent_keep_alive", get_agent_keep_alive),
    Endpoint("GET", "/conversation/agent/profile", "get_agent_profile", get_agent_profile),
    Endpoint("PUT", "/conversation/agent/profile", "update_agent_profile", update_agent_profile),
    Endpoint("GET", "/conversation/canned_messages", "get_conversation_canned_messages", get_canned_messages),
    Endpoint(
        "POST", "/conversation/canned_messages/search", "search_conversation_canned_messages", search_canned_messages
    ),
    Endpoint("POST", "/conversation/canned_messages", "insert_conversation_canned_message", insert_canned_message),
    Endpoint(
        "PUT", f"{_CM}/{{conversation_canned_message_oid}}", "update_conversation_canned_message", update_canned_message
    ),
    Endpoint(
        "DELETE",
        f"{_CM}/{{conversation_canned_message_oid}}",
        "delete_conversation_canned_message",
        delete_canned_message,
    ),
    Endpoint("GET", f"{_C}/queues/statuses", "get_conversation_webchat_queue_statuses", get_queue_statuses),
    Endpoint(
        "PUT", f"{_C}/queues/{{queue_name}}/status", "update_conversation_webchat_queue_status", update_queue_status
    ),
    Endpoint("GET", _C, "get_conversations", get_conversations),
    Endpoint("PUT", _C, "start_conversation", start_conversation),
    Endpoint("POST", f"{_C}/search", "get_conversations_search", search_conversations),
    Endpoint("GET", f"{_C}/{{conversation_uuid}}", "get_conversation", get_conversation),
    Endpoint(
        "GET", f"{_C}/{{conversation_uuid}}/messages/{{since}}", "get_conversation_messages", get_conversation_messages
    ),
    Endpoint("PUT", f"{_C}/{{conversation_uuid}}/join", "join_conversation", join_conversation),
    Endpoint("DELETE", f"{_C}/{{conversation_uuid}}/leave", "leave_conversation", leave_conversation),
    Endpoint("PUT", f"{_C}/{{conversation_uuid}}/markread", "mark_read_conversation", mark_read_conversation),
    Endpoint("PUT", f"{_C}/{{conversation_uuid}}/context", "get_conversation_context", get_conversation_context),
)
"""Every operation served, in the SDK's terms."""


def call(endpoint: Endpoint, core: Any, caller: Caller, params: Params, body: bytes | None, now: float) -> RestResult:
    """Run one endpoint; a :class:`RestError` (or anything unexpected: logged,
    500) becomes its ``ErrorResponse``."""
    try:
        return endpoint.handler(core, caller, params, body, now)
    except RestError as error:
        return error.result()
    except Exception:
        log.exception("REST %s %s failed", endpoint.method, endpoint.path)
        return RestError(500, "internal_error", "the mock failed to handle this request").result()


Authenticate = Callable[["web.Request"], "Caller | Awaitable[Caller]"]
"""Maps a request to its :class:`Caller` (sync or async), or raises
:class:`RestError` (any status) or :class:`~simulator.errors.AccessDenied`
(its ``status``, 401/403/429, and ``reason`` are answered)."""


def routes(
    core_provider: Callable[[], Any],
    authenticate: Authenticate,
    deliver: Callable[[list[Delivery]], Awaitable[None] | None] | None = None,
    *,
    prefix: str = PREFIX,
    clock: Callable[[], float] = time.time,
    catch_all: bool = True,
    limiter: RateLimiter | None = None,
) -> web.RouteTableDef:
    """The aiohttp routes of :data:`ENDPOINTS` under ``prefix`` (``""`` to
    mount them in a sub-application at ``/rest/v2``), plus, with
    ``catch_all``, a JSON 404 ``ErrorResponse`` for any other path under it.
    ``deliver`` gets each call's websocket deliveries (the shell sends them,
    then re-arms its tick timer: the engine's next deadline may be earlier).
    With a ``limiter``, a caller over its rate gets 429 ``too_many_requests``."""
    from aiohttp import web

    table = web.RouteTableDef()

    def respond(result: RestResult) -> web.Response:
        if result.body is None:
            return web.Response(status=result.status)
        return web.Response(status=result.status, body=orjson.dumps(result.body), content_type="application/json")

    def make(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            try:
                identity = authenticate(request)
                caller = await identity if inspect.isawaitable(identity) else identity
                if limiter is not None and not limiter.allow(caller, clock()):
                    raise RestError(429, "too_many_requests", f"more than {limiter.rate:g} calls a second")
                length = request.content_length
                if length is not None and length > MAX_BODY_BYTES:
                    raise RestError(413, "body_too_large", f"request body of {length} bytes, limit {MAX_BODY_BYTES}")
                raw = await request.content.read(MAX_BODY_BYTES + 1) if request.body_exists else None
            except RestError as error:
                return respond(error.result())
            except AccessDenied as denied:  # the front door's refusals (bad, expired, wrong-role tokens)
                status = denied.status if denied.status in (401, 403, 429) else 401
                code = {401: "unauthorized", 403: "forbidden", 429: "too_many_requests"}[status]
                return respond(RestError(status, code, denied.reason).result())
            except Exception:
                log.exception("REST authentication of %s %s failed", request.method, request.path[:120])
                return respond(
                    RestError(500, "internal_error", "the mock failed to authenticate this request").result()
                )
            params = {**request.query, **request.match_info}
            result = call(endpoint, core_provider(), caller, params, raw, clock())
            if deliver is not None:  # also without deliveries: a coalesced update may be due (the timer re-arms)
                committed = deliver(result.deliveries)
                if committed is not None:  # with storage: answered once stored
                    await committed
            return respond(result)

        return handle

    for endpoint in ENDPOINTS:
        table.route(endpoint.method, prefix + endpoint.path)(make(endpoint))

    if catch_all:

        @table.route("*", prefix + "/{tail:.*}")
        async def not_found(request: web.Request) -> web.Response:
            message = f"no endpoint {request.method} {request.path[:120]}"
            return respond(RestError(404, "not_found", message).result())

    return table
