"""Happy path: a customer starts a chat, waits in the queue for an agent, has
2–6 exchanges (typing, message, wait for the reply, read it, think) and
closes the chat with a goodbye.

Exercises: connect, start chat, check queue position, queue wait, first
reply, message ack, read receipts and close.
"""

from __future__ import annotations

from simulator.sessions import CustomerSession


def run(customer: CustomerSession) -> None:
    customer.connect()
    customer.start_chat()
    customer.check_queue_position()
    customer.wait_for_agent()
    for _ in range(customer.rng.randint(2, 6)):
        if customer.closed:
            return
        customer.say()
        reply = customer.wait_for_reply()
        if reply is None:
            return
        customer.read(message=reply)
        customer.think()
    customer.say(customer.faker.goodbye(customer.language))
    customer.close_chat()
