"""The engine under test without sockets: :class:`Chat` (an engine, a clock
and an inbox per connection, every emitted frame checked against UltraCart's
SDK models and our codec) and the frame builders the engine tests share."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson

from simulator.mock.engine import ERROR_CODES, Close, Delivery, Engine, EngineConfig, Identity, Role
from simulator.protocol import (
    EventType,
    Frame,
    FrameType,
    decode,
    encode,
)
from tests.sdk import sdk_validate

T0 = 1_764_079_525.0  # 2025-11-25T14:05:25Z
MS0 = int(T0 * 1000)

# Connection ids used throughout
C1, C2, C3 = 1, 2, 3
A1, A2, A3 = 11, 12, 13


def seeded_tokens(seed: int) -> Callable[[], str]:
    """A reproducible resume-token source (the engine's default is ``secrets``),
    for scripted runs compared frame by frame."""
    tokens = random.Random(f"resume tokens {seed}")
    return lambda: f"{tokens.getrandbits(256):064x}"


class Chat:
    """An engine, a clock and an inbox per connection; checks every delivery."""

    def __init__(self, validate: bool = True, seed: int = 1234, **config: Any) -> None:
        self.engine = Engine(EngineConfig(**config), rng=random.Random(seed), token_source=seeded_tokens(seed))
        self.now = T0
        self.inbox: dict[int, list[Frame]] = defaultdict(list)
        self.validate = validate
        self.log: list[bytes] = []
        self.tokens: dict[int, str] = {}
        self.closes: list[Close] = []  # what the engine told the shell to close, in order

    # Plumbing

    def deliver(self, deliveries: list[Delivery], sender: int | None = None) -> list[Delivery]:
        for recipients, frame in deliveries:
            assert recipients, "a delivery without recipients"
            assert len(set(recipients)) == len(recipients), "a recipient listed twice"
            raw = encode(frame)
            self.log.append(raw)
            if self.validate:
                sdk_validate(raw)
                decode(raw)
            if frame.error is not None:
                assert len(recipients) == 1, "an error frame sent to several connections"
                assert frame.error.error_code in ERROR_CODES
                if sender is not None and frame.error.error_code != "session_replaced":
                    assert recipients == (sender,), "an error frame sent to someone else than the sender"
            for conn in recipients:
                self.inbox[conn].append(frame)
        self.closes += self.engine.take_closes()
        return deliveries

    def connect(self, conn: int, role: Role = Role.CUSTOMER, **identity: Any) -> list[Frame]:
        self.deliver(self.engine.connect(conn, Identity(role=role, **identity), self.now), sender=conn)
        return self.take(conn)

    def agent(self, conn: int, name: str | None = None, **identity: Any) -> list[Frame]:
        """Connect an agent; the resume token its first frames carry is kept in :attr:`tokens`."""
        frames = self.connect(conn, Role.AGENT, name=name or f"agent-{conn}", **identity)
        for frame in frames:
            token = (frame.model_extra or {}).get("resume_token")
            if isinstance(token, str):
                self.tokens[conn] = token
        return frames

    def send(self, conn: int, wire: dict[str, Any]) -> list[Delivery]:
        frame = decode(orjson.dumps(wire))
        return self.deliver(self.engine.receive(conn, frame, self.now), sender=conn)

    def disconnect(self, conn: int) -> list[Delivery]:
        return self.deliver(self.engine.disconnect(conn, self.now))

    def tick(self, advance: float = 0.0) -> list[Delivery]:
        self.now += advance
        return self.deliver(self.engine.tick(self.now))

    def take(self, conn: int) -> list[Frame]:
        return self.inbox.pop(conn, [])

    def clear(self) -> None:
        self.inbox.clear()

    # Verbs

    def start(self, conn: int, question: str | None = "Where is my order?", **entry: Any) -> Frame:
        """Connect a customer (if needed) and start a chat; return its ``new conversation``."""
        if conn not in self.engine._conns:
            self.connect(conn)
        payload = {"question": question, "conversation_participant_name": f"Customer {conn}", **entry}
        self.send(conn, start_frame(**{k: v for k, v in payload.items() if v is not None}))
        new = of(self.inbox[conn], EventType.NEW_CONVERSATION)[-1]
        self.tokens[conn] = resume_token(new)
        return new

    def engage(self, conn: int, queue_uuid: str) -> list[Delivery]:
        return self.send(conn, engage_frame(queue_uuid))

    def say(self, conn: int, conv: str, body: str, client_id: str | None = None) -> list[Delivery]:
        message: dict[str, Any] = {"body": body}
        if client_id is not None:
            message["client_message_id"] = client_id
        return self.send(conn, {"type": "message", "conversation_uuid": conv, "message": message})

    def close(self, conn: int, conv: str) -> list[Delivery]:
        return self.send(conn, {"type": "event", "event_type": "conversation closed", "conversation_uuid": conv})


def start_frame(**entry: Any) -> dict[str, Any]:
    return {"type": "event", "event_type": "webchat start conversation", "event_engage_customer": entry}


def engage_frame(queue_uuid: str) -> dict[str, Any]:
    return {
        "type": "event",
        "event_type": "engage customer",
        "event_engage_customer": {"conversation_webchat_queue_uuid": queue_uuid},
    }


def event(name: str, conv: str, **payload: Any) -> dict[str, Any]:
    return {"type": "event", "event_type": name, "conversation_uuid": conv, **payload}


def of(frames: list[Frame], kind: EventType | FrameType) -> list[Frame]:
    if isinstance(kind, FrameType):
        return [f for f in frames if f.type is kind]
    return [f for f in frames if f.event_type is kind]


def only(frames: list[Frame], kind: EventType | FrameType) -> Frame:
    found = of(frames, kind)
    assert len(found) == 1, f"expected one {kind}, got {[(f.type, f.event_type) for f in frames]}"
    return found[0]


def error_of(frames: list[Frame]) -> str:
    (frame,) = frames
    assert frame.type is FrameType.EVENT
    assert frame.event_type is None
    assert frame.error is not None
    assert frame.error.developer_message
    assert frame.error.user_message
    assert frame.error.error_code is not None
    return frame.error.error_code


def kinds(frames: list[Frame]) -> list[str]:
    return [f.event_type.value if f.event_type is not None else str(f.type) for f in frames]


def queue_uuid_of(chat: Chat, conn: int) -> str:
    """The queue uuid of the customer's entry, as agents see it in ``queue new member``."""
    status = chat.engine._status_frame(chat.engine._queues["support"]).event_queue_status_update
    assert status is not None
    assert status.queue_entries is not None
    for entry in status.queue_entries:
        if entry.conversation_participant_name == f"Customer {conn}":
            assert entry.conversation_webchat_queue_uuid is not None
            return entry.conversation_webchat_queue_uuid
    raise AssertionError(f"customer {conn} is not waiting")


def engaged_pair(chat: Chat, customer: int = C1, agent: int = A1) -> str:
    """A customer chatting with an agent (round-robin); returns the conversation uuid."""
    chat.agent(agent)
    conv = chat.start(customer).conversation_uuid
    assert conv is not None
    assert of(chat.inbox[agent], EventType.PARTICIPANT_JOIN)
    chat.clear()
    return conv


# ---------------------------------------------------------------------------
# Row 1: start


def resume_token(frame: Frame) -> str:
    assert frame.model_extra is not None
    token = frame.model_extra["resume_token"]
    assert isinstance(token, str)
    return token
