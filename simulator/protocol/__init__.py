"""UltraCart's conversation websocket protocol: enums, models, codec, schema."""

from __future__ import annotations

from .codec import (
    CONVERSATION_EVENTS,
    EVENT_PAYLOADS,
    check_context,
    decode,
    dts,
    encode,
    encoded_length,
    epoch_ms,
    uuid4_text,
)
from .enums import (
    AgentStatus,
    CartItemOptionType,
    ErrorCode,
    EventType,
    FrameType,
    Medium,
    MessageType,
    RRWebType,
    SentimentValue,
    TransportStatus,
)
from .models import *  # noqa: F403
from .models import __all__ as _models_all
from .schema import json_schema

__all__ = [
    "CONVERSATION_EVENTS",
    "EVENT_PAYLOADS",
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
    "check_context",
    "decode",
    "dts",
    "encode",
    "encoded_length",
    "epoch_ms",
    "uuid4_text",
    "json_schema",
    *_models_all,
]
