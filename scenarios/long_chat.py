"""Long chat: 10–20 exchanges in one conversation, with reads and think
time, then a goodbye.

Exercises: long-lived conversations, growing summaries and message counts,
server memory per conversation.
"""

from __future__ import annotations

from simulator.load.sessions import CustomerSession


def run(customer: CustomerSession) -> None:
    customer.connect()
    customer.start_chat()
    customer.wait_for_agent()
    customer.chat(customer.rng.randint(10, 20))
    customer.goodbye()
