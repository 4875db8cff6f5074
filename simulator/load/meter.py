"""The chat KPIs: the operation names the load generator reports to Locust
(request type ``WS``) and the summary prints, defined once."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["KPI"]


class KPI(StrEnum):
    """The operation names reported to Locust (request type ``WS``)."""

    CONNECT = "connect"
    START_CHAT = "start chat"
    QUEUE_WAIT = "queue wait"
    FIRST_REPLY = "first reply"
    MESSAGE_ACK = "message ack"
    MESSAGE_DELIVERY = "message delivery"
    READ_RECEIPT = "read receipt"
    CHECK_QUEUE_POSITION = "check queue position"
    PING = "ping"
    CLOSE = "close"
    ABANDON = "abandon"
    """A customer who closed while still queued, timed from joining the queue."""
    TAKE_CHAT = "take chat"
    RRWEB = "rrweb chunk"
    RECONNECT = "reconnect"
    INVALID_FRAME = "invalid frame"
    SERVER_ERROR = "server error"
