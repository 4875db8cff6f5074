"""AsyncAPI 3.0 document of the conversation websocket (``webchat-sim schema --asyncapi``).

The application it describes is the mock server: one channel, the websocket
``/ws`` (its handshake's query string and ``Authorization`` header as a
``ws`` channel binding, the JWT as security schemes); one message per frame
kind and direction, every ``type`` and every ``event_type`` (docs/protocol.md,
section 2.4); the operation ``receiveClientFrames`` (action ``receive``: what
clients may send, the engine's accept table ``simulator.mock.rules.RULES``)
and ``sendServerFrames`` (action ``send``: what the server sends, error frames
included).

The payloads come from the same models as the JSON Schema of
:func:`~simulator.protocol.schema.json_schema`: its envelope and every model
under ``$defs`` become ``components.schemas`` (references rewritten), and each
message's payload is ``allOf`` the envelope and a narrowing that pins ``type``
(and ``event_type``) to the kind's constants and requires what the codec (and,
for client frames, the engine) requires of that kind.

This module is shared: it imports neither wing; the tests check its tables
against ``RULES`` and against the frames the engine sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .. import __version__
from .codec import CONVERSATION_EVENTS, EVENT_PAYLOADS
from .enums import EventType, FrameType
from .schema import json_schema

__all__ = [
    "ASYNCAPI_VERSION",
    "CHANNEL",
    "CLIENT_KINDS",
    "DEFAULT_SERVER",
    "ENVELOPE",
    "SERVER_KINDS",
    "FrameKind",
    "asyncapi_document",
    "message_key",
]

ASYNCAPI_VERSION = "3.0.0"
CHANNEL = "conversation"
"""The channel's key under ``channels``."""
ENVELOPE = "ConversationWebsocketMessage"
"""The envelope's key under ``components.schemas``."""
DEFAULT_SERVER = ("127.0.0.1", 8765)
"""``webchat-sim serve``'s default address."""

_CUSTOMER, _AGENT = "customer", "agent"
_BOTH = (_CUSTOMER, _AGENT)


class FrameKind(NamedTuple):
    """One kind of frame in one direction."""

    type: FrameType
    event_type: EventType | None
    """``None`` for frames that are not events, and for error frames."""
    summary: str
    senders: tuple[str, ...] = ()
    """Client frames: the roles that may send it (``customer``, ``agent``)."""
    row: int | None = None
    """Client frames: its row in docs/protocol.md, section 3."""
    error: bool = False
    """The error frame: ``type`` ``event``, no ``event_type``, an ``error`` key."""


_E = FrameType.EVENT
_EV = EventType

CLIENT_KINDS: tuple[FrameKind, ...] = (
    FrameKind(_E, _EV.WEBCHAT_START_CONVERSATION, "Start a chat (answered with new conversation)", (_CUSTOMER,), 1),
    FrameKind(FrameType.CHECK_QUEUE_POSITION, None, "Ask for the customer's place in the queue", _BOTH, 2),
    FrameKind(_E, _EV.ENGAGE_CUSTOMER, "Take a waiting customer (manual routing)", (_AGENT,), 3),
    FrameKind(FrameType.MESSAGE, None, "Send a chat message", _BOTH, 4),
    FrameKind(_E, _EV.TYPING, "The text typed so far (empty: stopped)", _BOTH, 5),
    FrameKind(_E, _EV.READ_MESSAGE, "A read receipt", _BOTH, 6),
    FrameKind(_E, _EV.ADD_COUPON, "Offer the customer a coupon code", (_AGENT,), 7),
    FrameKind(_E, _EV.ADD_ITEM, "Put items in the customer's cart", (_AGENT,), 7),
    FrameKind(_E, _EV.WEBCHAT_CONTEXT, "The page the customer is on", (_CUSTOMER,), 8),
    FrameKind(_E, _EV.RRWEB, "One part of a session recording", (_CUSTOMER,), 9),
    FrameKind(_E, _EV.CONVERSATION_CLOSED, "Close the conversation", _BOTH, 10),
    FrameKind(_E, _EV.PARTICIPANT_LEFT, "Leave the conversation", _BOTH, 11),
    FrameKind(FrameType.PING, None, 'Application-level ping (answered with {"type": "ping"})', _BOTH, 13),
)
"""What clients may send (docs/protocol.md, sections 2.4 and 3); anything else
is refused with ``unsupported_frame``."""

SERVER_KINDS: tuple[FrameKind, ...] = (
    FrameKind(FrameType.MESSAGE, None, "A chat message (the sender's copy is its acknowledgement)"),
    FrameKind(FrameType.PING, None, "The answer to a ping"),
    FrameKind(_E, _EV.QUEUE_POSITION, "The customer's place in the queue (asked or pushed)"),
    FrameKind(_E, _EV.CONVERSATION_CLOSED, "The conversation closed"),
    FrameKind(_E, _EV.NEW_CONVERSATION, "A conversation the recipient is now in (with resume_token)"),
    FrameKind(_E, _EV.NEW_MESSAGE, "A conversation's summary after a new message (to agents)"),
    FrameKind(_E, _EV.UPDATED_MESSAGE, "A message whose transport statuses changed"),
    FrameKind(_E, _EV.QUEUE_STATUS_UPDATE, "A queue's agents, entries and counts (to its agents)"),
    FrameKind(_E, _EV.RRWEB, "A part of the customer's session recording (to agents)"),
    FrameKind(_E, _EV.PARTICIPANT_UPDATE, "A participant's status or language changed"),
    FrameKind(_E, _EV.PARTICIPANT_JOIN, "A participant joined"),
    FrameKind(_E, _EV.PARTICIPANT_LEFT, "A participant left"),
    FrameKind(_E, _EV.READ_MESSAGE, "Another participant read a message"),
    FrameKind(_E, _EV.TYPING, "Another participant is typing"),
    FrameKind(_E, _EV.ADD_COUPON, "The agent offered a coupon code (to the customer)"),
    FrameKind(_E, _EV.ADD_ITEM, "The agent put items in the cart (to the customer)"),
    FrameKind(_E, _EV.WEBCHAT_CONTEXT, "The page the customer is on (to agents)"),
    FrameKind(_E, _EV.QUEUE_NEW_MEMBER, "A customer joined the queue (to its agents)"),
    FrameKind(_E, None, "A frame was refused (to its sender alone)", error=True),
)
"""What the server sends (docs/protocol.md, sections 2.4, 3 and 5)."""

# Payload keys a client frame needs, where they differ from EVENT_PAYLOADS
# (the server's: a client leaves and closes with a bare event).
_CLIENT_PAYLOADS: Mapping[EventType, tuple[str, ...]] = {
    EventType.WEBCHAT_START_CONVERSATION: ("event_engage_customer",),
    EventType.CONVERSATION_CLOSED: (),
    EventType.PARTICIPANT_LEFT: (),
}

_QUERY: dict[str, Any] = {
    "type": "object",
    "description": (
        "Development mode only (no `--api-key`, no `--auth required`): without a token the query string "
        "names the participant, without authentication. A repeated parameter takes its last value. "
        "The handshake is refused with HTTP 400 (bad role, agent without name, a value over its limit, "
        "a bad `since`), 401/403 (token), 404 (a path other than /ws) or 503 (too many connections)."
    ),
    "properties": {
        "role": {"type": "string", "enum": list(_BOTH), "default": _CUSTOMER},
        "name": {
            "type": "string",
            "maxLength": 200,
            "description": "Required for agents: the agent's identity across connections (default: Customer).",
        },
        "email": {"type": "string", "maxLength": 254},
        "lang": {"type": "string", "maxLength": 35, "description": "Language code."},
        "queues": {
            "type": "string",
            "description": "Agents: comma-separated queue names; absent or empty: every configured queue.",
        },
        "token": {
            "type": "string",
            "description": (
                "A JWT (three dot-separated base64url parts) or a resume token (never a dot), "
                "given with new conversation / queue status update (docs/protocol.md, 4.3)."
            ),
        },
        "since": {
            "type": "string",
            "pattern": "^[0-9]{1,19}$",
            "description": "With a resume token: replay messages newer than these epoch milliseconds.",
        },
    },
}

_HEADERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "Authorization": {
            "type": "string",
            "pattern": "^Bearer ",
            "description": "`Bearer JWT`: the participant the token names (see securitySchemes).",
        }
    },
}

_JWT = (
    "HS256, signed with `serve --jwt-secret` (or a secret made per run); claims iss, sub (participant ARN), "
    "role, name, merchant_id, participant_uuid, iat, exp, jti. Agents get one from "
    "`PUT /rest/v2/conversation/agent/auth`, customers from `POST /rest/v2/webchat-sim/customer_auth`."
)


def message_key(direction: str, kind: FrameKind) -> str:
    """The key of ``kind``'s message under ``components.messages`` and the
    channel's ``messages``: ``client.message``, ``server.event.new_conversation``,
    ``server.error``."""
    if kind.error:
        return f"{direction}.error"
    if kind.event_type is None:
        return f"{direction}.{kind.type.value.replace(' ', '_')}"
    return f"{direction}.event.{kind.event_type.value.replace(' ', '_')}"


def _refs(node: Any) -> Any:
    """``node`` with every ``#/$defs/X`` reference pointing at ``components.schemas``."""
    if isinstance(node, dict):
        return {
            key: value.replace("#/$defs/", "#/components/schemas/") if key == "$ref" else _refs(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_refs(item) for item in node]
    return node


def _schemas() -> dict[str, Any]:
    """The JSON Schema's envelope and its ``$defs``, as ``components.schemas``."""
    generated = json_schema()
    defs = generated.pop("$defs")
    for key in ("$schema", "$id"):
        generated.pop(key)
    return {ENVELOPE: _refs(generated), **{name: _refs(schema) for name, schema in defs.items()}}


def _required(direction: str, kind: FrameKind) -> list[str]:
    """What a frame of ``kind`` must carry besides ``type`` (and ``event_type``)."""
    if kind.error:
        return ["error"]
    if kind.type is FrameType.MESSAGE:
        return ["conversation_uuid", "message"]
    if kind.type is FrameType.CHECK_QUEUE_POSITION:
        return ["conversation_uuid"]
    event = kind.event_type
    if event is None:
        return []
    keys = ["conversation_uuid"] if event in CONVERSATION_EVENTS else []
    payloads = _CLIENT_PAYLOADS.get(event, EVENT_PAYLOADS[event]) if direction == "client" else EVENT_PAYLOADS[event]
    return keys + list(payloads)


def _payload(direction: str, kind: FrameKind) -> dict[str, Any]:
    properties: dict[str, Any] = {"type": {"const": kind.type.value}}
    narrowing: dict[str, Any] = {"type": "object"}
    required = ["type"]
    if kind.event_type is not None:
        properties["event_type"] = {"const": kind.event_type.value}
        required.append("event_type")
    elif kind.type is FrameType.EVENT:  # the error frame: an event with no event_type
        narrowing["not"] = {"required": ["event_type"]}
    narrowing["required"] = required + _required(direction, kind)
    narrowing["properties"] = properties
    return {"allOf": [{"$ref": f"#/components/schemas/{ENVELOPE}"}, narrowing]}


def _message(direction: str, kind: FrameKind) -> dict[str, Any]:
    name = "error" if kind.error else (kind.event_type or kind.type).value
    message: dict[str, Any] = {
        "name": name,
        "title": f"{name} ({'client to server' if direction == 'client' else 'server to client'})",
        "summary": kind.summary,
    }
    if direction == "client":
        who = " and ".join(f"{role}s" for role in kind.senders)
        message["description"] = f"Accepted from {who}; docs/protocol.md, section 3, row {kind.row}."
        message["tags"] = [{"name": role} for role in kind.senders]
    elif kind.error:
        message["description"] = (
            "The answer to a refused frame: `error` is shaped like UltraCart's REST Error "
            "(error_code, developer_message, user_message, object_id); docs/protocol.md, section 5."
        )
    message["payload"] = _payload(direction, kind)
    return message


def asyncapi_document(host: str = DEFAULT_SERVER[0], port: int = DEFAULT_SERVER[1]) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the websocket served at ``ws://HOST:PORT/ws``."""
    directions = (("client", CLIENT_KINDS), ("server", SERVER_KINDS))
    messages = {message_key(d, kind): _message(d, kind) for d, kinds in directions for kind in kinds}
    channel_ref = {"$ref": f"#/channels/{CHANNEL}"}

    def listed(direction: str, kinds: tuple[FrameKind, ...]) -> list[dict[str, str]]:
        return [{"$ref": f"#/channels/{CHANNEL}/messages/{message_key(direction, kind)}"} for kind in kinds]

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:webchat-sim:conversation-websocket",
        "info": {
            "title": "webchat-sim conversation websocket",
            "version": __version__,
            "description": (
                "The websocket of the webchat-sim mock server, which speaks UltraCart's conversation "
                "(webchat) protocol: every frame is one JSON text message, a ConversationWebsocketMessage "
                "whose `type` (and `event_type`) gives its kind. This document describes the server: its "
                "`receive` operation lists what clients may send, its `send` operation what it sends. "
                "The behaviour (who gets what, when) is docs/protocol.md, section 3."
            ),
            "license": {"name": "MIT"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "mock": {
                "host": f"{host}:{port}",
                "protocol": "ws",
                "title": "webchat-sim serve",
                "description": (
                    "`webchat-sim serve` (default address; `--host`, `--port`). A JWT is required with "
                    "`--api-key` or `--auth required`; without them (development mode) the query string "
                    "identifies the participant, with no authentication."
                ),
                "security": [
                    {"$ref": "#/components/securitySchemes/jwtBearer"},
                    {"$ref": "#/components/securitySchemes/jwtQuery"},
                ],
            }
        },
        "channels": {
            CHANNEL: {
                "address": "/ws",
                "title": "The conversation websocket",
                "description": (
                    "One connection is one participant (customer or agent), named by its token or, in "
                    "development mode, by the query string. A frame the server does not accept is answered "
                    "to its sender alone with an error frame (unsupported_frame for the kinds not listed in "
                    "receiveClientFrames); the connection stays open."
                ),
                "servers": [{"$ref": "#/servers/mock"}],
                "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in messages},
                "bindings": {"ws": {"method": "GET", "query": _QUERY, "headers": _HEADERS, "bindingVersion": "0.1.0"}},
            }
        },
        "operations": {
            "receiveClientFrames": {
                "action": "receive",
                "channel": channel_ref,
                "title": "Frames clients send",
                "summary": "What customers and agents may send; anything else is refused with unsupported_frame.",
                "messages": listed("client", CLIENT_KINDS),
            },
            "sendServerFrames": {
                "action": "send",
                "channel": channel_ref,
                "title": "Frames the server sends",
                "summary": "Relays, notices, queue updates, answers and error frames.",
                "messages": listed("server", SERVER_KINDS),
            },
        },
        "components": {
            "schemas": _schemas(),
            "messages": messages,
            "securitySchemes": {
                "jwtBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": f"`Authorization: Bearer JWT` on the handshake. {_JWT}",
                },
                "jwtQuery": {
                    "type": "httpApiKey",
                    "name": "token",
                    "in": "query",
                    "description": f"The JWT as query parameter `token`. {_JWT}",
                },
            },
        },
    }
