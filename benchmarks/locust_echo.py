"""A Locust user for benchmarks/bench_scaleout.py: chat-message echo round trips over our transport.

    locust -f benchmarks/locust_echo.py --headless --host ws://127.0.0.1:PORT/ ...

Each :class:`EchoUser` opens one :class:`simulator.transport.Connection`,
then sends the ~600-byte chat ``message`` frame, waits for its echo by
``client_message_id`` and fires one ``events.request`` (type ``WS``, name
``echo``, milliseconds from ``perf_counter``) per round trip, without pause.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from locust import User, task  # noqa: E402
from locust.env import Environment  # noqa: E402

from simulator.protocol import ConversationMessage, Frame, FrameType, MessageType, TransportStatus, encode  # noqa: E402
from simulator.protocol.models import ConversationMessageTransportStatus  # noqa: E402
from simulator.transport import Connection, TransportError  # noqa: E402

__all__ = ["EchoUser"]

ROUND_TRIP_TIMEOUT = 30.0


def chat_frame(user: int) -> Frame:
    """A typical customer chat message frame, about 600 bytes encoded (as in bench_client.py)."""
    arn = f"arn:webchat-sim:DEMO:participant/customer-{user:06d}"
    return Frame(
        type=FrameType.MESSAGE,
        conversation_uuid=f"5a0c6f4e-2b1d-4c3e-9f8a-{user:012d}",
        message=ConversationMessage(
            author_conversation_participant_arn=arn,
            author_conversation_participant_name="Jordan Example",
            body=(
                "Hi! I ordered the blue running shoes last Tuesday and tracking still says 'label created'. "
                "Has the parcel shipped? I need them by Saturday."
            ),
            client_message_id="0-0",
            language_iso_code="en",
            merchant_id="DEMO",
            message_dts="2026-11-25T14:05:25.123Z",
            message_epoch=1795615525123,
            type=MessageType.MESSAGE,
            transport_statuses=[
                ConversationMessageTransportStatus(conversation_participant_arn=arn, status=TransportStatus.SENT)
            ],
        ),
    )


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
