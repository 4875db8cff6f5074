"""Building what the engine sends (part of the engine).

* :func:`build` — a wire model without validation, and :func:`cached_dts`
  (timestamps memoized per second): the model path, for every frame.
* The chat path without models: a relayed chat message costs the engine its
  ``message`` frame (the sender's copy and every other participant's: the
  same bytes) and the agents' ``new message`` summary. Building them as
  pydantic models (the message, its transport statuses, the summary, one
  participant per member, the envelopes) and serializing them was most of
  the server's CPU per message; :func:`message_frame` and
  :func:`summary_frame` write the same JSON from plain values (orjson, the
  same fields in the same order, absent ones omitted, exactly what
  :func:`~simulator.protocol.encode` writes of the models) and hand it on as
  a :class:`~simulator.protocol.prepared.PreparedFrame`: encoded once, a
  model again only if a consumer looks inside (tests/test_fast_path.py
  checks the bytes equal the model path's, byte for byte).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from ..protocol import EventType, Frame, FrameType, Medium, MessageType, WireModel, dts
from ..protocol.prepared import prepared

if TYPE_CHECKING:
    from .conversation import Conversation, Member, StoredMessage

__all__ = [
    "STATUS_ACTIVE",
    "STATUS_DISCONNECTED",
    "STATUS_LEFT",
    "build",
    "cached_dts",
    "message_frame",
    "message_json",
    "optional_dts",
    "participant_json",
    "summary_frame",
    "summary_json",
]

# Participant ``status`` strings (free text in UltraCart's model).
STATUS_ACTIVE = "active"
STATUS_DISCONNECTED = "disconnected"
STATUS_LEFT = "left"


@lru_cache(maxsize=64)
def _dts_second(epoch_seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of a whole second: :func:`protocol.dts` without its milliseconds."""
    return dts(epoch_seconds * 1000)[:-5]


def cached_dts(epoch_millis: int) -> str:
    """``protocol.dts`` with the date and time of day memoized per second (a
    chat message's timestamp is a new millisecond, rarely a new second)."""
    seconds, millis = divmod(epoch_millis, 1000)
    return f"{_dts_second(seconds)}.{millis:03d}Z"


def optional_dts(epoch_millis: int | None) -> str | None:
    return cached_dts(epoch_millis) if epoch_millis is not None else None


M = TypeVar("M", bound=WireModel)

_set_slot = object.__setattr__
_ALL_NONE: dict[type[WireModel], dict[str, None]] = {}


def build(cls: type[M], /, **fields: Any) -> M:
    """``cls(**fields)`` without validation, for the frames the engine sends:
    their values are its own or come from frames validated when decoded.

    What pydantic's ``model_construct`` does, without its per-field Python
    loop: 2-3x faster than validating, and than ``model_construct``. Every
    field of the wire models defaults to ``None``; keys that are not fields
    are additional properties, as validation would keep them.
    """
    defaults = _ALL_NONE.get(cls)
    if defaults is None:
        if any(info.default is not None or info.default_factory is not None for info in cls.model_fields.values()):
            raise TypeError(f"{cls.__name__}: build() needs every field to default to None")
        defaults = _ALL_NONE[cls] = dict.fromkeys(cls.model_fields)
    values = defaults.copy()
    values.update(fields)
    extra = {key: values.pop(key) for key in fields if key not in defaults} if len(values) > len(defaults) else {}
    model = cls.__new__(cls)
    _set_slot(model, "__dict__", values)
    _set_slot(model, "__pydantic_fields_set__", set(fields))
    _set_slot(model, "__pydantic_extra__", extra)
    _set_slot(model, "__pydantic_private__", None)
    return model


# ---------------------------------------------------------------------------
# The chat path without models. Each function writes the fields of its model
# in the model's order (pydantic's serializer follows it), skipping None.

_dumps = orjson.dumps
_MESSAGE = FrameType.MESSAGE
_EVENT = FrameType.EVENT
_WEBSOCKET = Medium.WEBSOCKET
_TYPE_MESSAGE = MessageType.MESSAGE


def message_json(stored: StoredMessage) -> dict[str, Any]:
    """``ConversationMessage`` of ``stored``, as ``encode`` writes it (see :attr:`StoredMessage.model`)."""
    out: dict[str, Any] = {
        "author_conversation_participant_arn": stored.author_arn,
        "author_conversation_participant_name": stored.author_name,
    }
    if stored.body is not None:
        out["body"] = stored.body
    if stored.client_message_id is not None:
        out["client_message_id"] = stored.client_message_id
    out["conversation_message_uuid"] = stored.uuid
    if stored.language is not None:
        out["language_iso_code"] = stored.language
    if stored.media_urls:
        out["media_urls"] = stored.media_urls
    if stored.merchant_id is not None:
        out["merchant_id"] = stored.merchant_id
    out["message_dts"] = cached_dts(stored.epoch)
    out["message_epoch"] = stored.epoch
    out["transport_statuses"] = [
        {"conversation_participant_arn": arn, "status": status} for arn, status in stored.statuses
    ]
    out["type"] = _TYPE_MESSAGE
    return out


def message_frame(stored: StoredMessage) -> Frame:
    """The ``message`` frame that carries ``stored`` (see :attr:`StoredMessage.frame`)."""
    data = _dumps(
        {
            "type": _MESSAGE,
            "conversation_uuid": stored.conversation_uuid,
            "conversation_arn": stored.conversation_arn,
            "message": message_json(stored),
        }
    )
    return prepared(data, _MESSAGE, None, stored.conversation_uuid, stored.conversation_arn)


def participant_json(member: Member, total: int) -> dict[str, Any]:
    """``ConversationParticipant`` of ``member`` (see :meth:`Member.participant`)."""
    client = member.client
    left = member.left_ms
    out: dict[str, Any] = {
        "conversation_participant_arn": client.arn,
        "conversation_participant_name": client.name,
        "conversation_participant_uuid": client.uuid,
    }
    if client.email is not None:
        out["email"] = client.email
    out["joined_dts"] = cached_dts(member.joined_ms)
    if member.language is not None:
        out["language_iso_code"] = member.language
    if member.last_message_ms is not None:
        out["last_message_dts"] = cached_dts(member.last_message_ms)
    if left is not None:
        out["left_dts"] = cached_dts(left)
        out["status"] = STATUS_LEFT
    else:
        out["status"] = STATUS_ACTIVE if client.conn is not None else STATUS_DISCONNECTED
    out["unread_messages"] = member.unread(total)
    return out


def summary_json(conv: Conversation, *, closed: bool) -> dict[str, Any]:
    """``ConversationSummary`` of ``conv`` (see :meth:`Conversation.summary`)."""
    messages = conv.messages
    total = conv.dropped + len(messages)
    participants = []
    unread = False
    for member in conv.members.values():
        participant = participant_json(member, total)
        participants.append(participant)
        if member.left_ms is None and participant["unread_messages"]:
            unread = True
    out: dict[str, Any] = {"closed": closed, "conversation_arn": conv.arn, "conversation_uuid": conv.uuid}
    if conv.first_unresponded_ms is not None:
        out["customer_first_message_unresponded_to_dts"] = cached_dts(conv.first_unresponded_ms)
    if messages:
        last = messages[-1]
        if last.body is not None:
            out["last_conversation_message_body"] = last.body
        author = last.author.client
        out["last_conversation_participant_arn"] = author.arn
        out["last_conversation_participant_name"] = author.name
        out["last_interactive_message_dts"] = out["last_message_dts"] = cached_dts(last.epoch)
    out["medium"] = _WEBSOCKET
    out["merchant_id"] = conv.merchant_id
    out["message_count"] = total
    out["participants"] = participants
    out["start_dts"] = cached_dts(conv.start_ms)
    out["unread_messages"] = unread
    out["visible"] = True
    return out


def summary_frame(conv: Conversation, event_type: EventType, key: str, summary: dict[str, Any]) -> Frame:
    """The ``event`` frame of ``conv`` carrying ``summary`` (of :func:`summary_json`) as ``key``."""
    data = _dumps(
        {
            "type": _EVENT,
            "event_type": event_type,
            "conversation_uuid": conv.uuid,
            "conversation_arn": conv.arn,
            key: summary,
        }
    )
    return prepared(data, _EVENT, event_type, conv.uuid, conv.arn)
