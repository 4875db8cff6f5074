"""Typed models of UltraCart's ``ConversationWebsocketMessage`` and everything
nested in it, field for field as in UltraCart's REST API v2 SDK (4.1.x).

Every field is optional, as in UltraCart's models. Keys are snake_case on the
wire; an absent field is ``None`` here and omitted on the wire. Every model
allows additional properties: unknown keys are kept in ``model_extra`` and are
written back by :func:`simulator.protocol.encode`.

The models are pydantic classes (validation in Rust, JSON Schema generated from
these same definitions); see :mod:`simulator.protocol.codec` for the wire codec.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from .enums import (
    AgentStatus,
    CartItemOptionType,
    EventType,
    FrameType,
    Medium,
    MessageType,
    RRWebType,
    SentimentValue,
    TransportStatus,
)

__all__ = [
    "CartItem",
    "CartItemAttribute",
    "CartItemOption",
    "CartItemVariationSelection",
    "ConversationEventAddCoupon",
    "ConversationEventAddItem",
    "ConversationEventQueuePosition",
    "ConversationEventRRWeb",
    "ConversationEventReadMessage",
    "ConversationEventTyping",
    "ConversationEventWebchatContext",
    "ConversationMessage",
    "ConversationMessageTranslation",
    "ConversationMessageTransportStatus",
    "ConversationParticipant",
    "ConversationSentiment",
    "ConversationSummary",
    "ConversationWebchatQueueStatus",
    "ConversationWebchatQueueStatusAgent",
    "ConversationWebchatQueueStatusQueueEntry",
    "ConversationWebsocketMessage",
    "Currency",
    "Error",
    "Frame",
    "Int64",
    "WireModel",
]


Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
"""JSON integers are 64-bit for UltraCart's SDKs (and for orjson)."""


def _json_only(value: Any) -> Any:
    """An additional property holds JSON: pydantic's JSON parser reads ``NaN``,
    ``Infinity`` and ``-Infinity`` (and ``1e400`` as infinity) into untyped
    values, and its integers have no bound; refuse what is not a finite
    number or a 64-bit integer (orjson could not write it back)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    pending = [value]
    pop = pending.pop
    while pending:
        item = pop()
        kind = type(item)  # the parser's own types: exact, no subclasses (bool is not int here)
        if kind is float:
            if item - item != 0.0:  # NaN or an infinity
                raise PydanticCustomError("finite_number", "Input should be a finite number")
        elif kind is int:
            if not -(2**63) <= item <= 2**63 - 1:
                raise PydanticCustomError("int64", "Input should be a 64-bit integer", {"value": item})
        elif kind is dict:
            pending.extend(item.values())
        elif kind is list:
            pending.extend(item)
    return value


JsonExtra = Annotated[Any, AfterValidator(_json_only)]
"""The value of an additional property (validated only when a frame has some)."""


class WireModel(BaseModel):
    """Base of every protocol model: unknown keys are allowed and kept;
    numbers must be finite (no ``NaN``/``Infinity``) and integers 64-bit,
    additional properties included."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    __pydantic_extra__: dict[str, JsonExtra] = Field(init=False)


# ---------------------------------------------------------------------------
# Messages


class ConversationMessageTranslation(WireModel):
    body: str | None = None
    language_iso_code: str | None = None


class ConversationMessageTransportStatus(WireModel):
    conversation_participant_arn: str | None = None
    status: TransportStatus | None = None


class ConversationMessage(WireModel):
    author_conversation_participant_arn: str | None = None
    author_conversation_participant_name: str | None = None
    body: str | None = None
    client_message_id: str | None = None
    conversation_message_uuid: str | None = None
    delay_until_dts: str | None = None
    language_iso_code: str | None = None
    media_urls: list[str] | None = None
    merchant_id: str | None = None
    message_dts: str | None = None
    message_epoch: Int64 | None = None
    message_type: str | None = None
    translations: list[ConversationMessageTranslation] | None = None
    transport_statuses: list[ConversationMessageTransportStatus] | None = None
    type: MessageType | None = None
    upload_keys: list[str] | None = None


# ---------------------------------------------------------------------------
# Conversations and participants


class ConversationParticipant(WireModel):
    conversation_participant_arn: str | None = None
    conversation_participant_name: str | None = None
    conversation_participant_uuid: str | None = None
    email: str | None = None
    joined_dts: str | None = None
    language_iso_code: str | None = None
    last_message_dts: str | None = None
    left_dts: str | None = None
    profile_image_url: str | None = None
    sms_phone_number: str | None = None
    status: str | None = None
    timezone: str | None = None
    unread_messages: Int64 | None = None


class ConversationSentiment(WireModel):
    last_detect_sentiment: str | None = None
    mixed: float | None = None
    negative: float | None = None
    neutral: float | None = None
    positive: float | None = None
    sentiment: SentimentValue | None = None


class ConversationSummary(WireModel):
    closed: bool | None = None
    conversation_arn: str | None = None
    conversation_uuid: str | None = None
    customer_first_message_unresponded_to_dts: str | None = None
    last_conversation_message_body: str | None = None
    last_conversation_participant_arn: str | None = None
    last_conversation_participant_name: str | None = None
    last_interactive_message_dts: str | None = None
    last_message_dts: str | None = None
    medium: Medium | None = None
    merchant_id: str | None = None
    message_count: Int64 | None = None
    participants: list[ConversationParticipant] | None = None
    sentiment: ConversationSentiment | None = None
    start_dts: str | None = None
    unread_messages: bool | None = None
    visible: bool | None = None


# ---------------------------------------------------------------------------
# Queues


class ConversationEventQueuePosition(WireModel):
    available: bool | None = None
    position: Int64 | None = None


class ConversationWebchatQueueStatusAgent(WireModel):
    agent_status: AgentStatus | None = None
    agent_user_id: str | None = None
    conversation_participant_arn: str | None = None
    conversation_participant_name: str | None = None
    custom_status_name: str | None = None
    custom_status_uuid: str | None = None
    last_chat_dts: str | None = None
    next_round_robin: bool | None = None
    profile_image_url: str | None = None


class ConversationWebchatQueueStatusQueueEntry(WireModel):
    conversation_participant_arn: str | None = None
    conversation_participant_name: str | None = None
    conversation_webchat_queue_uuid: str | None = None
    email: str | None = None
    join_dts: str | None = None
    participant_language_iso_code: str | None = None
    question: str | None = None
    queue_name: str | None = None


class ConversationWebchatQueueStatus(WireModel):
    agent_available_count: Int64 | None = None
    agent_busy_count: Int64 | None = None
    agent_count: Int64 | None = None
    agent_unavailable_count: Int64 | None = None
    agents: list[ConversationWebchatQueueStatusAgent] | None = None
    customer_abandon_count: Int64 | None = None
    customer_active_count: Int64 | None = None
    customer_average_abandon_time_seconds: Int64 | None = None
    customer_average_chat_time_seconds: Int64 | None = None
    customer_average_hold_time_seconds: Int64 | None = None
    customer_chat_count: Int64 | None = None
    customer_waiting_count: Int64 | None = None
    customer_waiting_join_dts: str | None = None
    queue_entries: list[ConversationWebchatQueueStatusQueueEntry] | None = None
    queue_name: str | None = None


# ---------------------------------------------------------------------------
# Cart items (the subset of UltraCart's CartItem worth generating)


class Currency(WireModel):
    currency_code: str | None = None
    exchange_rate: float | None = None
    localized: float | None = None
    localized_formatted: str | None = None
    value: float | None = None


class CartItemAttribute(WireModel):
    name: str | None = None
    type: str | None = None
    value: str | None = None


class CartItemOption(WireModel):
    cost_if_specified: Currency | None = None
    cost_per_letter: Currency | None = None
    cost_per_line: Currency | None = None
    ignore_if_default: bool | None = None
    label: str | None = None
    name: str | None = None
    one_time_fee: bool | None = None
    option_oid: Int64 | None = None
    required: bool | None = None
    selected_value: str | None = None
    type: CartItemOptionType | None = None


class CartItemVariationSelection(WireModel):
    variation_name: str | None = None
    variation_value: str | None = None


class CartItem(WireModel):
    attributes: list[CartItemAttribute] | None = None
    default_image_url: str | None = None
    default_thumbnail_url: str | None = None
    description: str | None = None
    extended_description: str | None = None
    item_id: str | None = None
    item_oid: Int64 | None = None
    options: list[CartItemOption] | None = None
    position: Int64 | None = None
    quantity: float | None = None
    total_cost: Currency | None = None
    unit_cost: Currency | None = None
    variations: list[CartItemVariationSelection] | None = None
    view_url: str | None = None


# ---------------------------------------------------------------------------
# Small event payloads


class ConversationEventTyping(WireModel):
    author_conversation_participant_arn: str | None = None
    author_conversation_participant_name: str | None = None
    value: str | None = None


class ConversationEventReadMessage(WireModel):
    conversation_message_uuid: str | None = None
    message_dts: str | None = None
    message_epoch: Int64 | None = None


class ConversationEventAddCoupon(WireModel):
    agent_arn: str | None = None
    agent_name: str | None = None
    coupon_code: str | None = None


class ConversationEventAddItem(WireModel):
    agent_arn: str | None = None
    agent_name: str | None = None
    items: list[CartItem] | None = None


class ConversationEventWebchatContext(WireModel):
    cart_id: str | None = None
    ucacid: str | None = None
    url: str | None = None


class ConversationEventRRWeb(WireModel):
    data: str | None = None
    data_part: Int64 | None = None
    data_sha256: str | None = None
    data_total_parts: Int64 | None = None
    data_total_sha256: str | None = None
    event_index: Int64 | None = None
    type: RRWebType | None = None


class Error(WireModel):
    """UltraCart's REST ``Error``; carried by this project's error frames as
    the additional property ``error`` of the envelope."""

    developer_message: str | None = None
    error_code: str | None = None
    more_info: str | None = None
    object_id: str | None = None
    user_message: str | None = None


# ---------------------------------------------------------------------------
# The envelope


class ConversationWebsocketMessage(WireModel):
    """One websocket text frame."""

    type: FrameType | None = None
    event_type: EventType | None = None
    conversation_uuid: str | None = None
    conversation_arn: str | None = None
    message: ConversationMessage | None = None
    event_add_coupon: ConversationEventAddCoupon | None = None
    event_add_item: ConversationEventAddItem | None = None
    event_conversation_closed: ConversationSummary | None = None
    event_engage_customer: ConversationWebchatQueueStatusQueueEntry | None = None
    event_new_conversation: ConversationSummary | None = None
    event_new_message: ConversationSummary | None = None
    event_participant_join: ConversationSummary | None = None
    event_participant_join_participant: ConversationParticipant | None = None
    event_participant_left: ConversationSummary | None = None
    event_participant_left_participant: ConversationParticipant | None = None
    event_participant_update: ConversationSummary | None = None
    event_queue_new_member: ConversationWebchatQueueStatusQueueEntry | None = None
    event_queue_position: ConversationEventQueuePosition | None = None
    event_queue_status_update: ConversationWebchatQueueStatus | None = None
    event_read_message: ConversationEventReadMessage | None = None
    event_rrweb: ConversationEventRRWeb | None = None
    event_typing: ConversationEventTyping | None = None
    event_updated_message: ConversationMessage | None = None
    event_webchat_context: ConversationEventWebchatContext | None = None
    # Additional property of this project's dialect (UltraCart's models allow
    # any): the reason a frame was refused, shaped like the REST ``Error``.
    error: Error | None = None


Frame = ConversationWebsocketMessage
"""Short name for the envelope."""
