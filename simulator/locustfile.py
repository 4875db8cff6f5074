"""What ``locust -f locustfile.py --host ws://HOST:PORT/ws`` loads.

Simulated webchat customers (running the scenario mix of ``--scenario``) and,
for backends without built-in agents, simulated agents. By default only
customers run (the mock server's autopilot agents answer them); to drive a
backend's agents too, give AgentUser a count, e.g.
``locust -f locustfile.py AgentUser CustomerUser`` or ``--agent-users N`` via
``webchat-sim load``. Options: ``locust -f locustfile.py --help``.
"""

from __future__ import annotations

from simulator.users import AgentUser, CustomerUser

__all__ = ["AgentUser", "CustomerUser"]
