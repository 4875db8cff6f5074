"""Closed sets of the UltraCart conversation protocol.

This module is the one place where the wire strings of every enum live.
Members compare by identity (``frame.type is FrameType.MESSAGE``) and
serialize to their value.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AgentStatus",
    "CartItemOptionType",
    "ErrorCode",
    "EventType",
    "FrameType",
    "Medium",
    "MessageType",
    "RRWebType",
    "SentimentValue",
    "TransportStatus",
]


class FrameType(StrEnum):
    """``ConversationWebsocketMessage.type``."""

    MESSAGE = "message"
    EVENT = "event"
    PING = "ping"
    CHECK_QUEUE_POSITION = "check queue position"


class EventType(StrEnum):
    """``ConversationWebsocketMessage.event_type`` (the 18 events)."""

    QUEUE_POSITION = "queue position"
    WEBCHAT_START_CONVERSATION = "webchat start conversation"
    CONVERSATION_CLOSED = "conversation closed"
    NEW_CONVERSATION = "new conversation"
    NEW_MESSAGE = "new message"
    UPDATED_MESSAGE = "updated message"
    QUEUE_STATUS_UPDATE = "queue status update"
    RRWEB = "rrweb"
    PARTICIPANT_UPDATE = "participant update"
    PARTICIPANT_JOIN = "participant join"
    PARTICIPANT_LEFT = "participant left"
    READ_MESSAGE = "read message"
    TYPING = "typing"
    ADD_COUPON = "add coupon"
    ADD_ITEM = "add item"
    WEBCHAT_CONTEXT = "webchat context"
    ENGAGE_CUSTOMER = "engage customer"
    QUEUE_NEW_MEMBER = "queue new member"


class MessageType(StrEnum):
    """``ConversationMessage.type``."""

    MESSAGE = "message"
    NOTICE = "notice"
    ENGAGEMENT_PROMPT = "engagement prompt"
    TOOL_CALL = "tool call"


class TransportStatus(StrEnum):
    """``ConversationMessageTransportStatus.status``."""

    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    READ = "read"
    TWILIO_CREDENTIALS_MISSING = "TWILIO_CREDENTIALS_MISSING"
    SENT_TO_TWILIO = "SENT_TO_TWILIO"
    TWILIO_ERROR = "TWILIO_ERROR"
    SENT_TO_PINPOINT = "SENT_TO_PINPOINT"
    PINPOINT_ERROR = "PINPOINT_ERROR"


class AgentStatus(StrEnum):
    """``ConversationWebchatQueueStatusAgent.agent_status``."""

    AVAILABLE = "available"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"


class Medium(StrEnum):
    """``ConversationSummary.medium``."""

    SMS = "sms"
    WEBSOCKET = "websocket"


class RRWebType(StrEnum):
    """``ConversationEventRRWeb.type``."""

    INIT = "init"
    EVENTS = "events"


class SentimentValue(StrEnum):
    """``ConversationSentiment.sentiment``."""

    POSITIVE = "POSITIVE"
    NEUTRAL = "NEUTRAL"
    NEGATIVE = "NEGATIVE"
    MIXED = "MIXED"


class CartItemOptionType(StrEnum):
    """``CartItemOption.type``."""

    SINGLE = "single"
    MULTILINE = "multiline"
    DROPDOWN = "dropdown"
    HIDDEN = "hidden"
    RADIO = "radio"
    FIXED = "fixed"


class ErrorCode(StrEnum):
    """``error.error_code`` of the error frames this project sends (an
    envelope ``{"type": "event", "error": {...}}`` to the offender alone).
    docs/protocol.md, "Errors", says when each is sent."""

    # The codec: a frame that is not a valid ConversationWebsocketMessage
    INVALID_JSON = "invalid_json"
    NOT_OBJECT = "not_object"
    INVALID_TYPE = "invalid_type"
    INVALID_ENUM = "invalid_enum"
    INVALID_VALUE = "invalid_value"
    MISSING_FIELD = "missing_field"
    INVALID_FRAME = "invalid_frame"
    TOO_LARGE = "too_large"
    # The websocket shell
    BINARY_FRAME = "binary_frame"
    RATE_LIMITED = "rate_limited"
    # The engine: sessions
    NOT_CONNECTED = "not_connected"
    SESSION_REPLACED = "session_replaced"
    RESUME_FAILED = "resume_failed"
    IDENTITY_IN_USE = "identity_in_use"
    # The engine: the accept rules
    UNSUPPORTED_FRAME = "unsupported_frame"
    FORBIDDEN_FOR_ROLE = "forbidden_for_role"
    # The engine: any field a client names (names, emails, ids, urls, ...)
    FIELD_TOO_LONG = "field_too_long"
    # The engine: queues and conversations
    UNKNOWN_QUEUE = "unknown_queue"
    NOT_A_PARTICIPANT = "not_a_participant"
    CONVERSATION_CLOSED = "conversation_closed"
    TOO_MANY_CONVERSATIONS = "too_many_conversations"
    QUEUE_ENTRY_NOT_FOUND = "queue_entry_not_found"
    ALREADY_ENGAGED = "already_engaged"
    NOT_IN_QUEUE = "not_in_queue"
    AGENT_AT_CAPACITY = "agent_at_capacity"
    # The engine: messages
    EMPTY_MESSAGE = "empty_message"
    MESSAGE_TOO_LONG = "message_too_long"
    TOO_MANY_MEDIA_URLS = "too_many_media_urls"
    CONVERSATION_FULL = "conversation_full"
    MESSAGE_NOT_FOUND = "message_not_found"
    # The engine: rrweb recordings
    INVALID_RRWEB = "invalid_rrweb"
    RRWEB_HASH_MISMATCH = "rrweb_hash_mismatch"
    RRWEB_OUT_OF_ORDER = "rrweb_out_of_order"
    RRWEB_TOO_LARGE = "rrweb_too_large"
