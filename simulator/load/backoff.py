"""Capped exponential backoff with jitter, sans I/O: how long a user waits
before connecting again after a refused connect."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Capped exponential backoff with equal jitter, sans I/O.

    :meth:`next_delay` counts one more consecutive failure and returns how long
    to wait before the next attempt: the step ``min(cap, base * factor**(n-1))``
    for the n-th failure, half of it fixed and half drawn from ``rng``
    (so waits never collapse to zero and users that failed together spread
    out). :meth:`reset` after a success: the next failure waits ``base`` again.
    """

    __slots__ = ("base", "cap", "factor", "failures", "rng")

    def __init__(
        self, base: float = 0.5, cap: float = 10.0, rng: random.Random | None = None, *, factor: float = 2.0
    ) -> None:
        if not 0 < base <= cap:
            raise ValueError(f"need 0 < base <= cap, got base={base:g}, cap={cap:g}")
        if factor < 1:
            raise ValueError(f"factor must be at least 1, got {factor:g}")
        self.base = base
        self.cap = cap
        self.factor = factor
        self.rng = rng or random.Random()
        self.failures = 0

    def next_delay(self) -> float:
        """Seconds to wait after one more failure."""
        step = self.cap
        if self.factor == 1 or self.failures < 64:  # beyond that the step is the cap anyway
            step = min(self.cap, self.base * self.factor**self.failures)
        self.failures += 1
        half = step / 2
        return half + self.rng.uniform(0.0, half)

    def reset(self) -> None:
        """A success: start again from ``base``."""
        self.failures = 0
