"""What ``locust -f locustfile.py --host ws://HOST:PORT/ws`` loads.

``CustomerUser``: simulated webchat customers running the scenario mix of
``--scenario``. ``AgentUser``: simulated support agents, for backends without
built-in agents. Against the mock server (whose autopilot agents answer) run
customers only: ``locust -f locustfile.py CustomerUser``; against a backend
without agents add ``AgentUser`` (``--agent-users N`` runs exactly N of them).
The webchat-sim options (``--scenario``, ``--pace``, ``--seed``, ``--queues``,
``--chat-timeout``, ``--manual-routing``, ``--agent-users``,
``--agent-max-chats``, ``--chars-per-second``, or ``WEBCHAT_*`` variables)
are listed by ``webchat-sim load --help``: Locust prints its own ``--help``
before it reads a locustfile.

A locustfile of your own subclasses :class:`~simulator.load.users.WebchatCustomer`
and :class:`~simulator.load.users.WebchatAgent` (abstract, so importing them
runs nothing) with its own dialect: see the README, "Testing your own
backend".
"""

from __future__ import annotations

from simulator.load.users import WebchatAgent, WebchatCustomer

__all__ = ["AgentUser", "CustomerUser"]


class CustomerUser(WebchatCustomer):
    """A webchat customer speaking this project's dialect."""


class AgentUser(WebchatAgent):
    """A support agent speaking this project's dialect."""
