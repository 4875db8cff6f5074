"""What the engine accepts, from whom, in which state: the one table.

The way h11's ``_state.py`` keeps its transitions as data, :data:`RULES` is
the whole accept policy of the dialect (docs/protocol.md, section 3, and the
"from clients" column of section 2.4): one :class:`Rule` per frame kind a
client may send, keyed by ``(type, event_type)`` (``event_type`` is ``None``
for frames that are not events). The engine dispatches every frame through
it and refuses, with **one** error frame, whatever breaks it:

* a kind that is not in the table (server-only events, an ``event`` without
  ``event_type``): ``unsupported_frame``;
* a sender whose role is not in :attr:`Rule.roles`: ``forbidden_for_role``
  (``event "add coupon" is not accepted from a customer``);
* for a kind that names a conversation (:attr:`Rule.states` is not ``None``):
  a conversation that does not exist or that the sender is not (or no
  longer) in: ``not_a_participant``, alike so outsiders learn nothing; a
  conversation in a state outside :attr:`Rule.states`: the code
  :data:`STATE_REFUSALS` gives for that state (``conversation_closed``),
  naming frame, role and state (``type "message" is not accepted from a
  customer in a closed conversation``).

Everything after that (payload fields, limits, queue rules) is the handler's.
This module also holds the refusal plumbing every part of the engine shares:
:data:`ERROR_CODES` (the engine's codes and their ``user_message``),
:class:`Refused` and :func:`error_frame`; and :data:`LIMITS`, the longest
value of each kind of field a client names (names, emails, language codes,
ids, urls, coupon codes, …), with :func:`check_length`, which refuses a
longer one with ``field_too_long``. The engine checks them on the frames it
handles, the front door on identities (the handshake's query string, customer
tokens) and the REST side on request bodies, so nothing a client names is
stored or forwarded longer than its limit (message bodies and questions keep
their own limit, ``max_body_length``, and code ``message_too_long``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import Refused
from ..protocol import Error, ErrorCode, EventType, Frame, FrameType
from .conversation import Role, State

__all__ = [
    "DEFAULT_USER_MESSAGE",
    "ERROR_CODES",
    "LIMITS",
    "RULES",
    "STATE_REFUSALS",
    "FieldLimits",
    "Kind",
    "Refused",
    "Rule",
    "check_length",
    "clip",
    "describe",
    "error_frame",
    "forbidden",
    "length_error",
    "not_in_state",
    "unsupported",
]

ERROR_CODES: Mapping[ErrorCode, str] = {
    # code: the user_message sent with it (docs/protocol.md, section 5)
    ErrorCode.NOT_CONNECTED: "This connection is not signed in any more.",
    ErrorCode.SESSION_REPLACED: "You signed in from another connection.",
    ErrorCode.RESUME_FAILED: "Your previous chat could not be resumed.",
    ErrorCode.IDENTITY_IN_USE: "That agent is signed in from another session.",
    ErrorCode.UNSUPPORTED_FRAME: "That action is not supported.",
    ErrorCode.FORBIDDEN_FOR_ROLE: "That action is not allowed for you.",
    ErrorCode.FIELD_TOO_LONG: "Something you sent is too long.",
    ErrorCode.MISSING_FIELD: "Something required is missing.",
    ErrorCode.UNKNOWN_QUEUE: "That chat queue does not exist.",
    ErrorCode.NOT_A_PARTICIPANT: "You are not in that conversation.",
    ErrorCode.CONVERSATION_CLOSED: "That conversation is closed.",
    ErrorCode.TOO_MANY_CONVERSATIONS: "You already have too many open chats.",
    ErrorCode.QUEUE_ENTRY_NOT_FOUND: "That customer is no longer waiting.",
    ErrorCode.ALREADY_ENGAGED: "Another agent already took that customer.",
    ErrorCode.NOT_IN_QUEUE: "You are not signed in to that queue.",
    ErrorCode.AGENT_AT_CAPACITY: "You have reached your limit of chats.",
    ErrorCode.EMPTY_MESSAGE: "The message is empty.",
    ErrorCode.MESSAGE_TOO_LONG: "The message is too long.",
    ErrorCode.TOO_MANY_MEDIA_URLS: "The message has too many attachments.",
    ErrorCode.CONVERSATION_FULL: "This conversation cannot take more messages.",
    ErrorCode.MESSAGE_NOT_FOUND: "That message does not exist.",
    ErrorCode.INVALID_RRWEB: "The session recording could not be accepted.",
    ErrorCode.RRWEB_HASH_MISMATCH: "The session recording could not be accepted.",
    ErrorCode.RRWEB_OUT_OF_ORDER: "The session recording could not be accepted.",
    ErrorCode.RRWEB_TOO_LARGE: "The session recording is too large.",
}
"""Every error code the engine itself sends, with its ``user_message``."""

DEFAULT_USER_MESSAGE = "The message could not be processed."
"""The ``user_message`` of the other codes (the codec's and the shell's)."""

_USER_MESSAGES: Mapping[str, str] = {code.value: text for code, text in ERROR_CODES.items()}


def error_frame(code: str, reason: str, *, conversation_uuid: str | None = None, object_id: str | None = None) -> Frame:
    """The error frame (docs/protocol.md, section 5): ``type`` ``event``, no
    ``event_type``, the ``error`` extra key."""
    user_message = _USER_MESSAGES.get(code, DEFAULT_USER_MESSAGE)
    error = Error(error_code=code, developer_message=reason, user_message=user_message, object_id=object_id)
    return Frame(type=FrameType.EVENT, conversation_uuid=conversation_uuid, error=error)


def clip(text: str) -> str:
    """A client-chosen string, shortened for an error message."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


# ---------------------------------------------------------------------------
# Field limits


@dataclass(frozen=True, slots=True)
class FieldLimits:
    """The longest value, in characters (``entries``: list entries), of each
    kind of field a client names. docs/protocol.md, section 4.5."""

    name: int = 200
    """Participant names (start entry, handshake ``name``, tokens), custom status names."""
    email: int = 254
    """Email addresses (RFC 5321's longest path)."""
    language: int = 35
    """Language codes (RFC 5646's recommended buffer for a language tag)."""
    queue_name: int = 200
    """Queue names (``queue_name``, ``serve --queues``)."""
    identifier: int = 200
    """Client-chosen ids: ``client_message_id``, ``cart_id``, ``ucacid``, custom status uuids, upload keys."""
    code: int = 100
    """Coupon codes and cart item ids."""
    url: int = 2048
    """URLs: ``media_urls`` entries, the webchat context ``url``, a cart item's ``*_url``."""
    text: int = 10_000
    """Other free text: ``typing`` values, cart item descriptions and attributes, profile texts."""
    entries: int = 100
    """Entries of a list a client sends: ``add item`` items, lists inside a cart item, profile lists."""
    digest: int = 64
    """A SHA-256 in hex (rrweb ``data_total_sha256``; refused with ``invalid_rrweb``)."""


LIMITS = FieldLimits()
"""The limits the engine, the front door and the REST side apply."""


def length_error(path: str, value: str | None, limit: int) -> str | None:
    """Why ``value`` is too long for the field at ``path`` (``None``: it is not)."""
    if value is not None and len(value) > limit:
        return f"{path}: {len(value)} characters, limit {limit}"
    return None


def check_length(path: str, value: str | None, limit: int, *, object_id: str | None = None) -> None:
    """Refuse (``field_too_long``) a ``value`` longer than ``limit`` characters."""
    if value is not None and len(value) > limit:
        reason = f"{path}: {len(value)} characters, limit {limit}"
        raise Refused(ErrorCode.FIELD_TOO_LONG, reason, object_id=object_id)


# ---------------------------------------------------------------------------
# The table

Kind = tuple[FrameType | None, EventType | None]
"""A frame's kind: ``(type, event_type)``, ``event_type`` ``None`` unless ``type`` is ``event``."""


class Rule(NamedTuple):
    """Who may send one kind of frame, and in which conversation states."""

    roles: frozenset[Role]
    """The roles that may send it."""
    states: frozenset[State] | None
    """For a kind that names a conversation (by ``conversation_uuid``): the
    states that conversation may be in, the sender being one of its present
    participants. ``None``: the kind names no conversation."""
    handler: str
    """The ``Engine`` method that handles it: ``handler(conv, member, frame,
    now)`` when :attr:`states` is set, else ``handler(client, frame, now)``;
    both return the deliveries."""
    row: int
    """Its row in docs/protocol.md, section 3."""


_BOTH = frozenset(Role)
_CUSTOMER = frozenset({Role.CUSTOMER})
_AGENT = frozenset({Role.AGENT})
_OPEN = frozenset({State.QUEUED, State.ENGAGED})
_ANY = frozenset(State)

RULES: Mapping[Kind, Rule] = {
    (FrameType.EVENT, EventType.WEBCHAT_START_CONVERSATION): Rule(_CUSTOMER, None, "_on_start", 1),
    (FrameType.CHECK_QUEUE_POSITION, None): Rule(_BOTH, _ANY, "_on_check_queue_position", 2),
    (FrameType.EVENT, EventType.ENGAGE_CUSTOMER): Rule(_AGENT, None, "_on_engage", 3),
    (FrameType.MESSAGE, None): Rule(_BOTH, _OPEN, "_on_message", 4),
    (FrameType.EVENT, EventType.TYPING): Rule(_BOTH, _OPEN, "_on_typing", 5),
    # a receipt may race the close (the goodbye read as the chat ends) or come after it: still recorded
    (FrameType.EVENT, EventType.READ_MESSAGE): Rule(_BOTH, _ANY, "_on_read", 6),
    (FrameType.EVENT, EventType.ADD_COUPON): Rule(_AGENT, _OPEN, "_on_add_coupon", 7),
    (FrameType.EVENT, EventType.ADD_ITEM): Rule(_AGENT, _OPEN, "_on_add_item", 7),
    (FrameType.EVENT, EventType.WEBCHAT_CONTEXT): Rule(_CUSTOMER, _OPEN, "_on_webchat_context", 8),
    (FrameType.EVENT, EventType.RRWEB): Rule(_CUSTOMER, _OPEN, "_on_rrweb", 9),
    (FrameType.EVENT, EventType.CONVERSATION_CLOSED): Rule(_BOTH, _OPEN, "_on_close", 10),
    (FrameType.EVENT, EventType.PARTICIPANT_LEFT): Rule(_BOTH, _OPEN, "_on_leave", 11),
    (FrameType.PING, None): Rule(_BOTH, None, "_on_ping", 13),
}
"""The frames a client may send: kind -> :class:`Rule`. Anything else is ``unsupported_frame``."""

STATE_REFUSALS: Mapping[State, ErrorCode] = {
    State.CLOSED: ErrorCode.CONVERSATION_CLOSED,
}
"""The error code of a frame refused because of its conversation's state."""

for _kind, _rule in RULES.items():  # a rule may only exclude states that have a refusal code
    if _rule.states is not None and (_missing := set(State) - _rule.states - STATE_REFUSALS.keys()):
        raise AssertionError(f"RULES[{_kind}] excludes {_missing} and STATE_REFUSALS has no code for it")


# ---------------------------------------------------------------------------
# Refusal reasons (built only when a frame is refused)

_A_ROLE: Mapping[Role, str] = {Role.CUSTOMER: "a customer", Role.AGENT: "an agent"}


def describe(kind: Kind) -> str:
    """``event "typing"``, ``type "message"``, or ``an event without event_type``."""
    kind_type, event = kind
    if event is not None:
        return f'event "{event}"'
    if kind_type is FrameType.EVENT:
        return "an event without event_type"
    return f'type "{kind_type}"'


def unsupported(kind: Kind) -> str:
    """Why a kind outside the table is refused."""
    return f"{describe(kind)} is not accepted from clients"


def forbidden(kind: Kind, role: Role) -> str:
    """Why a kind is refused from ``role``."""
    return f"{describe(kind)} is not accepted from {_A_ROLE[role]}"


def not_in_state(kind: Kind, role: Role, state: State, conversation_uuid: str) -> str:
    """Why a kind is refused in a conversation in ``state``."""
    return (
        f"{describe(kind)} is not accepted from {_A_ROLE[role]} in a {state.value} conversation "
        f"(conversation {conversation_uuid} is {state.value})"
    )
