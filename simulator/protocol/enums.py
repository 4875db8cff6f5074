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
