""":class:`AgentSession`: a simulated support agent (for backends without
built-in agents), many chats on one connection."""

from __future__ import annotations

import time
from typing import Final, overload

from ..fake import Topic
from ..protocol import Error, ErrorCode, EventType, Frame
from .meter import KPI, Arrival
from .session import Session

__all__ = ["AGENT_WAITS_FOR", "AgentSession"]


AGENT_WAITS_FOR: Final = frozenset(
    {EventType.NEW_CONVERSATION, EventType.CONVERSATION_CLOSED, EventType.QUEUE_NEW_MEMBER}
)
"""Events an agent's verb may wait for; the others are timed on arrival and not kept."""


class AgentSession(Session):
    """A support agent (for backends without built-in agents)."""

    role = "agent"
    keep_messages = False

    def __init__(
        self,
        host: str,
        *,
        name: str | None = None,
        queues: tuple[str, ...] = ("support",),
        manual: bool = False,
        **kwargs: object,
    ) -> None:
        super().__init__(host, **kwargs)  # type: ignore[arg-type]
        self.persona = self.faker.agent()
        self.name = name or f"{self.persona.name} ({self.faker.uuid()[:8]})"
        self.queues = queues
        self.manual = manual
        self.chats: dict[str, str] = {}  # conversation uuid -> customer language
        self.resume_token: str | None = None
        """The secret the server gave this agent's first connection; presented
        again on a reconnect, while the server still holds the name."""
        self._refused = False

    def connect(self) -> None:
        """Open the connection (after the REST auth with ``--auth rest``: the
        agent the API key belongs to, logged in to the queues its token names;
        else the name, with its resume token once it has one)."""
        token = self.resume_token
        if token is None:
            url = self.dialect.agent_url(self.host, name=self.name, queues=self.queues)
        else:
            url = self.dialect.agent_url(self.host, name=self.name, queues=self.queues, resume_token=token)
        self._refused = False
        self._connect_to(url)
        if self._refused:  # the refusal came with the handshake's response
            self.connect_ok = False

    def _on_error(self, frame: Frame, error: Error, arrival: Arrival) -> None:
        super()._on_error(frame, error, arrival)
        if error.error_code == ErrorCode.IDENTITY_IN_USE:
            # the name is held and the server closes this connection: back off before trying again
            self._refused = True
            self.connect_ok = False

    def _on_event(self, frame: Frame, arrived: float) -> bool:
        token = self.dialect.resume_token(frame)
        if token is not None:
            self.resume_token = token
        if frame.event_type is EventType.QUEUE_NEW_MEMBER:
            return self.manual
        return frame.event_type in AGENT_WAITS_FOR

    @overload
    def take_chat(self, timeout: float | None = None) -> str: ...
    @overload
    def take_chat(self, timeout: float | None = None, *, required: bool) -> str | None: ...

    def take_chat(self, timeout: float | None = None, *, required: bool = True) -> str | None:
        """Wait for the server to assign a chat (round robin) or engage the
        oldest customer announced in the queue (manual routing); a customer
        another agent engaged first is skipped. With ``required=False`` an
        empty queue until ``timeout`` returns ``None`` instead of failing."""
        conn = self._connection()
        start = time.perf_counter()
        while True:
            engaging: str | None = None
            if self.manual:
                entry_frame = self._wait(
                    KPI.TAKE_CHAT,
                    lambda f: f.event_type is EventType.QUEUE_NEW_MEMBER,
                    timeout,
                    "a customer in the queue",
                    required=required,
                )
                if entry_frame is None:
                    return None
                entry = entry_frame.event_queue_new_member
                if entry is None or entry.conversation_webchat_queue_uuid is None:
                    continue
                engaging = entry.conversation_webchat_queue_uuid
                conn.send(self.dialect.engage(engaging))

            def assigned(f: Frame, engaging: str | None = engaging) -> bool:
                if self.dialect.is_new_conversation(f):
                    return self.dialect.conversation_of(f) not in self.chats
                return engaging is not None and f.error is not None and f.error.object_id == engaging

            frame = self._wait(KPI.TAKE_CHAT, assigned, timeout, "a chat to be assigned", required=required)
            if frame is None:
                return None
            if frame.error is not None:  # somebody else engaged that customer first
                continue
            conversation = self.dialect.conversation_of(frame)
            if conversation is None:
                raise self._fail(KPI.TAKE_CHAT, "new conversation without conversation_uuid", start)
            summary = frame.event_new_conversation
            language = "en"
            if summary is not None:
                for part in summary.participants or ():
                    if part.language_iso_code and part.conversation_participant_arn != self.my_arn:
                        language = part.language_iso_code
                        break
            self.chats[conversation] = language
            self.meter.timed(KPI.TAKE_CHAT, start, time.perf_counter())
            return conversation

    def wait_for_customer_message(self, conversation_uuid: str, timeout: float | None = None) -> Frame | None:
        """The next customer message of that chat; ``None`` once it is closed."""
        meter = self.meter
        frame = self._wait(
            KPI.MESSAGE_DELIVERY,
            lambda f: (
                f.conversation_uuid == conversation_uuid
                and (
                    (
                        f.message is not None
                        and f.message.author_conversation_participant_arn != self.my_arn
                        and not meter.awaiting(KPI.MESSAGE_ACK, f.message.client_message_id)
                    )
                    or f.event_type is EventType.CONVERSATION_CLOSED
                )
            ),
            timeout,
            "a customer message",
        )
        if frame.message is None:
            self.chats.pop(conversation_uuid, None)
            return None
        return frame

    def reply(
        self, conversation_uuid: str, text: str | None = None, *, topic: Topic | None = None, first: bool = False
    ) -> str:
        language = self.chats.get(conversation_uuid, "en")
        if text is None:
            text = self.faker.agent_reply(topic or Topic.ORDER_STATUS, language, first=first)
        cid = self._send_message(conversation_uuid, text, language)
        self.wait_for_ack(cid, conversation_uuid)
        return cid

    def push_coupon(self, conversation_uuid: str) -> None:
        self._connection().send(self.dialect.add_coupon(conversation_uuid, self.faker.coupon_code()))

    def push_items(self, conversation_uuid: str, count: int | None = None) -> None:
        self._connection().send(self.dialect.add_items(conversation_uuid, self.faker.cart_items(count)))

    def close_chat(self, conversation_uuid: str) -> None:
        conn = self._connection()
        start = time.perf_counter()
        conn.send(self.dialect.close_chat(conversation_uuid))
        self._wait(
            KPI.CLOSE,
            lambda f: f.event_type is EventType.CONVERSATION_CLOSED and f.conversation_uuid == conversation_uuid,
            None,
            "conversation closed",
        )
        self.meter.timed(KPI.CLOSE, start, time.perf_counter())
        self.chats.pop(conversation_uuid, None)

    def _on_closed_elsewhere(self, conversation_uuid: str | None) -> None:
        if conversation_uuid is not None:
            self.chats.pop(conversation_uuid, None)

    def is_closed(self, conversation_uuid: str) -> bool:
        return conversation_uuid not in self.chats
