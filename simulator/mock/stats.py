"""Running statistics of one webchat queue.

Every figure of ``ConversationWebchatQueueStatus`` that is an average or a
count over time is kept here as a running sum, updated in O(1) per event from
the ``now`` values the engine is handed (never the wall clock); nothing is ever
recomputed by scanning conversations.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QueueStats"]


@dataclass(slots=True)
class QueueStats:
    """Counters and time sums (seconds) of one queue since the engine started."""

    engaged: int = 0
    """Customers engaged by an agent (``customer_chat_count``)."""
    active: int = 0
    """Chats in progress now (``customer_active_count``)."""
    abandoned: int = 0
    """Customers who left while waiting (``customer_abandon_count``)."""
    chats_ended: int = 0
    """Engaged chats that have ended."""
    hold_seconds: float = 0.0
    chat_seconds: float = 0.0
    abandon_seconds: float = 0.0

    def on_engage(self, waited: float) -> None:
        """A waiting customer was engaged after ``waited`` seconds."""
        self.engaged += 1
        self.active += 1
        self.hold_seconds += max(0.0, waited)

    def on_abandon(self, waited: float) -> None:
        """A waiting customer left after ``waited`` seconds."""
        self.abandoned += 1
        self.abandon_seconds += max(0.0, waited)

    def on_chat_end(self, lasted: float) -> None:
        """An engaged chat ended after ``lasted`` seconds."""
        self.active -= 1
        self.chats_ended += 1
        self.chat_seconds += max(0.0, lasted)

    @property
    def average_hold_seconds(self) -> int:
        """Mean time from joining to being engaged, rounded (0 before any)."""
        return _mean(self.hold_seconds, self.engaged)

    @property
    def average_chat_seconds(self) -> int:
        """Mean time from engagement to close of ended chats (0 before any)."""
        return _mean(self.chat_seconds, self.chats_ended)

    @property
    def average_abandon_seconds(self) -> int:
        """Mean time from joining to abandoning (0 before any)."""
        return _mean(self.abandon_seconds, self.abandoned)


def _mean(total: float, count: int) -> int:
    return round(total / count) if count else 0
