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

from ..protocol import EventType, Frame, FrameType, Medium, WireModel, dts
from ..protocol.prepared import envelope, prepared

if TYPE_CHECKING:
    from .conversation import Conversation, Member, StoredMessage

__all__ = [
    "STATUS_ACTIVE",
    "STATUS_DISCONNECTED",
    "STATUS_LEFT",
    "build",
    "cached_dts",
    "message_bytes",
    "message_frame",
    "optional_dts",
    "prepare",
    "summary_bytes",
    "summary_frame",
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
# in the model's order (pydantic's serializer follows it), skipping None, as
# spliced bytes: what stays the same from one message to the next (a
# participant's identity and status, a conversation's ids) is kept, encoded,
# on the member or the conversation (``wire``), with the values it was made
# of, and made again when one of them has changed.

_dumps = orjson.dumps
_MESSAGE = FrameType.MESSAGE
_EVENT = FrameType.EVENT
_dts_memo: list[Any] = [None, b""]


def _kept(data: bytes) -> bytes:
    """``data`` in a bytes object of its own size, to be kept: orjson's output
    keeps its 4 KiB buffer (a kept ARN would hold 4 KiB)."""
    return memoryview(data).tobytes()


def _dts(epoch_millis: int) -> bytes:
    """The JSON string of :func:`cached_dts` (the latest memoized: a message's stamps are mostly one)."""
    memo = _dts_memo
    if memo[0] == epoch_millis:
        data: bytes = memo[1]
        return data
    data = b'"' + cached_dts(epoch_millis).encode() + b'"'
    memo[0], memo[1] = epoch_millis, data
    return data


class _MemberParts:
    """A member's encoded parts: its ``ConversationParticipant`` but for
    ``last_message_dts`` and ``unread_messages``, and the head of the
    ``message`` frames it writes; ``key`` is what they were made of."""

    __slots__ = (
        "arn",
        "head",
        "key",
        "last_dts",
        "last_ms",
        "message_envelope",
        "message_head",
        "message_key",
        "name",
        "statuses",
        "statuses_json",
        "tail",
    )

    def __init__(self, member: Member, key: tuple[Any, ...]) -> None:
        client = member.client
        self.key = key
        self.arn = _kept(_dumps(client.arn))
        self.name = _kept(_dumps(client.name))
        head = [
            b'{"conversation_participant_arn":',
            self.arn,
            b',"conversation_participant_name":',
            self.name,
            b',"conversation_participant_uuid":',
            _dumps(client.uuid),
        ]
        if client.email is not None:
            head += (b',"email":', _dumps(client.email))
        head += (b',"joined_dts":', _dts(member.joined_ms))
        if member.language is not None:
            head += (b',"language_iso_code":', _dumps(member.language))
        self.head = b"".join(head)
        left = member.left_ms
        if left is not None:
            status = STATUS_LEFT
        else:
            status = STATUS_ACTIVE if client.conn is not None else STATUS_DISCONNECTED
        left_part = b',"left_dts":' + _dts(left) if left is not None else b""
        self.tail = left_part + b',"status":' + _dumps(status) + b',"unread_messages":'
        self.message_key: tuple[str, str, str, str] | None = None
        self.message_head = b""
        self.message_envelope: dict[str, Any] = {}
        self.statuses: list[tuple[str, Any]] | None = None
        self.statuses_json = b""
        self.last_ms: int | None = None
        self.last_dts = b""


def _member_parts(member: Member) -> _MemberParts:
    client = member.client
    key = (client.name, client.email, client.conn is None, member.language, member.left_ms, member.joined_ms)
    parts: _MemberParts | None = member.wire
    if parts is None or parts.key != key:
        parts = member.wire = _MemberParts(member, key)
    return parts


class _ConversationParts:
    """A conversation's encoded parts (its ids, merchant and start never change)."""

    __slots__ = ("closed_head", "end", "envelopes", "middle", "open_head", "unresponded", "unresponded_ms")

    def __init__(self, conv: Conversation) -> None:
        uuid, arn = _dumps(conv.uuid), _dumps(conv.arn)
        ids = b',"conversation_arn":' + arn + b',"conversation_uuid":' + uuid
        self.open_head = b'{"closed":false' + ids
        self.closed_head = b'{"closed":true' + ids
        self.middle = b',"medium":' + _dumps(Medium.WEBSOCKET) + b',"merchant_id":' + _dumps(conv.merchant_id)
        self.middle += b',"message_count":'
        self.end = b'],"start_dts":' + _dts(conv.start_ms) + b',"unread_messages":'
        self.envelopes: dict[tuple[EventType, str], tuple[bytes, dict[str, Any]]] = {}
        self.unresponded_ms: int | None = None
        self.unresponded = b""


def _conversation_parts(conv: Conversation) -> _ConversationParts:
    parts: _ConversationParts | None = conv.wire
    if parts is None:
        parts = _ConversationParts(conv)
        conv.keep_wire(parts)  # on the byte account, with its members' parts
    return parts


def prepare(conv: Conversation) -> None:
    """Make (and put on the account) ``conv``'s encoded parts, if not yet kept."""
    if conv.wire is None:
        _conversation_parts(conv)


def _message_parts(stored: StoredMessage) -> _MemberParts:
    """Its author's parts, with the head and envelope of its ``message`` frames made for ``stored``."""
    author = _member_parts(stored.author)
    key = (stored.author_arn, stored.author_name, stored.conversation_uuid, stored.conversation_arn)
    if author.message_key != key:
        author.message_key = key
        author.message_envelope = envelope(_MESSAGE, None, stored.conversation_uuid, stored.conversation_arn)
        author.message_head = b"".join(
            (
                b'{"type":"message","conversation_uuid":',
                _dumps(stored.conversation_uuid),
                b',"conversation_arn":',
                _dumps(stored.conversation_arn),
                b',"message":{"author_conversation_participant_arn":',
                _dumps(stored.author_arn),
                b',"author_conversation_participant_name":',
                _dumps(stored.author_name),
            )
        )
    return author


def message_bytes(stored: StoredMessage) -> bytes:
    """The ``message`` frame of ``stored``, as ``encode`` writes :meth:`StoredMessage.model_frame`."""
    return _message_bytes(stored, _message_parts(stored))


def _message_bytes(stored: StoredMessage, author: _MemberParts) -> bytes:
    out = [author.message_head]
    if stored.body is not None:
        out += (b',"body":', _dumps(stored.body))
    if stored.client_message_id is not None:
        out += (b',"client_message_id":', _dumps(stored.client_message_id))
    out += (b',"conversation_message_uuid":', _dumps(stored.uuid))
    if stored.language is not None:
        out += (b',"language_iso_code":', _dumps(stored.language))
    if stored.media_urls:
        out += (b',"media_urls":', _dumps(stored.media_urls))
    out += (
        b',"merchant_id":',
        _dumps(stored.merchant_id),
        b',"message_dts":',
        _dts(stored.epoch),
        b',"message_epoch":',
        str(stored.epoch).encode(),
        b',"transport_statuses":',
        _statuses_json(stored, author),
        b',"type":"message"}}',
    )
    return b"".join(out)


def _statuses_json(stored: StoredMessage, author: _MemberParts) -> bytes:
    """The transport statuses of ``stored``: mostly those of its author's previous message."""
    statuses = stored.statuses
    if author.statuses == statuses:
        return author.statuses_json
    data = _kept(_dumps([{"conversation_participant_arn": arn, "status": status} for arn, status in statuses]))
    author.statuses, author.statuses_json = list(statuses), data
    return data


def message_frame(stored: StoredMessage) -> Frame:
    """The ``message`` frame that carries ``stored`` (see :attr:`StoredMessage.frame`)."""
    author = _message_parts(stored)
    return prepared(_message_bytes(stored, author), author.message_envelope)


def summary_bytes(conv: Conversation, *, closed: bool) -> bytes:
    """``ConversationSummary`` of ``conv``, as ``encode`` writes :meth:`Conversation.summary`."""
    parts = _conversation_parts(conv)
    messages = conv.messages
    total = conv.dropped + len(messages)
    out = [parts.closed_head if closed else parts.open_head]
    if (unresponded := conv.first_unresponded_ms) is not None:
        if parts.unresponded_ms != unresponded:
            stamp = _dts(unresponded)
            parts.unresponded_ms, parts.unresponded = (
                unresponded,
                b',"customer_first_message_unresponded_to_dts":' + stamp,
            )
        out.append(parts.unresponded)
    if messages:
        last = messages[-1]
        if last.body is not None:
            out += (b',"last_conversation_message_body":', _dumps(last.body))
        author = _member_parts(last.author)
        last_dts = _dts(last.epoch)
        out += (
            b',"last_conversation_participant_arn":',
            author.arn,
            b',"last_conversation_participant_name":',
            author.name,
            b',"last_interactive_message_dts":',
            last_dts,
            b',"last_message_dts":',
            last_dts,
        )
    out += (parts.middle, str(total).encode(), b',"participants":[')
    unread = False
    comma = False
    for member in conv.members.values():
        member_parts = _member_parts(member)
        if comma:
            out.append(b",")
        comma = True
        out.append(member_parts.head)
        if (last_ms := member.last_message_ms) is not None:
            if member_parts.last_ms != last_ms:
                member_parts.last_ms, member_parts.last_dts = last_ms, b',"last_message_dts":' + _dts(last_ms)
            out.append(member_parts.last_dts)
        count = member.unread(total)
        out += (member_parts.tail, str(count).encode(), b"}")
        if count and member.left_ms is None:
            unread = True
    out += (parts.end, b"true" if unread else b"false", b',"visible":true}')
    return b"".join(out)


def summary_frame(conv: Conversation, event_type: EventType, key: str, summary: bytes) -> Frame:
    """The ``event`` frame of ``conv`` carrying ``summary`` (of :func:`summary_bytes`) as ``key``."""
    parts = _conversation_parts(conv)
    made = parts.envelopes.get((event_type, key))
    if made is None:
        fields = envelope(_EVENT, event_type, conv.uuid, conv.arn)
        head = {"type": _EVENT, "event_type": event_type, "conversation_uuid": conv.uuid, "conversation_arn": conv.arn}
        made = parts.envelopes[event_type, key] = (_dumps(head)[:-1] + b"," + _dumps(key) + b":", fields)
    return prepared(made[0] + summary + b"}", made[1])
