"""Restoring the engine's state from storage (part of the engine, sans I/O).

:meth:`RestoreMixin.restore` takes a :class:`Snapshot` (plain rows, read by
:mod:`simulator.mock.store` from the database; nothing here touches a file)
into an engine that has served nothing yet, and rebuilds what the engine
holds: participants with their resume tokens and agent identities, open
conversations (waiting ones back in their queues, in their order), the latest
closed ones, their members with what they read, their messages with their
transport statuses, held ``webchat context`` and rrweb recording, and the
queue statistics.

After a restart nobody is connected: every participant who is in an open
conversation, and every agent who had signed in by name, starts a reconnect
grace (``grace`` seconds, default the engine's ``reconnect_grace``) from
``now``. One who comes back in time, with its resume token (an agent: or a
JWT naming it), resumes as after any reconnect (``since`` replays what it
missed); one who does not leaves, as always. Derived state (unread counts,
own messages, the first unanswered message, epochs) is recomputed from the
messages, so storage keeps each fact once.

The held byte budget applies as it does live: restoring goes through the
retention (:mod:`.retention`), so a database larger than ``retain_bytes``
fills memory with the open conversations and the latest closed ones only.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from ..protocol import (
    ConversationEventWebchatContext,
    ConversationWebchatQueueStatusQueueEntry,
    Frame,
    TransportStatus,
    encoded_length,
)
from .account import MESSAGE_BYTES, SEQ_BYTES, STATUS_BYTES, text_bytes
from .base import EngineBase
from .conversation import Client, Conversation, Member, Role, State, StoredMessage
from .stats import QueueStats

__all__ = [
    "FLAG_AUTOPILOT",
    "FLAG_KNOWN",
    "ConversationRow",
    "MemberRow",
    "MessageRow",
    "ParticipantRow",
    "RestoreMixin",
    "Snapshot",
    "StatsRow",
]

FLAG_KNOWN = 1
"""An agent known by its name (resumable), or a customer a JWT vouched for (known by its uuid)."""
FLAG_AUTOPILOT = 2
"""The server's own simulated agent."""


class ParticipantRow(NamedTuple):
    uuid: str
    role: str
    arn: str
    name: str
    email: str | None
    language: str | None
    resume_token: str | None
    queues: tuple[str, ...]
    ring_key: int
    flags: int


class ConversationRow(NamedTuple):
    uuid: str
    arn: str
    queue_name: str
    queue_uuid: str
    seq: int
    start_ms: int
    joined_at: float
    customer_uuid: str
    entry: ConversationWebchatQueueStatusQueueEntry
    state: str
    engaged_at: float | None
    context: ConversationEventWebchatContext | None
    closed_ms: int | None


class MemberRow(NamedTuple):
    conversation_uuid: str
    participant_uuid: str
    joined_ms: int
    left_ms: int | None
    language: str | None
    last_read_seq: int


class MessageRow(NamedTuple):
    """A message as stored (its lists as JSON text, decoded when restored)."""

    conversation_uuid: str
    seq: int
    uuid: str
    author_uuid: str
    author_name: str | None
    epoch: int
    body: str | None
    client_message_id: str | None
    media_urls: str | None
    """JSON: a list of urls."""
    language: str | None
    statuses: str
    """JSON: ``[[participant ARN, transport status], …]``."""
    readers: str | None
    """JSON: the ARNs of those who read it."""
    status_epoch: int


class StatsRow(NamedTuple):
    queue_name: str
    engaged: int
    active: int
    abandoned: int
    chats_ended: int
    hold_seconds: float
    chat_seconds: float
    abandon_seconds: float


@dataclass(slots=True)
class Snapshot:
    """What storage holds, as rows (conversations in ``seq`` order, messages
    in conversation then ``seq`` order, rrweb frames in the order held)."""

    participants: Sequence[ParticipantRow] = ()
    conversations: Sequence[ConversationRow] = ()
    members: Sequence[MemberRow] = ()
    messages: Iterable[MessageRow | tuple[Any, ...]] = ()
    """:class:`MessageRow` values or plain tuples in its order (as a database cursor gives them)."""
    stats: Sequence[StatsRow] = ()
    rrweb: dict[str, list[Frame]] = field(default_factory=dict)
    closed_total: int = 0
    """Closed conversations stored (those restored are the latest of them)."""


@dataclass(slots=True, eq=False)
class _Built:
    """What :meth:`RestoreMixin._build` made of a snapshot."""

    convs: dict[str, Conversation] = field(default_factory=dict)
    closed_at: dict[Conversation, int] = field(default_factory=dict)
    flags: dict[Client, int] = field(default_factory=dict)
    """The participants created, with their stored flags."""
    top: int = 0
    """The largest sequence number (join order, ring key) seen."""
    messages: int = 0
    skipped: int = 0


class RestoreMixin(EngineBase):
    """:meth:`restore`, then :meth:`restore_closed` as often as needed, then :meth:`restore_finished`."""

    _restored_clients: dict[str, Client]

    def restore(self, snapshot: Snapshot, now: float, *, grace: float | None = None) -> dict[str, int]:
        """Rebuild the state ``snapshot`` holds (see the module documentation);
        return what was restored, counted. Conversations of a queue this
        engine does not have are skipped (counted as ``skipped``). Closed
        conversations may come later, in parts (:meth:`restore_closed`)."""
        if self._conversations or self._conns or self._agents_by_name:
            raise RuntimeError("restore: the engine has served already; restore into a new one")
        cfg = self.config
        self._restored_clients: dict[str, Client] = {}
        built = self._build(snapshot, self._restored_clients)
        for s in snapshot.stats:
            if (queue := self._queues.get(s.queue_name)) is not None:
                queue.stats = QueueStats(*s[1:])
        self._seq = itertools.count(built.top + 1)
        grace = cfg.reconnect_grace if grace is None else grace
        kept = self._restore_wiring(built.convs, built.closed_at, built.flags, now, grace)
        # A seeded engine would hand out the first run's uuids again: move its generator on, reproducibly.
        self._rng.seed(f"{self._rng.getrandbits(64)}:{len(built.convs)}:{built.messages}")
        self._closed_count = snapshot.closed_total
        return {
            "participants": len(self._restored_clients),
            "resumable": kept,
            "conversations": len(built.convs),
            "open": self._open_count,
            "messages": built.messages,
            "skipped": built.skipped,
        }

    def restore_closed(self, snapshot: Snapshot) -> int:
        """Add the closed conversations of ``snapshot`` (a part of a restart
        after :meth:`restore`, oldest first), retained as closed ones are;
        how many. Their participants are those restored already, or new
        records (nobody can resume into a closed conversation)."""
        built = self._build(snapshot, self._restored_clients)
        added = 0
        for conv in sorted(built.closed_at, key=lambda c: (built.closed_at[c], c.seq)):
            if conv.uuid not in self._conversations:
                self._conversations[conv.uuid] = conv
                self._retention.closed(conv)
                added += 1
        return added

    def restore_finished(self) -> None:
        """No more parts to come: forget the index of restored participants."""
        self._restored_clients = {}

    def _build(self, snapshot: Snapshot, clients: dict[str, Client]) -> _Built:
        """The objects of ``snapshot``'s rows (participants added to ``clients``, or found there)."""
        cfg = self.config
        built = _Built()
        for p in snapshot.participants:
            if p.uuid in clients:
                continue
            role = Role(p.role)
            client = Client(
                role=role,
                uuid=p.uuid,
                arn=p.arn,
                name=p.name,
                email=p.email,
                language=p.language,
                resume_token=p.resume_token,
                ring_key=p.ring_key,
                autopilot=bool(p.flags & FLAG_AUTOPILOT),
            )
            if role is Role.AGENT:
                client.queues = tuple(q for q in p.queues if q in self._queues)
            clients[p.uuid] = client
            built.flags[client] = p.flags
            built.top = max(built.top, p.ring_key)
        convs = built.convs
        for row in snapshot.conversations:
            customer = clients.get(row.customer_uuid)
            if row.queue_name not in self._queues or customer is None:
                built.skipped += 1
                continue
            conv = Conversation(
                uuid=row.uuid,
                arn=row.arn,
                merchant_id=cfg.merchant_id,
                queue_name=row.queue_name,
                queue_uuid=row.queue_uuid,
                seq=row.seq,
                start_ms=row.start_ms,
                joined_at=row.joined_at,
                customer=customer,
                entry=row.entry,
                entry_bytes=encoded_length(row.entry),
                held=self._held,
                state=State(row.state),
                engaged_at=row.engaged_at,
                context=row.context if row.state != State.CLOSED.value else None,
            )
            convs[row.uuid] = conv
            if conv.state is State.CLOSED:
                built.closed_at[conv] = row.closed_ms or 0
            built.top = max(built.top, row.seq)
        for m in snapshot.members:
            conv_or_none = convs.get(m.conversation_uuid)
            client_or_none = clients.get(m.participant_uuid)
            if conv_or_none is None or client_or_none is None:
                continue
            member = Member(
                client=client_or_none,
                joined_ms=m.joined_ms,
                language=m.language,
                left_ms=m.left_ms,
                last_read_seq=m.last_read_seq,
            )
            conv_or_none.members[client_or_none] = member
        built.messages = self._restore_messages(convs, snapshot.messages)
        for conv_uuid, frames in snapshot.rrweb.items():
            held_conv = convs.get(conv_uuid)
            if held_conv is None or held_conv.state is State.CLOSED:
                continue
            for frame in frames:
                if frame.event_rrweb is not None:
                    held_conv.hold_rrweb(frame.event_rrweb, frame, limit=cfg.rrweb_hold_bytes)
        return built

    def _restore_messages(self, convs: dict[str, Conversation], rows: Iterable[MessageRow | tuple[Any, ...]]) -> int:
        """The messages, rebuilt as :meth:`.Conversation.store` built them (and
        :meth:`.Conversation.mark_read` updated them), with what derives from
        them; rows come grouped by conversation (the hot loop of a restart:
        locals, and the byte account charged once per conversation)."""
        count = 0
        merchant_id = self.config.merchant_id
        sent = {status.value: status for status in TransportStatus}
        loads = orjson.loads
        customer_role = Role.CUSTOMER
        current = ""
        conv: Conversation | None = None
        authors: dict[str, Member] = {}
        messages: list[StoredMessage] = []
        by_uuid: dict[str, StoredMessage] = {}
        dedup = False
        charged = 0
        for row in rows:
            conv_uuid, _, uuid, author_uuid, name, epoch, body, client_id, media, language, states, readers, touched = (
                row
            )
            if conv_uuid != current:
                _charge(conv, charged, len(messages))
                current, charged = conv_uuid, 0
                conv = convs.get(conv_uuid)
                if conv is not None:
                    authors = {m.client.uuid: m for m in conv.members.values()}
                    messages, by_uuid = conv.messages, conv.by_uuid
                    dedup = conv.state is not State.CLOSED
            author = authors.get(author_uuid) if conv is not None else None
            if conv is None or author is None:
                continue
            client = author.client
            statuses = [(arn, sent[status]) for arn, status in loads(states)]
            urls = loads(media) if media else None
            size = MESSAGE_BYTES + STATUS_BYTES * len(statuses) + text_bytes(uuid)
            if body is not None:
                size += text_bytes(body)
            if client_id is not None:
                size += text_bytes(client_id)
            if media:
                size += sum(map(text_bytes, urls or ()))
            seq = conv.dropped + len(messages) + 1  # gaps (none expected) close up
            stored = StoredMessage(
                seq=seq,
                author=author,
                epoch=epoch,
                uuid=uuid,
                author_arn=client.arn,
                author_name=name if name is not None else client.name,
                body=body,
                client_message_id=client_id,
                language=language,
                media_urls=urls,
                merchant_id=merchant_id,
                statuses=statuses,
                conversation_uuid=conv_uuid,
                conversation_arn=conv.arn,
                readers=set(loads(readers)) if readers else None,
                status_epoch=touched,
                size=size,
            )
            messages.append(stored)
            by_uuid[uuid] = stored
            if client_id is not None and dedup:
                conv.by_client_id[author, client_id] = stored
            charged += size
            if epoch > conv.last_epoch or touched > conv.last_epoch:
                conv.last_epoch = max(epoch, touched)
            author.own_seqs.append(seq)
            if seq > author.last_read_seq:
                author.last_read_seq = seq
            author.last_message_ms = epoch
            if client.role is customer_role:
                if conv.first_unresponded_ms is None:
                    conv.first_unresponded_ms = epoch
            else:
                conv.first_unresponded_ms = None
            count += 1
        _charge(conv, charged, len(messages))
        return count

    def _restore_wiring(
        self,
        convs: dict[str, Conversation],
        closed_at: dict[Conversation, int],
        flags: dict[Client, int],
        now: float,
        grace: float,
    ) -> int:
        """Queues, indexes, budgets and graces of the restored objects; the
        number of participants who may resume."""
        keep: dict[Client, None] = {}
        for client, flag in flags.items():
            if client.role is Role.AGENT and flag & FLAG_KNOWN and client.name not in self._agents_by_name:
                self._agents_by_name[client.name] = client
                keep[client] = None
                for queue_name in client.queues:
                    self._queues[queue_name].agents[client] = None
        closed = sorted(closed_at, key=lambda c: (closed_at[c], c.seq))  # oldest first, as retention keeps them
        for conv in convs.values():
            if conv.state is State.CLOSED:
                continue
            self._conversations[conv.uuid] = conv
            self._entries[conv.queue_uuid] = conv
            self._open_count += 1
            if conv.state is State.QUEUED:
                self._queues[conv.queue_name].line.push(conv.seq, conv)
            for member in conv.members.values():
                if member.left_ms is not None:
                    continue
                client = member.client
                client.conversations[conv.uuid] = conv
                keep[client] = None
                if client.role is Role.AGENT and conv.state is State.ENGAGED:
                    client.chats += 1
                    client.last_chat_ms = max(client.last_chat_ms or 0, member.joined_ms)
            self._retention.wrote(conv)
        for conv in closed:
            self._conversations[conv.uuid] = conv
            self._retention.closed(conv)
        for client in keep:
            if client.role is Role.CUSTOMER:
                if client.resume_token is not None:
                    self._customers_by_token[client.resume_token] = client
                if flags[client] & FLAG_KNOWN:
                    self._customers_by_uuid[client.uuid] = client
            client.grace_until = now + grace
            heapq.heappush(self._graces, (client.grace_until, next(self._seq), client))
        for queue in self._queues.values():
            queue.status_changed(now, self.config.status_interval)
        return len(keep)


def _charge(conv: Conversation | None, size: int, count: int) -> None:
    """Charge a restored conversation's messages (``size`` bytes, ``count`` of them) to the byte account."""
    if conv is not None and count:
        conv.history_bytes += size
        conv.held_bytes += size + SEQ_BYTES * count
        conv.held.bytes += size + SEQ_BYTES * count
        conv.held.messages += count
