"""How fast and how simulated people act, shared by both wings.

* :class:`Pace` — the one pace enum: ``human`` (seconds), ``fast``
  (milliseconds) and ``none`` (no pauses at all).
* :class:`Timing` — the one timing model: the delays of one role (a customer
  or an agent) at one pace. Customers use its typing and thinking times; agents
  (the mock's autopilot agents and the load generator's Locust agents, through
  :class:`simulator.brain.ChatBrain`) use all of it: read, think, typing speed
  and typing-frame interval, engage, push, close, greet-alone and idle-close.
* :class:`Pacing` — one pace's timings for both roles (``Pacing.of(pace)``),
  with the customer-side shortcuts the load generator's sessions call
  (:meth:`Pacing.typing_time`, :meth:`Pacing.think_time`).
* The defaults of the simulated agents' behaviour, each defined once here and
  used by ``webchat-sim serve``, :class:`simulator.mock.app.MockOptions`, the
  autopilot agents and the Locust agents.

This module imports nothing beyond the standard library, so the command line
can read its defaults without loading Faker.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

__all__ = [
    "AGENT_TIMINGS",
    "CUSTOMER_TIMINGS",
    "DEFAULT_COUPON_PROBABILITY",
    "DEFAULT_EXCHANGES",
    "DEFAULT_ITEM_PROBABILITY",
    "DEFAULT_LOAD_PACE",
    "DEFAULT_MAX_CHATS",
    "DEFAULT_PACE",
    "Pace",
    "Pacing",
    "Span",
    "Timing",
    "chat_pacing_wait",
]

Span = tuple[float, float]
"""``(low, high)`` seconds (or characters per second), drawn uniformly."""


class Pace(StrEnum):
    """How fast simulated customers and agents act."""

    HUMAN = "human"
    """Seconds: agents read in 0.5–2 s, think 1–4 s, type 5–8 characters per second."""
    FAST = "fast"
    """Milliseconds: for tests and load generation."""
    NONE = "none"
    """No pauses: customers send no ``typing`` frames; agents act at once."""


# ---------------------------------------------------------------------------
# Defaults of the simulated agents (one definition each)

DEFAULT_PACE = Pace.HUMAN
"""The pace of ``webchat-sim serve``'s autopilot agents (and of a :class:`Pacing` built without one)."""
DEFAULT_LOAD_PACE = Pace.FAST
"""The pace of ``webchat-sim load``: short runs complete many chats."""
DEFAULT_EXCHANGES: tuple[int, int] = (3, 6)
"""An agent closes a chat after this many answers (drawn per chat, bounds included)."""
DEFAULT_COUPON_PROBABILITY = 0.3
"""Chance that an agent pushes a coupon in a chat about coupons."""
DEFAULT_ITEM_PROBABILITY = 0.3
"""Chance that an agent pushes cart items in a chat about a product."""
DEFAULT_MAX_CHATS = 3
"""Chats one agent holds at once."""


# ---------------------------------------------------------------------------
# The timing model


def _check_span(name: str, span: Span) -> None:
    low, high = span
    if not 0 <= low <= high:
        raise ValueError(f"{name} must be (low, high) with 0 <= low <= high, got {span}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """The delays of one role at one pace, in seconds; :data:`Span` pairs are
    drawn uniformly (:meth:`draw`). A customer uses ``think``,
    ``chars_per_second`` and ``max_typing``; an agent uses every field."""

    think: Span
    """From reading to starting to type (a customer: between two messages)."""
    chars_per_second: Span
    """Typing speed; an agent draws it per message."""
    max_typing: float
    """Longest typing time of one message."""
    read: Span = (0.0, 0.0)
    """From a customer message to the agent's ``read message``."""
    typing_every: Span = (1.0, 1.0)
    """Between two ``typing`` frames of one message."""
    engage: Span = (0.0, 0.0)
    """From ``queue new member`` to ``engage customer`` (manual routing)."""
    push: Span = (0.0, 0.0)
    """From the first answer to ``add coupon`` / ``add item``."""
    close: Span = (0.0, 0.0)
    """From the agent's goodbye to ``conversation closed``."""
    greet_alone: float = 0.0
    """A chat with no customer message this long after it was taken gets a greeting."""
    idle_close: float | None = None
    """Close a chat whose exchanges are done and whose customer is silent this
    long after the last answer (``None``: never)."""

    def __post_init__(self) -> None:
        for name in ("think", "chars_per_second", "read", "typing_every", "engage", "push", "close"):
            _check_span(name, getattr(self, name))
        if self.chars_per_second[0] <= 0:
            raise ValueError(f"chars_per_second must be more than 0, got {self.chars_per_second}")
        if self.typing_every[0] <= 0:
            raise ValueError(f"typing_every must be more than 0, got {self.typing_every}")
        if self.max_typing < 0 or self.greet_alone < 0 or (self.idle_close is not None and self.idle_close < 0):
            raise ValueError("max_typing, greet_alone and idle_close must not be negative")

    @staticmethod
    def draw(span: Span, rng: random.Random) -> float:
        """A delay drawn from ``span`` (``0.0``, drawing nothing, when it is ``(0, 0)``)."""
        low, high = span
        return rng.uniform(low, high) if high > 0 else 0.0

    def typing_time(self, text: str, rng: random.Random | None = None) -> float:
        """Seconds to type ``text``, at most :attr:`max_typing`: at a speed
        drawn from :attr:`chars_per_second` with ``rng``, else at its middle."""
        low, high = self.chars_per_second
        speed = self.draw(self.chars_per_second, rng) if rng is not None else (low + high) / 2
        return min(self.max_typing, len(text) / speed)

    def think_time(self, rng: random.Random) -> float:
        """Seconds of thinking, drawn from :attr:`think`."""
        return self.draw(self.think, rng)


CUSTOMER_TIMINGS: Mapping[Pace, Timing] = {
    Pace.HUMAN: Timing(think=(1.5, 5.0), chars_per_second=(6.0, 6.0), max_typing=12.0),
    Pace.FAST: Timing(think=(0.005, 0.02), chars_per_second=(4000.0, 4000.0), max_typing=0.05),
    Pace.NONE: Timing(think=(0.0, 0.0), chars_per_second=(1e9, 1e9), max_typing=0.0),
}
"""Simulated customers (the load generator's sessions), per pace."""

AGENT_TIMINGS: Mapping[Pace, Timing] = {
    Pace.HUMAN: Timing(
        read=(0.5, 2.0),
        think=(1.0, 4.0),
        chars_per_second=(5.0, 8.0),
        max_typing=45.0,
        typing_every=(1.5, 3.0),
        engage=(1.0, 3.0),
        push=(1.0, 3.0),
        close=(1.0, 3.0),
        greet_alone=5.0,
        idle_close=120.0,
    ),
    Pace.FAST: Timing(
        read=(0.001, 0.005),
        think=(0.002, 0.010),
        chars_per_second=(20_000.0, 40_000.0),
        max_typing=0.02,
        typing_every=(1.0, 1.0),
        engage=(0.001, 0.005),
        push=(0.001, 0.003),
        close=(0.001, 0.005),
        greet_alone=0.05,
        idle_close=None,
    ),
    # Fast without delays: everything at once, no typing frames (max_typing 0);
    # the greeting of a chat without a question still waits for one to arrive.
    Pace.NONE: Timing(
        think=(0.0, 0.0),
        chars_per_second=(1e9, 1e9),
        max_typing=0.0,
        greet_alone=0.05,
    ),
}
"""Simulated agents (autopilot and Locust agents), per pace."""


@dataclass(frozen=True, kw_only=True)
class Pacing:
    """One pace's timings for both roles; :meth:`typing_time` and
    :meth:`think_time` are the customer's (what the load generator's sessions
    pause for), :attr:`agent` is what simulated agents follow."""

    pace: Pace = DEFAULT_PACE
    customer: Timing = field(default_factory=lambda: CUSTOMER_TIMINGS[DEFAULT_PACE])
    agent: Timing = field(default_factory=lambda: AGENT_TIMINGS[DEFAULT_PACE])

    @classmethod
    def of(cls, pace: Pace | str, *, chars_per_second: float | None = None) -> Pacing:
        """The timings of ``pace``; ``chars_per_second`` overrides the customers' typing speed."""
        pace = Pace(pace)
        customer = CUSTOMER_TIMINGS[pace]
        if chars_per_second:
            customer = replace(customer, chars_per_second=(chars_per_second, chars_per_second))
        return cls(pace=pace, customer=customer, agent=AGENT_TIMINGS[pace])

    @property
    def chars_per_second(self) -> float:
        """The customers' typing speed."""
        low, high = self.customer.chars_per_second
        return (low + high) / 2

    @property
    def think(self) -> Span:
        """The customers' thinking time between two messages."""
        return self.customer.think

    @property
    def max_typing(self) -> float:
        """The customers' longest typing time of one message."""
        return self.customer.max_typing

    def typing_time(self, text: str) -> float:
        """Seconds a customer takes to type ``text``."""
        return self.customer.typing_time(text)

    def think_time(self, rng: random.Random) -> float:
        """Seconds a customer thinks before the next message."""
        return self.customer.think_time(rng)


def chat_pacing_wait(pacing: float, started: float | None, now: float) -> float:
    """Seconds a simulated customer waits before its next chat under
    ``--chat-pacing`` (``pacing`` seconds from one chat's start to the
    next's): none before the first chat, none if the last one took longer,
    none when ``pacing`` is 0 (chats back to back)."""
    if pacing <= 0 or started is None:
        return 0.0
    return max(0.0, pacing - (now - started))
