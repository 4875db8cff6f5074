"""Happy path: a customer starts a chat, waits in the queue for an agent, has
2–6 exchanges (typing, message, wait for the reply, read it, think) and
closes the chat with a goodbye.

Exercises: connect, start chat, check queue position, queue wait, first
reply, message ack, read receipts and close.
"""

from __future__ import annotations

from simulator.load.sessions import CustomerSession


def run(customer: CustomerSession) -> None:
    customer.connect()
    customer.start_chat()
    customer.check_queue_position()
    customer.wait_for_agent()
    customer.chat(customer.rng.randint(2, 6))
    customer.goodbye()
