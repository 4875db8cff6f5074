"""Reconnect: mid-chat the customer's connection drops; it reconnects with
its resume token and the epoch of the last message it saw, and the server
replays what it missed. A message missing after the resume (the resumed
summary's message_count against the messages seen) is reported as a failure.

Exercises: disconnect grace period, resume tokens, message replay.
"""

from __future__ import annotations

from simulator.load.sessions import CustomerSession


def run(customer: CustomerSession) -> None:
    customer.connect()
    customer.start_chat()
    customer.wait_for_agent()
    customer.say()
    customer.wait_for_reply()
    customer.say(wait_ack=True)
    customer.disconnect()  # drop mid-chat: the agent's reply may arrive while we are away
    customer.think()
    customer.reconnect()
    if customer.closed:
        return
    reply = customer.wait_for_reply()
    if reply is not None:
        customer.read(message=reply)
    customer.goodbye()
