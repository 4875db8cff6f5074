"""Abandon: a customer starts a chat and, when no agent has joined within
its patience time, closes the chat while still queued (an abandon in the
queue statistics). Patience is drawn per customer (seconds at human pace,
milliseconds at fast pace).

Exercises: start chat, check queue position, the abandon path of the queue.
"""

from __future__ import annotations

from simulator.load.sessions import CustomerSession


def run(customer: CustomerSession) -> None:
    customer.connect()
    customer.start_chat()
    customer.check_queue_position()
    patience = customer.pacing.think_time(customer.rng) * 0.5
    if not customer.wait_for_agent(timeout=patience, required=False):
        customer.close_chat()  # abandon while queued
        return
    customer.exchange()
    customer.close_chat()
