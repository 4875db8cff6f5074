"""Pace: how fast simulated people act, shared by the load generator's
sessions and the mock's autopilot agents."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Pace", "Pacing"]


class Pace(StrEnum):
    HUMAN = "human"
    FAST = "fast"
    NONE = "none"


@dataclass(frozen=True, kw_only=True)
class Pacing:
    """Human pacing tied to content: typing time proportional to the text,
    think/read time between messages."""

    pace: Pace = Pace.HUMAN
    chars_per_second: float = 6.0
    think: tuple[float, float] = (1.5, 5.0)
    max_typing: float = 12.0

    @classmethod
    def of(cls, pace: Pace | str, *, chars_per_second: float | None = None) -> Pacing:
        pace = Pace(pace)
        if pace is Pace.FAST:
            return cls(pace=pace, chars_per_second=chars_per_second or 4000.0, think=(0.005, 0.02), max_typing=0.05)
        if pace is Pace.NONE:
            return cls(pace=pace, chars_per_second=chars_per_second or 1e9, think=(0.0, 0.0), max_typing=0.0)
        return cls(pace=pace, chars_per_second=chars_per_second or 6.0)

    def typing_time(self, text: str) -> float:
        return min(self.max_typing, len(text) / self.chars_per_second)

    def think_time(self, rng: random.Random) -> float:
        low, high = self.think
        return rng.uniform(low, high) if high > 0 else 0.0
