"""rrweb session: while chatting, the customer streams an rrweb session
recording (an ``init`` snapshot then ``events`` chunks with per-part and
total sha256) to the agent.

Exercises: rrweb chunk relay and hash checks on large frames next to chat
traffic.
"""

from __future__ import annotations

from simulator.load.sessions import CustomerSession


def run(customer: CustomerSession) -> None:
    customer.connect()
    customer.start_chat()
    customer.wait_for_agent()
    customer.stream_recording(events=40, chunk_size=8192)
    for _ in range(customer.rng.randint(2, 4)):
        if customer.exchange() is None:
            return
        customer.stream_recording(events=10, chunk_size=8192)
    customer.goodbye()
