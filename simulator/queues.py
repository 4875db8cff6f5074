"""Queue data structures of the conversation engine.

Three small, socket-free building blocks, each O(log n) per operation:

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
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import islice
from typing import Any, Generic, TypeVar

from sortedcontainers import SortedList  # type: ignore[import-untyped, unused-ignore]

__all__ = ["PositionPushes", "RoundRobin", "WaitingLine"]

T = TypeVar("T")


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
