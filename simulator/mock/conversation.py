"""The state of conversations and participants, as the engine keeps it.

Plain mutable records, no behaviour beyond bookkeeping and building the wire
summaries; :mod:`simulator.mock.engine` decides what happens and when.

* :class:`Client` — one participant identity (a webchat visitor or an agent),
  bound to at most one connection at a time, surviving a disconnect for the
  reconnect grace period.
* :class:`Member` — a client's participation in one conversation (join/leave
  times, language, what it has read).
* :class:`Conversation` — one chat: its members, its messages (indexed by
  uuid and by author and ``client_message_id``), its queue entry, held context and
  rrweb recording; :meth:`Conversation.summary` builds the ``ConversationSummary``
  (the chat path writes it as bytes instead: :mod:`.wire`).
* :class:`StoredMessage` — one message as plain values (its model and frame
  made when needed).
* :class:`RRWebStream` — verification of chunked rrweb recordings with
  incremental hashing (O(1) memory per recording whatever its size) and a
  bounded buffer of the latest recording for agents who join later.

Every conversation keeps its share of the engine's byte account
(:class:`~.account.Held`) up to date as it stores messages and holds
recordings; :mod:`.retention` keeps the account within its budget by
dropping messages (:meth:`Conversation.forget_history`), recordings
(:meth:`Conversation.drop_recording`) and closed conversations
(:meth:`Conversation.release`).

ARNs follow Amazon Connect's layout (see :func:`conversation_arn` and
:func:`participant_arn`), under the merchant id as instance id.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, NamedTuple

from ..protocol import (
    ConversationEventRRWeb,
    ConversationEventWebchatContext,
    ConversationMessage,
    ConversationMessageTransportStatus,
    ConversationParticipant,
    ConversationSummary,
    ConversationWebchatQueueStatusQueueEntry,
    ErrorCode,
    EventType,
    Frame,
    FrameType,
    Medium,
    MessageType,
    RRWebType,
    TransportStatus,
)
from .account import (
    CONVERSATION_BYTES,
    MESSAGE_BYTES,
    RRWEB_FRAME_BYTES,
    SEQ_BYTES,
    STATUS_BYTES,
    WIRE_BYTES,
    Held,
    text_bytes,
)
from .wire import STATUS_ACTIVE, STATUS_DISCONNECTED, STATUS_LEFT, build, cached_dts, message_frame
from .wire import optional_dts as _optional_dts

__all__ = [
    "ARN_PREFIX",
    "Client",
    "ConnId",
    "Conversation",
    "Member",
    "RRWebRefusal",
    "RRWebStream",
    "Role",
    "State",
    "StoredMessage",
    "build",
    "cached_dts",
    "conversation_arn",
    "participant_arn",
]


ConnId = int
"""The server's handle of one websocket connection."""

ARN_PREFIX = "arn:aws:connect:us-east-1:000000000000:instance"
"""Every ARN the engine hands out starts with this."""


def conversation_arn(merchant_id: str, conversation_uuid: str) -> str:
    """``arn:aws:connect:us-east-1:000000000000:instance/DEMO/contact/<uuid>``."""
    return f"{ARN_PREFIX}/{merchant_id}/contact/{conversation_uuid}"


def participant_arn(merchant_id: str, role: Role, participant_uuid: str) -> str:
    """``…/instance/DEMO/agent/<uuid>`` for agents, ``…/participant/<uuid>`` for customers."""
    kind = "agent" if role is Role.AGENT else "participant"
    return f"{ARN_PREFIX}/{merchant_id}/{kind}/{participant_uuid}"


class Role(StrEnum):
    """Which side of a chat a connection is on."""

    CUSTOMER = "customer"
    AGENT = "agent"


class State(Enum):
    """Lifecycle of a conversation: waiting in a queue, chatting, over."""

    QUEUED = "queued"
    ENGAGED = "engaged"
    CLOSED = "closed"


@dataclass(eq=False, slots=True, kw_only=True)
class Client:
    """One participant identity; hashable by identity."""

    role: Role
    uuid: str
    arn: str
    name: str
    email: str | None = None
    language: str | None = None
    conn: ConnId | None = None
    grace_until: float | None = None
    """While disconnected: when the reconnect grace period ends."""
    conversations: dict[str, Conversation] = field(default_factory=dict)
    """Open conversations the client is in, plus closed ones it has not been told about."""
    resume_token: str | None = None
    """The secret that resumes (or takes over) this participant's session:
    a customer's from its first chat, an agent's from its first connect."""
    # Agents
    autopilot: bool = False
    """The server's own simulated agent: no connection may claim its name."""
    queues: tuple[str, ...] = ()
    ring_key: int = 0
    chats: int = 0
    """Open conversations the agent is in."""
    available: bool = False
    """Connected, not ``busy`` and below its chat limit (kept in the queues' round-robin rings)."""
    last_chat_ms: int | None = None
    chat_limit: int | None = None
    """Its own chat limit (REST profile ``chat_limit``); ``None``: the server's."""
    busy: bool = False
    """Set ``busy`` by hand (REST queue status): routed no new chats, may still engage by hand."""


@dataclass(eq=False, slots=True, kw_only=True)
class Member:
    """A client's participation in one conversation."""

    client: Client
    joined_ms: int
    language: str | None = None
    left_ms: int | None = None
    last_message_ms: int | None = None
    last_read_seq: int = 0
    """Messages 1..last_read_seq count as read by this member."""
    own_seqs: array[int] = field(default_factory=lambda: array("q"))
    """Sequence numbers of the messages this member wrote (ascending; 8 bytes each)."""
    wire: Any = None
    """Its parts of the chat path's JSON, kept by :mod:`.wire` (which checks they still hold)."""

    @property
    def present(self) -> bool:
        """Joined and not left."""
        return self.left_ms is None

    def unread(self, total: int) -> int:
        """Messages by others after the last one this member read."""
        after = total - self.last_read_seq
        own_after = len(self.own_seqs) - bisect_right(self.own_seqs, self.last_read_seq)
        return after - own_after

    def participant(self, total: int) -> ConversationParticipant:
        """The wire view of this member; ``total`` is the conversation's message count."""
        client = self.client
        if self.left_ms is not None:
            status = STATUS_LEFT
        elif client.conn is None:
            status = STATUS_DISCONNECTED
        else:
            status = STATUS_ACTIVE
        return build(
            ConversationParticipant,
            conversation_participant_arn=client.arn,
            conversation_participant_name=client.name,
            conversation_participant_uuid=client.uuid,
            email=client.email,
            joined_dts=cached_dts(self.joined_ms),
            language_iso_code=self.language,
            last_message_dts=_optional_dts(self.last_message_ms),
            left_dts=_optional_dts(self.left_ms),
            status=status,
            unread_messages=self.unread(total),
        )


@dataclass(eq=False, slots=True, kw_only=True)
class StoredMessage:
    """One message of a conversation: its fields as plain values (no model:
    one per message would cost its construction and ~1.5 KB more); the
    ``ConversationMessage`` (:attr:`model`) and its frame are made when needed."""

    seq: int
    """1-based place in the conversation."""
    author: Member
    epoch: int
    uuid: str
    """``conversation_message_uuid``."""
    author_arn: str
    author_name: str
    body: str | None
    client_message_id: str | None
    language: str | None
    """The author's language when it wrote it."""
    media_urls: list[str] | None
    merchant_id: str
    statuses: list[tuple[str, TransportStatus]]
    """Transport status per other participant (``conversation_participant_arn``, ``status``), in order."""
    conversation_uuid: str
    conversation_arn: str
    readers: set[str] | None = None
    """ARNs of the participants who reported reading it (``None``: nobody yet)."""
    status_epoch: int = 0
    """When its transport statuses last changed (a read receipt; 0: never), on
    the scale of message epochs: a resume after ``since`` replays it to its
    author as ``updated message`` if this is newer."""
    size: int = 0
    """Its share of the byte account (see :class:`Held`)."""

    @property
    def model(self) -> ConversationMessage:
        """The ``ConversationMessage`` (built on each use: REST, replays, read receipts)."""
        return build(
            ConversationMessage,
            author_conversation_participant_arn=self.author_arn,
            author_conversation_participant_name=self.author_name,
            body=self.body,
            client_message_id=self.client_message_id,
            conversation_message_uuid=self.uuid,
            language_iso_code=self.language,
            media_urls=list(self.media_urls) if self.media_urls else None,
            merchant_id=self.merchant_id,
            message_dts=cached_dts(self.epoch),
            message_epoch=self.epoch,
            transport_statuses=[
                build(ConversationMessageTransportStatus, conversation_participant_arn=arn, status=status)
                for arn, status in self.statuses
            ],
            type=MessageType.MESSAGE,
        )

    @property
    def frame(self) -> Frame:
        """The ``message`` frame that carries it, its bytes written at once
        (:func:`.wire.message_frame`)."""
        return message_frame(self)

    def model_frame(self) -> Frame:
        """:attr:`frame` built from :attr:`model` (what the fast path must equal)."""
        return build(
            Frame,
            type=FrameType.MESSAGE,
            conversation_uuid=self.conversation_uuid,
            conversation_arn=self.conversation_arn,
            message=self.model,
        )


@dataclass(eq=False, slots=True, kw_only=True)
class Conversation:
    """One chat and everything the engine remembers about it."""

    uuid: str
    arn: str
    merchant_id: str
    queue_name: str
    queue_uuid: str
    seq: int
    """Join sequence number in its queue."""
    start_ms: int
    joined_at: float
    customer: Client
    entry: ConversationWebchatQueueStatusQueueEntry
    entry_bytes: int = 0
    """The encoded length of :attr:`entry` (for the byte bound of ``queue status update``)."""
    held: Held = field(default_factory=Held)
    """The engine's byte account, which this conversation keeps up to date."""
    held_bytes: int = 0
    """This conversation's share of :attr:`held`."""
    history_bytes: int = 0
    """The share of the messages held in :attr:`messages`."""
    dropped: int = 0
    """Messages dropped from memory, oldest first (:meth:`forget_history`): counted, no longer held."""
    state: State = State.QUEUED
    engaged_at: float | None = None
    members: dict[Client, Member] = field(default_factory=dict)
    messages: list[StoredMessage] = field(default_factory=list)
    """The messages held, oldest first: the last :attr:`message_count` minus :attr:`dropped`."""
    by_uuid: dict[str, StoredMessage] = field(default_factory=dict)
    by_client_id: dict[tuple[Member, str], StoredMessage] = field(default_factory=dict)
    """Messages by (author, ``client_message_id``): a sender's resend is recognised,
    another participant's message with the same id is not one."""
    last_epoch: int = 0
    first_unresponded_ms: int | None = None
    context: ConversationEventWebchatContext | None = None
    rrweb: RRWebStream = field(default_factory=lambda: RRWebStream())
    # Queue position pushes
    told_position: tuple[int, bool] | None = None
    pushed_at: float = -math.inf
    wire: Any = None
    """Its parts of the chat path's JSON, kept by :mod:`.wire`."""

    def __post_init__(self) -> None:
        self._charge(CONVERSATION_BYTES)

    def present(self) -> Iterator[Member]:
        """Members currently joined."""
        return (m for m in self.members.values() if m.left_ms is None)

    @property
    def message_count(self) -> int:
        """Messages ever stored in this conversation, held or dropped."""
        return self.dropped + len(self.messages)

    def _charge(self, delta: int) -> None:
        self.held_bytes += delta
        self.held.bytes += delta

    def next_epoch(self, now_ms: int) -> int:
        """A message epoch for ``now_ms``, strictly after every earlier one, so
        that "messages newer than epoch X" never misses one written in the
        same millisecond."""
        epoch = max(now_ms, self.last_epoch + 1)
        self.last_epoch = epoch
        return epoch

    def event(self, event_type: EventType, **payload: Any) -> Frame:
        """An ``event`` frame of this conversation carrying ``payload``."""
        return build(
            Frame,
            type=FrameType.EVENT,
            event_type=event_type,
            conversation_uuid=self.uuid,
            conversation_arn=self.arn,
            **payload,
        )

    def store(
        self,
        author: Member,
        *,
        message_uuid: str,
        now_ms: int,
        body: str | None,
        client_message_id: str | None = None,
        media_urls: list[str] | None = None,
    ) -> StoredMessage:
        """Stamp a message by ``author``, store it and update the summary fields.

        Transport status per other joined participant: ``sent`` if connected,
        ``queued`` if not. Writing counts as having read everything before.
        An agent's message answers the customer (clears
        ``customer_first_message_unresponded_to_dts``).
        """
        epoch = self.next_epoch(now_ms)
        client = author.client
        statuses = [
            (m.client.arn, TransportStatus.SENT if m.client.conn is not None else TransportStatus.QUEUED)
            for m in self.members.values()
            if m.left_ms is None and m is not author
        ]
        seq = self.dropped + len(self.messages) + 1
        size = MESSAGE_BYTES + STATUS_BYTES * len(statuses) + text_bytes(message_uuid)
        if body is not None:
            size += text_bytes(body)
        if client_message_id is not None:
            size += text_bytes(client_message_id)
        if media_urls:
            size += sum(map(text_bytes, media_urls))
        stored = StoredMessage(
            seq=seq,
            author=author,
            epoch=epoch,
            uuid=message_uuid,
            author_arn=client.arn,
            author_name=client.name,
            body=body,
            client_message_id=client_message_id,
            language=author.language,
            media_urls=list(media_urls) if media_urls else None,
            merchant_id=self.merchant_id,
            statuses=statuses,
            conversation_uuid=self.uuid,
            conversation_arn=self.arn,
            size=size,
        )
        self.messages.append(stored)
        self.history_bytes += size
        self._charge(size + SEQ_BYTES)
        self.held.messages += 1
        self.by_uuid[message_uuid] = stored
        if client_message_id is not None:
            self.by_client_id[author, client_message_id] = stored
        author.own_seqs.append(seq)
        author.last_read_seq = seq
        author.last_message_ms = epoch
        if client.role is Role.CUSTOMER:
            if self.first_unresponded_ms is None:
                self.first_unresponded_ms = epoch
        else:
            self.first_unresponded_ms = None
        return stored

    def forget_history(self, limit: int) -> int:
        """Drop the oldest messages from memory until those held take at most
        ``limit`` bytes of the account, always keeping the latest one; return
        how many were dropped. They still count (:attr:`message_count`,
        unread counts) but are no longer replayed, found by read receipts or
        recognised as resends."""
        messages = self.messages
        last = len(messages) - 1
        excess = self.history_bytes - limit
        count = freed = 0
        while count < last and freed < excess:
            stored = messages[count]
            freed += stored.size
            del self.by_uuid[stored.uuid]
            client_id = stored.client_message_id
            if client_id is not None and self.by_client_id.get((stored.author, client_id)) is stored:
                del self.by_client_id[stored.author, client_id]
            count += 1
        if count:
            del messages[:count]
            self.dropped += count
            self.history_bytes -= freed
            self._charge(-freed)
            self.held.messages -= count
        return count

    def drop_recording(self) -> bool:
        """Let go of the held rrweb recording (agents who join later get none
        until the next ``init``); False if none was held."""
        freed = self.rrweb.release()
        self._charge(-freed)
        return freed > 0

    def hold_rrweb(self, part: ConversationEventRRWeb, frame: Frame, *, limit: int) -> None:
        """:meth:`RRWebStream.hold`, on the account."""
        self._charge(self.rrweb.hold(part, frame, limit=limit))

    def keep_wire(self, parts: Any) -> None:
        """Keep :mod:`.wire`'s encoded parts of this conversation (on the account)."""
        if self.wire is None:
            self._charge(WIRE_BYTES)
        self.wire = parts

    def drop_wire(self) -> None:
        """Forget the encoded parts :mod:`.wire` keeps (made again if needed)."""
        if self.wire is not None:
            self._charge(-WIRE_BYTES)
            self.wire = None
        for member in self.members.values():
            member.wire = None

    def release(self) -> None:
        """The engine forgets this (closed) conversation: its messages and its
        share of the account go (a participant still in its reconnect grace
        is told it closed, without the messages)."""
        self.drop_wire()
        self.held.messages -= len(self.messages)
        self.dropped += len(self.messages)
        self.messages = []
        self.by_uuid.clear()
        self.by_client_id.clear()
        self.history_bytes = 0
        self._charge(-self.held_bytes)

    def mark_read(self, stored: StoredMessage, reader: Member, now_ms: int) -> bool:
        """``reader`` read ``stored`` (and everything before it) at ``now_ms``;
        False if it had already said so or wrote it. The stored message gets
        the reader's transport status ``read``, stamped after every message
        epoch so far (:attr:`StoredMessage.status_epoch`)."""
        arn = reader.client.arn
        if stored.author is reader or (stored.readers is not None and arn in stored.readers):
            return False
        if stored.readers is None:
            stored.readers = set()
        stored.readers.add(arn)
        reader.last_read_seq = max(reader.last_read_seq, stored.seq)
        statuses = [s for s in stored.statuses if s[0] != arn]
        statuses.append((arn, TransportStatus.READ))
        stored.statuses = statuses
        stored.status_epoch = max(now_ms, self.last_epoch + 1)
        return True

    def summary(self) -> ConversationSummary:
        """The ``ConversationSummary`` as of now.

        ``unread_messages`` is true when any joined participant has unread
        messages (the summary is built once for every recipient).
        """
        total = self.dropped + len(self.messages)
        last = self.messages[-1] if self.messages else None
        participants = []
        unread = False
        for member in self.members.values():
            participant = member.participant(total)
            participants.append(participant)
            if member.left_ms is None and participant.unread_messages:
                unread = True
        last_dts = cached_dts(last.epoch) if last is not None else None
        first_unresponded = self.first_unresponded_ms
        return build(
            ConversationSummary,
            closed=self.state is State.CLOSED,
            conversation_arn=self.arn,
            conversation_uuid=self.uuid,
            customer_first_message_unresponded_to_dts=cached_dts(first_unresponded)
            if first_unresponded is not None
            else None,
            last_conversation_message_body=last.body if last is not None else None,
            last_conversation_participant_arn=last.author.client.arn if last is not None else None,
            last_conversation_participant_name=last.author.client.name if last is not None else None,
            last_interactive_message_dts=last_dts,
            last_message_dts=last_dts,
            medium=Medium.WEBSOCKET,
            merchant_id=self.merchant_id,
            message_count=total,
            participants=participants,
            start_dts=cached_dts(self.start_ms),
            unread_messages=unread,
            visible=True,
        )


# ---------------------------------------------------------------------------
# rrweb recordings


class RRWebRefusal(NamedTuple):
    """Why a chunk was refused: an engine error code and a precise reason."""

    code: ErrorCode
    reason: str


class RRWebStream:
    """Checks the rrweb chunks of one conversation and holds the latest recording.

    A payload is sent as parts ``1..data_total_parts`` in order, each with the
    SHA-256 (hex) of its ``data``; the last part's ``data_total_sha256`` is the
    SHA-256 of the concatenated ``data`` of all parts. Parts are hashed as they
    arrive, so memory stays O(1) per payload. A new part 1 starts a new payload
    (an unfinished one is dropped).

    Accepted frames since the latest ``init`` part 1 are held (up to
    ``hold_bytes`` of ``data``) for agents who join later; beyond that the
    recording is no longer held until the next ``init``. :attr:`cost` is the
    held frames' share of the byte account (see :class:`Held`).
    """

    __slots__ = (
        "_event_index",
        "_hasher",
        "_next_part",
        "_size",
        "_total_parts",
        "cost",
        "held",
        "held_bytes",
        "holding",
    )

    def __init__(self) -> None:
        self._event_index: int | None = None
        self._next_part = 0
        self._total_parts = 0
        self._size = 0
        self._hasher: Any = None
        self.held: list[Frame] = []
        self.held_bytes = 0
        self.holding = False
        self.cost = 0

    def check(self, part: ConversationEventRRWeb, *, max_parts: int, max_bytes: int) -> RRWebRefusal | None:
        """Accept ``part`` (and advance) or say why not (and change nothing,
        except that a payload whose total hash or size fails is dropped)."""
        data, number, total, digest = part.data, part.data_part, part.data_total_parts, part.data_sha256
        if data is None or number is None or total is None or digest is None:
            missing = [
                name
                for name, value in (
                    ("data", data),
                    ("data_part", number),
                    ("data_total_parts", total),
                    ("data_sha256", digest),
                )
                if value is None
            ]
            return RRWebRefusal(ErrorCode.INVALID_RRWEB, "event_rrweb." + ", event_rrweb.".join(missing) + ": required")
        if not 1 <= total <= max_parts:
            return RRWebRefusal(
                ErrorCode.INVALID_RRWEB, f"event_rrweb.data_total_parts: {total} is not between 1 and {max_parts}"
            )
        if not 1 <= number <= total:
            reason = f"event_rrweb.data_part: {number} is not between 1 and {total}"
            return RRWebRefusal(ErrorCode.INVALID_RRWEB, reason)
        raw = data.encode()
        actual = hashlib.sha256(raw).hexdigest()
        if actual != digest.lower():
            return RRWebRefusal(
                ErrorCode.RRWEB_HASH_MISMATCH, f"event_rrweb.data_sha256: part {number} of {total} hashes to {actual}"
            )
        if number == 1:
            self._event_index = part.event_index
            self._total_parts = total
            self._size = 0
            self._hasher = hashlib.sha256()
        elif number != self._next_part or total != self._total_parts or part.event_index != self._event_index:
            expected = (
                f"part {self._next_part} of {self._total_parts} of event_index {self._event_index}"
                if self._next_part
                else "part 1 of a new payload"
            )
            return RRWebRefusal(
                ErrorCode.RRWEB_OUT_OF_ORDER,
                f"event_rrweb.data_part: got part {number} of {total} of event_index {part.event_index}, "
                f"expected {expected}",
            )
        if self._size + len(raw) > max_bytes:
            self._next_part = 0
            reason = f"event_rrweb: the payload exceeds {max_bytes} bytes; dropped"
            return RRWebRefusal(ErrorCode.RRWEB_TOO_LARGE, reason)
        if number == total:
            self._hasher.update(raw)
            whole = self._hasher.hexdigest()
            self._next_part = 0
            self._hasher = None
            expected_total = part.data_total_sha256
            if expected_total is None:
                return RRWebRefusal(ErrorCode.INVALID_RRWEB, "event_rrweb.data_total_sha256: required on the last part")
            if whole != expected_total.lower():
                return RRWebRefusal(
                    ErrorCode.RRWEB_HASH_MISMATCH,
                    f"event_rrweb.data_total_sha256: the {total} parts hash to {whole}; payload dropped",
                )
            return None
        self._hasher.update(raw)
        self._size += len(raw)
        self._next_part = number + 1
        return None

    def hold(self, part: ConversationEventRRWeb, frame: Frame, *, limit: int) -> int:
        """Remember an accepted, relayed ``frame`` for agents who join later;
        return the change of :attr:`cost`."""
        before = self.cost
        if part.type is RRWebType.INIT and part.data_part == 1:
            self.release()
            self.holding = True
        if not self.holding:
            return self.cost - before
        data = part.data or ""
        if self.held_bytes + len(data) > limit:
            self.release()
            return self.cost - before
        self.held.append(frame)
        self.held_bytes += len(data)
        self.cost += text_bytes(data) + RRWEB_FRAME_BYTES
        return self.cost - before

    def release(self) -> int:
        """Stop holding the recording (until the next ``init``); return the cost freed."""
        freed = self.cost
        self.held = []
        self.held_bytes = 0
        self.holding = False
        self.cost = 0
        return freed
