"""What the engine keeps in memory, within a byte budget (part of the engine).

The engine keeps open conversations (their messages, held rrweb recordings)
and, to answer ``conversation_closed`` and REST reads, the latest closed
ones. Every conversation keeps its share of one byte account
(:class:`~.account.Held`: message bodies, ids and urls, recordings and
a fixed overhead per message and per conversation, measured); this class
keeps that account within ``retain_bytes`` (``serve --retain-bytes``,
256 MiB by default), evicting, oldest first:

1. **closed conversations** (also beyond ``closed_conversations_kept`` by
   count): forgotten whole; a frame naming one then answers
   ``not_a_participant``, as for one that never existed;
2. then, if the open conversations alone are over the budget, the history
   of the **least recently active open conversation**: its messages but the
   latest are dropped from memory, and its held recording.

Besides, one open conversation's history is capped at
``history_hold_bytes`` (4 MiB by default): past it, its oldest messages are
dropped from memory. A dropped message still counts (``message_count``,
unread counts) but is no longer replayed to an agent who joins or a
participant who resumes, nor listed by REST, nor found by a read receipt
(``message_not_found``), nor recognised as a resend.

What cannot be dropped is each open conversation's floor (its overhead and
latest message): that grows with the open conversations, which connections
bound (``max_connections`` x ``max_open_conversations_per_customer``).

Work is O(1) per event plus what is evicted (each message and conversation
is evicted at most once): the closed conversations are a FIFO and the open
ones an LRU (``dict`` order, moved to the end on every write).
"""

from __future__ import annotations

from typing import Any

from .account import Held
from .conversation import Conversation

__all__ = ["Retention"]


class Retention:
    """The byte budget of one engine's conversations (see the module documentation)."""

    def __init__(
        self,
        held: Held,
        conversations: dict[str, Conversation],
        *,
        budget: int,
        history_bytes: int,
        closed_kept: int,
    ) -> None:
        self.held = held
        self._conversations = conversations  # the engine's: evicted ones are removed from it
        self.budget = budget
        self.history_bytes = history_bytes
        self.closed_kept = closed_kept
        self._closed: dict[str, Conversation] = {}  # retained closed conversations, oldest first
        self._active: dict[Conversation, None] = {}  # open ones, least recently written first
        self.evicted = 0
        self.dropped_messages = 0
        self.dropped_recordings = 0

    def wrote(self, conv: Conversation) -> None:
        """``conv`` (open) holds more: cap its history, mark it the most
        recently active, keep the budget."""
        if conv.history_bytes > self.history_bytes:
            self.dropped_messages += conv.forget_history(self.history_bytes)
        active = self._active
        if conv in active:
            del active[conv]
        active[conv] = None
        if self.held.bytes > self.budget:
            self._enforce()

    def closed(self, conv: Conversation) -> None:
        """``conv`` closed: it is retained, newest, until it is evicted (without
        the encoded parts of its chat path: no message is written to it any more)."""
        conv.drop_wire()
        self._active.pop(conv, None)
        self._closed[conv.uuid] = conv
        if len(self._closed) > self.closed_kept:
            self._evict_oldest()
        if self.held.bytes > self.budget:
            self._enforce()

    def _enforce(self) -> None:
        held, closed, active = self.held, self._closed, self._active
        while held.bytes > self.budget:
            if closed:
                self._evict_oldest()
            elif active:
                conv = next(iter(active))
                del active[conv]  # back in when it is written to again
                self.dropped_messages += conv.forget_history(0)
                if conv.drop_recording():
                    self.dropped_recordings += 1
            else:
                return  # only the open conversations' floors are left

    def _evict_oldest(self) -> None:
        conv_uuid, conv = next(iter(self._closed.items()))
        del self._closed[conv_uuid]
        self._conversations.pop(conv_uuid, None)
        conv.release()
        self.evicted += 1

    def status(self, open_conversations: int) -> dict[str, Any]:
        """The ``held`` section of the engine's status (``/healthz``)."""
        return {
            "conversations_open": open_conversations,
            "conversations_closed": len(self._closed),
            "messages": self.held.messages,
            "bytes": self.held.bytes,
            "budget_bytes": self.budget,
            "evicted_conversations": self.evicted,
            "dropped_messages": self.dropped_messages,
            "dropped_recordings": self.dropped_recordings,
        }
