"""Rush hour: customers arrive in a burst against few agents and watch their
queue position until an agent takes them; positions must only go down
(a position that goes up is reported as a failure). Run it with a high spawn
rate and few agents, e.g. ``--users 200 --spawn-rate 100 --agents 2``.

Exercises: queue position pushes and checks under a long queue, routing as
the queue drains, then a short chat.
"""

from __future__ import annotations

from simulator.load.sessions import KPI, CustomerSession


def run(customer: CustomerSession) -> None:
    customer.connect()
    customer.start_chat()
    last = customer.check_queue_position()
    while not customer.wait_for_agent(timeout=max(0.05, customer.pacing.think_time(customer.rng)), required=False):
        position = customer.check_queue_position()
        if position > last > 0:
            customer.report_failure(KPI.QUEUE_POSITION, "position went up while waiting")
        if position > 0:
            last = position
    customer.exchange()
    customer.goodbye()
