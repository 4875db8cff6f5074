"""Webchat queues of the conversation engine.

:class:`WebchatQueue` is one named queue: who waits (oldest first), which
agents are logged in, whose round-robin turn it is, its statistics and the
coalescing of its pushes. It is built from three small, socket-free building
blocks, each O(log n) per operation:

* :class:`WaitingLine` — the customers waiting in one queue, oldest first, with
  the 0-based rank of any entry in O(log n) (a ``SortedList`` of join sequence
  numbers), so a queue of 10,000 costs no scan per join or leave.
* :class:`PositionPushes` — coalescing of ``queue position`` pushes: a leave
  only records *from which join sequence on* positions may have changed; the
  work proportional to the number of customers who moved is done at flush
  time, at most once per interval.
* :class:`RoundRobin` — the agents of one queue who can take a chat now, in
  login order, and the one whose turn is next.

Sequence numbers are plain increasing integers handed in by the caller (the
engine uses one counter for every queue, so heads of two queues compare by
age).

:meth:`WebchatQueue.status` builds the ``queue status update`` within a byte
bound (``max_bytes``, the engine's ``status_max_bytes``, 128 KiB by default,
far below the 1 MiB frame limit of common clients): the agents, in login
order, take at most half of it, the oldest waiting entries (at most
``entries_limit`` of them) what is left; the counts (``agent_count``,
``customer_waiting_count``, …) always cover everyone. Sizes are the encoded
lengths (a queue entry's is measured once, when it joins), so the bound holds
whatever characters the fields hold.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Generic, TypeVar

import orjson
from sortedcontainers import SortedList  # type: ignore[import-untyped, unused-ignore]

from ..protocol import (
    AgentStatus,
    ConversationWebchatQueueStatus,
    ConversationWebchatQueueStatusAgent,
)
from .conversation import Client, ConnId, Conversation, cached_dts
from .stats import QueueStats

__all__ = ["PositionPushes", "RoundRobin", "WaitingLine", "WebchatQueue"]

T = TypeVar("T")

_STATUS_BYTES = 1024
"""The envelope of a ``queue status update`` and its counts, at most (plus the queue name, twice)."""
_AGENT_BYTES = 192
"""One listed agent's keys and fixed-size values, at most (plus its ARN and name)."""


class WaitingLine(Generic[T]):
    """Items waiting in one queue, ordered by their sequence number."""

    __slots__ = ("_items", "_seqs")

    def __init__(self) -> None:
        self._seqs: Any = SortedList()
        self._items: dict[int, T] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, seq: object) -> bool:
        return seq in self._items

    def push(self, seq: int, item: T) -> None:
        """Add ``item`` with the (unused) sequence number ``seq``."""
        if seq in self._items:
            raise ValueError(f"sequence number {seq} is already in the line")
        self._seqs.add(seq)
        self._items[seq] = item

    def remove(self, seq: int) -> T:
        """Remove and return the item with sequence number ``seq``."""
        item = self._items.pop(seq)
        self._seqs.remove(seq)
        return item

    def get(self, seq: int) -> T | None:
        """The item with sequence number ``seq``, if it is in the line."""
        return self._items.get(seq)

    def rank(self, seq: int) -> int:
        """0-based place of ``seq`` in the line (``KeyError`` if absent)."""
        if seq not in self._items:
            raise KeyError(seq)
        rank: int = self._seqs.bisect_left(seq)
        return rank

    def head(self) -> tuple[int, T] | None:
        """The oldest ``(seq, item)``, or ``None`` when nobody waits."""
        if not self._items:
            return None
        seq: int = self._seqs[0]
        return seq, self._items[seq]

    def first(self, count: int) -> list[T]:
        """The ``count`` oldest items, oldest first."""
        items = self._items
        return [items[seq] for seq in islice(self._seqs, count)]

    def ranked_from(self, seq: int) -> Iterator[tuple[int, int, T]]:
        """``(rank, seq, item)`` of every item whose sequence number is >= ``seq``,
        in line order. Costs O(log n + k) for k items."""
        start: int = self._seqs.bisect_left(seq)
        items = self._items
        for offset, found in enumerate(self._seqs.islice(start)):
            yield start + offset, found, items[found]


class PositionPushes:
    """Which queue positions a queue still has to push, and when.

    ``changed_from(seq, now)`` marks every entry with a sequence number >= ``seq``
    as possibly moved (O(1)); ``defer(seq)`` keeps one entry for the next flush
    (it was told its position too recently). The flush is due at most once per
    ``interval``: :attr:`due` is ``None`` when there is nothing to push.
    """

    __slots__ = ("deferred", "due", "flushed_at", "from_seq", "interval")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.from_seq: int | None = None
        self.deferred: set[int] = set()
        self.due: float | None = None
        self.flushed_at = -math.inf

    def changed_from(self, seq: int, now: float) -> None:
        """Positions of entries with sequence number >= ``seq`` may have changed."""
        if self.from_seq is None or seq < self.from_seq:
            self.from_seq = seq
        self._schedule(now)

    def defer(self, seq: int, now: float) -> None:
        """Push entry ``seq`` at the next flush."""
        self.deferred.add(seq)
        self._schedule(now)

    def take(self, now: float) -> tuple[int | None, set[int]]:
        """Start a flush: return and forget the pending range and deferred set."""
        from_seq, deferred = self.from_seq, self.deferred
        self.from_seq = None
        self.deferred = set()
        self.due = None
        self.flushed_at = now
        return from_seq, deferred

    def _schedule(self, now: float) -> None:
        if self.due is None:
            self.due = max(now, self.flushed_at + self.interval)


class RoundRobin(Generic[T]):
    """The agents of one queue who can take a chat now, in ring order.

    Each agent has an integer ring key (its login order); :meth:`peek` is the
    first available agent after the last one served, wrapping around.
    """

    __slots__ = ("_agents", "_keys", "_last")

    def __init__(self) -> None:
        self._keys: Any = SortedList()
        self._agents: dict[int, T] = {}
        self._last = -1

    def __len__(self) -> int:
        return len(self._agents)

    def __contains__(self, key: object) -> bool:
        return key in self._agents

    def add(self, key: int, agent: T) -> None:
        """``agent`` (ring key ``key``) can take a chat."""
        if key not in self._agents:
            self._keys.add(key)
            self._agents[key] = agent

    def discard(self, key: int) -> None:
        """The agent with ring key ``key`` cannot take a chat any more."""
        if self._agents.pop(key, None) is not None:
            self._keys.remove(key)

    def peek(self) -> tuple[int, T] | None:
        """Whose turn it is: ``(key, agent)``, or ``None`` if nobody is available."""
        if not self._agents:
            return None
        index: int = self._keys.bisect_right(self._last)
        key: int = self._keys[index] if index < len(self._keys) else self._keys[0]
        return key, self._agents[key]

    def served(self, key: int) -> None:
        """The agent with ring key ``key`` was just given a chat."""
        self._last = key


@dataclass(eq=False, slots=True)
class WebchatQueue:
    """One named queue and everything the engine keeps about it."""

    name: str
    pushes: PositionPushes
    line: WaitingLine[Conversation] = field(default_factory=WaitingLine)
    ring: RoundRobin[Client] = field(default_factory=RoundRobin)
    agents: dict[Client, None] = field(default_factory=dict)
    """Agents logged in (connected or within their grace period), in login order."""
    online: int = 0
    """Agents logged in with a live connection."""
    stats: QueueStats = field(default_factory=QueueStats)
    status_due: float | None = None
    """When the next ``queue status update`` is due (``None``: nothing changed)."""
    status_sent_at: float = -math.inf

    @property
    def available(self) -> bool:
        """Whether any agent is logged in with a live connection."""
        return self.online > 0

    def position(self, conv: Conversation) -> int:
        """1-based place of ``conv`` in the line, -1 if it is not waiting here."""
        return self.line.rank(conv.seq) + 1 if conv.seq in self.line else -1

    def agent_conns(self) -> tuple[ConnId, ...]:
        """Connections of the agents logged in."""
        return tuple(a.conn for a in self.agents if a.conn is not None)

    def status_changed(self, now: float, interval: float) -> None:
        """Something in the status changed: schedule one update, at most one per ``interval``."""
        if self.status_due is None:
            self.status_due = max(now, self.status_sent_at + interval)

    def status(
        self, *, max_chats: int, next_agent: Client | None, entries_limit: int, max_bytes: int
    ) -> ConversationWebchatQueueStatus:
        """The ``ConversationWebchatQueueStatus`` as of now, encoding to at
        most ``max_bytes`` (see the module documentation); O(agents + entries_limit)."""
        counts = dict.fromkeys(AgentStatus, 0)
        agents = []
        budget = max_bytes - _STATUS_BYTES - 2 * len(orjson.dumps(self.name))
        agents_budget = budget // 2  # what listing agents may still take
        listing = True
        for agent in self.agents:
            if agent.conn is None:
                agent_status = AgentStatus.UNAVAILABLE
            elif agent.busy or agent.chats >= (agent.chat_limit or max_chats):
                agent_status = AgentStatus.BUSY
            else:
                agent_status = AgentStatus.AVAILABLE
            counts[agent_status] += 1
            if not listing:
                continue
            size = _AGENT_BYTES + len(orjson.dumps(agent.arn)) + len(orjson.dumps(agent.name))
            if size > agents_budget:
                listing = False  # the agents after it are counted, not listed
                continue
            agents_budget -= size
            agents.append(
                ConversationWebchatQueueStatusAgent(
                    agent_status=agent_status,
                    conversation_participant_arn=agent.arn,
                    conversation_participant_name=agent.name,
                    last_chat_dts=cached_dts(agent.last_chat_ms) if agent.last_chat_ms is not None else None,
                    next_round_robin=agent is next_agent,
                )
            )
        budget -= budget // 2 - agents_budget  # what the listed agents took
        entries = []
        for conv in self.line.first(entries_limit):
            budget -= conv.entry_bytes + 1
            if budget < 0:
                break
            entries.append(conv.entry)
        stats = self.stats
        head = self.line.head()
        return ConversationWebchatQueueStatus(
            agent_available_count=counts[AgentStatus.AVAILABLE],
            agent_busy_count=counts[AgentStatus.BUSY],
            agent_count=len(self.agents),
            agent_unavailable_count=counts[AgentStatus.UNAVAILABLE],
            agents=agents,
            customer_abandon_count=stats.abandoned,
            customer_active_count=stats.active,
            customer_average_abandon_time_seconds=stats.average_abandon_seconds,
            customer_average_chat_time_seconds=stats.average_chat_seconds,
            customer_average_hold_time_seconds=stats.average_hold_seconds,
            customer_chat_count=stats.engaged,
            customer_waiting_count=len(self.line),
            customer_waiting_join_dts=head[1].entry.join_dts if head is not None else None,
            queue_entries=entries,
            queue_name=self.name,
        )

    def moved(self, now: float, interval: float) -> list[tuple[Conversation, int]]:
        """Flush position pushes: the connected waiting customers whose position
        or availability changed since they were last told, with their new
        position, marked as told. O(moved + log n). A customer told less than
        ``interval`` ago is deferred to the next flush; a disconnected one is
        told when it resumes."""
        from_seq, deferred = self.pushes.take(now)
        available = self.available
        line = self.line
        moved: list[tuple[Conversation, int]] = []

        def consider(rank: int, conv: Conversation) -> None:
            position = (rank + 1, available)
            if conv.told_position == position or conv.customer.conn is None:
                return
            if now - conv.pushed_at < interval:
                self.pushes.defer(conv.seq, now)
                return
            conv.told_position = position
            conv.pushed_at = now
            moved.append((conv, rank + 1))

        if from_seq is not None:
            for rank, seq, conv in line.ranked_from(from_seq):
                deferred.discard(seq)
                consider(rank, conv)
        for seq in deferred:
            waiting = line.get(seq)
            if waiting is not None:
                consider(line.rank(seq), waiting)
        return moved
