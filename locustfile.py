"""What ``locust -f locustfile.py --host ws://HOST:PORT/ws`` loads.

Simulated webchat customers (running the scenario mix of ``--scenario``) and,
for backends without built-in agents, simulated agents (``AgentUser``; pick
the classes on Locust's command line, e.g. ``locust -f locustfile.py
CustomerUser`` against the mock server whose autopilot agents answer, or
``--agent-users N`` to run exactly N agents). Options: ``locust -f
locustfile.py --help`` (group "webchat-sim").
"""

from __future__ import annotations

from simulator.locustfile import AgentUser, CustomerUser

__all__ = ["AgentUser", "CustomerUser"]
