"""``--chaos``: faults the load generator injects on its own side.

``disconnect=P``: before each verb of a chat with an agent (``say``,
``wait_for_reply``, ``read``, ``check_queue_position`` …; not before the
customer's own ``close_chat``), a customer drops its connection abruptly (the
TCP connection closes, no closing handshake) with probability ``P``, then
resumes the chat with its resume token and the epoch of the last message it
saw (:meth:`CustomerSession.reconnect
<simulator.load.customer.CustomerSession.reconnect>`): a message missing
after the resume is a ``message lost`` failure as in the ``reconnect``
scenario. Each drop is counted as ``chaos drop``. A customer never drops
while it waits for an acknowledgement, before an agent joined, or after the
chat closed: then a resume cannot tell what happened, and a failure would be
the generator's, not the server's.

One race is left, and counted instead of failed: the agent closes the chat
while the connection is going down. The server then forgets the customer
(nothing left to resume, protocol 4.3) and answers the resume with
``resume_failed``; the chat is over (``chaos resume refused``). A backend
that forgets the tokens of open chats shows as a high count there (and as
``reconnect`` failures in the ``reconnect`` scenario, which has no excuse).

Sans I/O: no gevent, no Locust (the command line checks the option with it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Chaos", "ChaosMonkey", "parse_chaos"]

KINDS = ("disconnect",)


@dataclass(frozen=True)
class Chaos:
    """What ``--chaos`` asks for: probabilities per verb."""

    disconnect: float = 0.0

    def __bool__(self) -> bool:
        return self.disconnect > 0


def parse_chaos(text: str) -> Chaos:
    """``disconnect=0.01[,…]`` (empty: none); :class:`ValueError` with a one-line reason."""
    values: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if name not in KINDS:
            raise ValueError(f'unknown chaos "{name}" in "{text}" (known: {", ".join(KINDS)})')
        if not sep:
            raise ValueError(f'chaos "{name}" needs a probability, e.g. {name}=0.01')
        try:
            probability = float(value)
        except ValueError:
            raise ValueError(f'chaos "{name}": "{value.strip()}" is not a number') from None
        if not 0.0 <= probability <= 1.0:  # also rejects nan
            raise ValueError(f'chaos "{name}": the probability must be between 0 and 1 (got {value.strip()})')
        values[name] = probability
    return Chaos(**values)


class ChaosMonkey:
    """One user's draws, from its own seeded random (the scenario's choices
    stay as they are without chaos)."""

    __slots__ = ("chaos", "rng")

    def __init__(self, chaos: Chaos, rng: random.Random) -> None:
        self.chaos = chaos
        self.rng = rng

    def disconnect(self) -> bool:
        """Whether to drop the connection now."""
        p = self.chaos.disconnect
        return p > 0 and self.rng.random() < p
