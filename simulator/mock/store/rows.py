"""The engine's journal records as SQL (part of :mod:`.store`).

:class:`Rows` turns the records of one event-loop turn
(:mod:`simulator.mock.journal`) into a :data:`~.database.Batch`. It runs in
the event loop's thread, right after the calls that made the records, and
reads the objects they name as they are then: each write is an idempotent
upsert of current state, so a record repeated in a turn costs one row and
the statements can run grouped by kind, in an order where every row's
parents come first (participants, conversations, members, messages, …).
Only the new fact of a chat message is inserted per message; what derives
from the messages (own messages, unread counts, the first unanswered one) is
recomputed by :mod:`simulator.mock.restore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from ...protocol import encode
from ..conversation import Client, Conversation, Role, State
from ..journal import CLIENT, CONTEXT, CONV, GONE, MEMBER, MSG, READ, RRWEB, STATE, Record
from ..queues import WebchatQueue
from ..restore import FLAG_AUTOPILOT, FLAG_KNOWN
from .database import Batch

__all__ = ["Rows"]

_PARTICIPANT = (
    "INSERT OR REPLACE INTO participants (uuid, role, arn, name, email, language, resume_token, queues, ring_key, "
    "flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_CONVERSATION = (
    "INSERT OR REPLACE INTO conversations (uuid, arn, queue_name, queue_uuid, seq, start_ms, joined_at, "
    "customer_uuid, entry, state, engaged_at, context, closed_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_STATE = "UPDATE conversations SET state = ?, engaged_at = ?, closed_ms = ?, context = ? WHERE uuid = ?"
_MEMBER = (
    "INSERT OR REPLACE INTO members (conversation_uuid, participant_uuid, joined_ms, left_ms, language, "
    "last_read_seq) VALUES (?, ?, ?, ?, ?, ?)"
)
_MESSAGE = (
    "INSERT OR REPLACE INTO messages (conversation_uuid, seq, uuid, author_uuid, author_name, epoch, body, "
    "client_message_id, media_urls, language, statuses, readers, status_epoch) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0)"
)
_READ = "UPDATE messages SET statuses = ?, readers = ?, status_epoch = ? WHERE conversation_uuid = ? AND seq = ?"
_CONTEXT = "UPDATE conversations SET context = ? WHERE uuid = ?"
_RRWEB_CLEAR = "DELETE FROM rrweb_frames WHERE conversation_uuid = ?"
_RRWEB = "INSERT OR REPLACE INTO rrweb_frames (conversation_uuid, n, frame) VALUES (?, ?, ?)"
_GONE = "UPDATE participants SET resume_token = NULL, flags = flags & ~1 WHERE uuid = ?"
_STATS = (
    "INSERT OR REPLACE INTO queue_stats (queue_name, engaged, active, abandoned, chats_ended, hold_seconds, "
    "chat_seconds, abandon_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

_dumps = orjson.dumps


def _statuses(stored: Any) -> str:
    return _dumps([(arn, status.value) for arn, status in stored.statuses]).decode()


class Rows:
    """Journal records to a batch; keeps, per conversation, which held rrweb
    frames are stored already (so a recording is written once, frame by frame)."""

    def __init__(
        self,
        queues: Mapping[str, WebchatQueue],
        agents_by_name: Mapping[str, Client],
        customers_by_uuid: Mapping[str, Client],
    ) -> None:
        self._queues = queues  # the engine's own mappings, read at each batch
        self._agents = agents_by_name
        self._vouched = customers_by_uuid
        self._rrweb: dict[str, tuple[object, int]] = {}  # conversation -> (first held frame, frames stored)

    def participant(self, client: Client) -> tuple[Any, ...]:
        """The ``participants`` row of ``client``."""
        index = self._agents.get(client.name) if client.role is Role.AGENT else self._vouched.get(client.uuid)
        flags = (FLAG_KNOWN if index is client else 0) | (FLAG_AUTOPILOT if client.autopilot else 0)
        return (
            client.uuid,
            client.role.value,
            client.arn,
            client.name,
            client.email,
            client.language,
            client.resume_token,
            _dumps(client.queues).decode(),
            client.ring_key,
            flags,
        )

    def batch(self, records: Iterable[Record]) -> Batch:
        """The SQL of ``records``."""
        clients: dict[Client, None] = {}
        convs: dict[Conversation, None] = {}
        states: dict[Conversation, float] = {}
        members: dict[tuple[Conversation, Any], None] = {}
        messages: list[tuple[Any, ...]] = []
        reads: list[tuple[Any, ...]] = []
        contexts: dict[Conversation, None] = {}
        recordings: dict[Conversation, None] = {}
        gone: list[tuple[str]] = []
        for record in records:
            op = record[0]
            if op == MSG:
                stored = record[1]
                media = stored.media_urls
                messages.append(
                    (
                        stored.conversation_uuid,
                        stored.seq,
                        stored.uuid,
                        stored.author.client.uuid,
                        stored.author_name,
                        stored.epoch,
                        stored.body,
                        stored.client_message_id,
                        _dumps(media).decode() if media else None,
                        stored.language,
                        _statuses(stored),
                    )
                )
            elif op == READ:
                conv, stored, member = record[1], record[2], record[3]
                readers = _dumps(sorted(stored.readers)).decode() if stored.readers else None
                reads.append((_statuses(stored), readers, stored.status_epoch, conv.uuid, stored.seq))
                members[conv, member] = None
            elif op == CONV:
                conv = record[1]
                convs[conv] = None
                clients[conv.customer] = None
                for member in conv.members.values():
                    members[conv, member] = None
            elif op == STATE:
                states[record[1]] = record[2]
            elif op == MEMBER:
                members[record[1], record[2]] = None
                clients[record[2].client] = None
            elif op == CLIENT:
                clients[record[1]] = None
            elif op == GONE:
                gone.append((record[1].uuid,))
            elif op == CONTEXT:
                contexts[record[1]] = None
            elif op == RRWEB:
                recordings[record[1]] = None
        batch: list[tuple[str, list[Any]]] = []
        if clients:
            batch.append((_PARTICIPANT, [self.participant(client) for client in clients]))
        if convs:
            batch.append((_CONVERSATION, [self._conversation(conv) for conv in convs]))
        if states:
            batch.append((_STATE, [self._state(conv, now) for conv, now in states.items()]))
            closed = [(conv.uuid,) for conv in states if conv.state is State.CLOSED]
            if closed:
                batch.append((_RRWEB_CLEAR, closed))
                for (uuid,) in closed:
                    self._rrweb.pop(uuid, None)
            batch.append((_STATS, [self._stats(queue) for queue in self._queues.values()]))
        if members:
            batch.append(
                (
                    _MEMBER,
                    [
                        (conv.uuid, m.client.uuid, m.joined_ms, m.left_ms, m.language, m.last_read_seq)
                        for conv, m in members
                    ],
                )
            )
        if messages:
            batch.append((_MESSAGE, messages))
        if reads:
            batch.append((_READ, reads))
        if contexts:
            open_ones = [conv for conv in contexts if conv.state is not State.CLOSED]
            batch.append((_CONTEXT, [(self._context(conv), conv.uuid) for conv in open_ones]))
        for conv in recordings:
            if conv.state is not State.CLOSED:
                batch += self._recording(conv)
        if gone:
            batch.append((_GONE, gone))
        return batch

    @staticmethod
    def _context(conv: Conversation) -> str | None:
        return conv.context.model_dump_json(exclude_none=True) if conv.context is not None else None

    def _conversation(self, conv: Conversation) -> tuple[Any, ...]:
        return (
            conv.uuid,
            conv.arn,
            conv.queue_name,
            conv.queue_uuid,
            conv.seq,
            conv.start_ms,
            conv.joined_at,
            conv.customer.uuid,
            conv.entry.model_dump_json(exclude_none=True),
            conv.state.value,
            conv.engaged_at,
            self._context(conv),
            None,
        )

    def _state(self, conv: Conversation, now: float) -> tuple[Any, ...]:
        closed = conv.state is State.CLOSED
        context = None if closed else self._context(conv)
        return (conv.state.value, conv.engaged_at, round(now * 1000) if closed else None, context, conv.uuid)

    @staticmethod
    def _stats(queue: WebchatQueue) -> tuple[Any, ...]:
        s = queue.stats
        return (
            queue.name,
            s.engaged,
            s.active,
            s.abandoned,
            s.chats_ended,
            s.hold_seconds,
            s.chat_seconds,
            s.abandon_seconds,
        )

    def _recording(self, conv: Conversation) -> list[tuple[str, list[Any]]]:
        """The held recording's frames not stored yet (all of them, the old ones
        cleared, if it started anew or was let go)."""
        held = conv.rrweb.held
        first, stored = self._rrweb.get(conv.uuid, (None, 0))
        out: list[tuple[str, list[Any]]] = []
        if not held or held[0] is not first or stored > len(held):
            out.append((_RRWEB_CLEAR, [(conv.uuid,)]))
            stored = 0
        if held:
            rows = [(conv.uuid, n, encode(frame).decode()) for n, frame in enumerate(held[stored:], start=stored)]
            if rows:
                out.append((_RRWEB, rows))
            self._rrweb[conv.uuid] = (held[0], len(held))
        else:
            self._rrweb.pop(conv.uuid, None)
        return out
