"""Simulated participants for the load generator: chat verbs, not frames.

A :class:`CustomerSession` or :class:`AgentSession` owns one websocket
:class:`~simulator.load.transport.Connection`. Scenarios call verbs (``start_chat``,
``wait_for_agent``, ``say``, ``wait_for_reply``, ``close_chat`` …); the session
builds frames through its :class:`~simulator.load.dialect.Dialect` and reports one
measurement per logical operation to a :data:`Recorder` (the Locust users
forward them to ``events.request``).

Latencies of answers that arrive on their own (acks, agent joins, replies,
read receipts, deliveries) are measured by the session's sans-I/O
:class:`~simulator.load.meter.Meter`, fed each frame in the connection's
receive loop the moment it arrives, from pending maps keyed by id, as
Locust's MQTT user does; flow control (``wait_for_*``) only decides when a
scenario goes on. A pending answer that never comes is reported as a failure
after the timeout.

This module gathers the public names; they live in :mod:`.meter` (``KPI``,
the meter, ``OperationFailed``, the delivery board), :mod:`.session` (the
:class:`Session` base), :mod:`.customer`, :mod:`.agent` and :mod:`.backoff`.
"""

from __future__ import annotations

from ..pace import Pace, Pacing
from .agent import AGENT_WAITS_FOR, AgentSession
from .backoff import Backoff
from .customer import CUSTOMER_WAITS_FOR, CustomerSession
from .meter import BOARD, KPI, RACES, DeliveryBoard, Meter, OperationFailed, Recorder
from .session import Session, SessionStateError

__all__ = [
    "AGENT_WAITS_FOR",
    "BOARD",
    "CUSTOMER_WAITS_FOR",
    "KPI",
    "RACES",
    "AgentSession",
    "Backoff",
    "CustomerSession",
    "DeliveryBoard",
    "Meter",
    "OperationFailed",
    "Pace",
    "Pacing",
    "Recorder",
    "Session",
    "SessionStateError",
]
