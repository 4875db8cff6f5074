"""A Locust user for benchmarks/bench_scaleout.py: chat-message echo round trips over our transport.

    locust -f benchmarks/locust_echo.py --headless --host ws://127.0.0.1:PORT/ ...

Each :class:`EchoUser` opens one :class:`simulator.load.transport.Connection`,
then sends the ~600-byte chat ``message`` frame, waits for its echo by
``client_message_id`` and fires one ``events.request`` (type ``WS``, name
``echo``, milliseconds from ``perf_counter``) per round trip, without pause.
"""

from __future__ import annotations

import time
from typing import Any

from _common import chat_frame
from locust import User, task
from locust.env import Environment

from simulator.load.transport import Connection, TransportError
from simulator.protocol import encode

__all__ = ["EchoUser"]

ROUND_TRIP_TIMEOUT = 30.0


class EchoUser(User):
    """One connection; echo round trips back to back."""

    _numbers = iter(range(10**9))

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.number = next(EchoUser._numbers)
        self.frame = chat_frame(self.number)
        self.length = len(encode(self.frame))
        self.count = 0
        self.conn: Connection | None = None

    def on_start(self) -> None:
        self.conn = Connection.connect(self.host or "ws://127.0.0.1:8765/", timeout=30, close_timeout=2)

    def on_stop(self) -> None:
        if self.conn is not None:
            self.conn.close(timeout=2)

    @task
    def echo(self) -> None:
        conn, message = self.conn, self.frame.message
        assert conn is not None and message is not None
        self.count += 1
        cid = f"{self.number}-{self.count}"
        message.client_message_id = cid
        start = time.perf_counter()
        error: Exception | None = None
        try:
            conn.send(self.frame)
            conn.wait_for(
                lambda f: f.message is not None and f.message.client_message_id == cid,
                ROUND_TRIP_TIMEOUT,
                description="echo",
            )
        except TransportError as exc:
            error = exc
        context: dict[str, Any] = {}
        self.environment.events.request.fire(
            request_type="WS",
            name="echo",
            response_time=(time.perf_counter() - start) * 1000.0,
            response_length=self.length,
            exception=error,
            context=context,
        )
        if error is not None and conn.closed:
            self.conn = Connection.connect(self.host or "ws://127.0.0.1:8765/", timeout=30, close_timeout=2)
