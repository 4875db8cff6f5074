""":class:`CustomerSession`: a simulated webchat visitor, one chat per session."""

from __future__ import annotations

import time
from typing import Final

from ..fake import Persona, Topic
from ..protocol import ConversationMessage, ErrorCode, EventType, Frame
from .chaos import ChaosMonkey
from .dialect import AuthRequest
from .meter import KPI, OperationFailed, server_reason
from .session import Session, SessionStateError
from .transport import TransportError

__all__ = ["CUSTOMER_WAITS_FOR", "CustomerSession"]


CUSTOMER_WAITS_FOR: Final = frozenset(
    {
        EventType.NEW_CONVERSATION,
        EventType.WEBCHAT_START_CONVERSATION,
        EventType.PARTICIPANT_JOIN,
        EventType.CONVERSATION_CLOSED,
    }
)
"""Events a customer's verb may wait for; the others are timed on arrival and not kept."""

_TOPICS = tuple(Topic)


class CustomerSession(Session):
    """A webchat visitor."""

    role = "customer"

    def __init__(self, host: str, *, persona: Persona | None = None, **kwargs: object) -> None:
        super().__init__(host, **kwargs)  # type: ignore[arg-type]
        self.persona = persona or self.faker.customer()
        self.language = self.persona.language_iso_code
        self.conversation_uuid: str | None = None
        self.resume_token: str | None = None
        self.topic: Topic | None = None
        self.agent_arn: str | None = None
        self.agent_name: str | None = None
        self.closed = False
        self.pushed: list[Frame] = []  # coupons and items pushed by the agent
        self.queue = "support"
        self._starting = False
        # what the queue position frames of this chat said (pushes and answers)
        self._queue_name: str | None = None
        self._first_position: int | None = None
        self.position: int | None = None
        """The last queue position the server reported (1-based; -1: not queued)."""
        self.agents_available: bool | None = None
        """Whether the last queue position frame said an agent was available."""
        self.chaos: ChaosMonkey | None = None
        """``--chaos``: may drop the connection before a verb and resume (:meth:`_chaos`)."""
        self._resuming = False

    def _conversation(self) -> str:
        """The chat's uuid; :class:`SessionStateError` before :meth:`start_chat`."""
        conversation = self.conversation_uuid
        if conversation is None:
            raise SessionStateError("CustomerSession has no chat: call start_chat() first")
        return conversation

    # Events measured on arrival
    def _on_event(self, frame: Frame, arrived: float) -> bool:
        event = frame.event_type
        if self.dialect.is_new_conversation(frame) and (self._starting or self.conversation_uuid is None):
            # learn who we are on arrival: the agent may join in the same breath
            self._starting = False
            self.conversation_uuid = self.dialect.conversation_of(frame)
            self.resume_token = self.dialect.resume_token(frame) or self.resume_token
            summary = frame.event_new_conversation
            if summary is not None:
                if summary.closed:
                    self.closed = True
                parts = [p for p in summary.participants or () if p.conversation_participant_arn]
                if self.my_arn is None and parts:
                    self.my_arn = parts[0].conversation_participant_arn  # the customer comes first
                for part in parts:  # on a resume the agent may already be there
                    if part.conversation_participant_arn != self.my_arn and part.left_dts is None:
                        self.agent_arn = part.conversation_participant_arn
                        self.agent_name = part.conversation_participant_name
        elif event is EventType.PARTICIPANT_JOIN and frame.conversation_uuid == self.conversation_uuid:
            arn = self.dialect.joined_participant_arn(frame)
            if arn is not None and arn != self.my_arn and self.agent_arn is None:
                self.agent_arn = arn
                joined = frame.event_participant_join_participant
                self.agent_name = joined.conversation_participant_name if joined else None
                self.meter.joined(arrived)
        elif event is EventType.CONVERSATION_CLOSED and frame.conversation_uuid == self.conversation_uuid:
            self.closed = True
        elif event in (EventType.ADD_COUPON, EventType.ADD_ITEM):
            self.pushed.append(frame)
            return False
        return event in CUSTOMER_WAITS_FOR

    def _on_message(self, frame: Frame, msg: ConversationMessage, arrived: float, acked: bool) -> None:
        super()._on_message(frame, msg, arrived, acked)
        author = msg.author_conversation_participant_arn
        if author is not None and author != self.my_arn:
            self.meter.replied(arrived)  # the first one is the first reply

    def _on_closed_elsewhere(self, conversation_uuid: str | None) -> None:
        if conversation_uuid in (None, self.conversation_uuid):
            self.closed = True
            self.meter.cancel(KPI.MESSAGE_ACK)  # refused, not lost: the chat was closed before they arrived

    def _on_queue_position(self, frame: Frame) -> None:
        if frame.conversation_uuid not in (None, self.conversation_uuid):
            return
        payload = frame.event_queue_position
        if payload is None:
            return
        if payload.available is not None:
            self.agents_available = payload.available
        if payload.position is not None and payload.position > 0:
            self.position = payload.position
            if self._first_position is None:
                self._first_position = payload.position

    def _queue_wait_reason(self, timeout: float) -> str | None:
        """Why no agent joined within ``timeout``, from what the queue position
        frames said: nobody available, or a queue that does not move; ``None``
        when they say nothing useful (e.g. at the front with agents available).
        No positions in the text: they differ from customer to customer."""
        queue = self._queue_name or self.queue
        if self.agents_available is False:
            return f"no agent available in queue {queue} after {timeout:g} s"
        position, first = self.position, self._first_position
        if position is None or first is None or position <= 1:
            return None
        if position >= first:
            return f"still queued in {queue} after {timeout:g} s, position never went down (queue not draining)"
        return f"still queued in {queue} after {timeout:g} s, not at the front yet (queue draining slowly)"

    def _chaos(self) -> None:
        """``--chaos disconnect=P``: before a verb, mid-chat, drop the
        connection abruptly with probability ``P`` and resume the chat
        (:meth:`reconnect`; a message missing after it is a failure). Never
        while a message waits for its acknowledgement, before an agent joined
        or once the chat is closed: what then happened during the drop is not
        something a resume can tell."""
        chaos = self.chaos
        if (
            chaos is None
            or self._resuming
            or self.closed
            or self._starting
            or self.agent_arn is None
            or self.resume_token is None
            or self.conversation_uuid is None
            or not self.connected
            or self.meter.acks_pending()
            or not chaos.disconnect()
        ):
            return
        self.meter.counted(KPI.CHAOS_DROP)
        self.disconnect(abrupt=True)
        self._resuming = self.meter.chaos_resume = True
        try:
            self.reconnect()
        finally:
            self._resuming = self.meter.chaos_resume = False

    # Verbs
    def _auth_request(self, rest_url: str) -> AuthRequest:
        p = self.persona
        return self.dialect.customer_auth_request(
            rest_url, self.api_key(), name=p.name, email=p.email, language=p.language_iso_code
        )

    def connect(self) -> None:
        """Open the connection (after the REST auth with ``--auth rest``: a
        customer token for this persona)."""
        p = self.persona
        self._connect_to(self.dialect.customer_url(self.host, name=p.name, email=p.email, language=p.language_iso_code))

    def start_chat(self, *, queue: str | None = None, topic: Topic | None = None, question: str | None = None) -> str:
        """Join a queue with a question; return the conversation uuid."""
        conn = self._connection()
        if topic is None and question is None:
            topic = self.rng.choice(_TOPICS)  # the topic the question is written about: no need to classify it
        entry = self.faker.queue_entry(queue or self.queue, self.persona, topic)
        if question is not None:
            entry.question = question
            self.topic = self.faker.topic_of(question)
        else:
            self.topic = topic
        self._starting = True
        self.conversation_uuid = None
        self._queue_name = entry.queue_name or queue or self.queue
        self._first_position = self.position = None
        self.agents_available = None
        start = time.perf_counter()
        if entry.question:
            self.meter.sent(KPI.FIRST_REPLY, None, start)  # the question is the first customer message
        self.meter.sent(KPI.QUEUE_WAIT, None, start)
        conn.send(self.dialect.start_chat(entry))
        frame = self._wait(
            KPI.START_CHAT,
            lambda f: self.dialect.is_new_conversation(f) or f.error is not None,
            None,
            "new conversation",
        )
        if frame.error is not None:
            raise self._fail(KPI.START_CHAT, f"refused: {server_reason(frame.error)}", start)
        self.meter.timed(KPI.START_CHAT, start, time.perf_counter())
        if self.conversation_uuid is None:
            raise self._fail(KPI.START_CHAT, "new conversation without conversation_uuid", start)
        return self.conversation_uuid

    def check_queue_position(self) -> int:
        """Ask for the queue position; return the answer (1-based, -1 when not
        queued). The first ``queue position`` that arrives after the request is
        taken as its answer (pushes before it are not)."""
        self._chaos()
        conn = self._connection()
        conversation = self._conversation()
        self._position_answer = None
        self.meter.sent(KPI.CHECK_QUEUE_POSITION, None, time.perf_counter())
        conn.send(self.dialect.check_queue_position(conversation))
        start = time.perf_counter()
        frame = self._wait(KPI.CHECK_QUEUE_POSITION, lambda f: f is self._position_answer, None, "the queue position")
        position = self.dialect.queue_position(frame)
        if position is None:
            raise self._fail(KPI.CHECK_QUEUE_POSITION, "queue position answer without a position", start)
        return position

    def wait_for_agent(self, timeout: float | None = None, *, required: bool = True) -> bool:
        """Wait until an agent joined; ``False`` if none did within ``timeout``
        and ``required`` is false."""
        if self.agent_arn is None:
            wait = timeout if timeout is not None else self.timeout
            start = time.perf_counter()
            frame = self._wait(
                KPI.QUEUE_WAIT, lambda f: self.agent_arn is not None, wait, "an agent to join", required=False
            )
            if frame is None:
                if not required:
                    return False
                reason = self._queue_wait_reason(wait) or f"timed out after {wait:g} s waiting for an agent to join"
                raise self._fail(KPI.QUEUE_WAIT, reason, start)
        return True

    def use_language(self, language: str) -> None:
        """Become a customer who writes ``language`` (before ``connect``)."""
        self.persona = self.faker.customer(language)
        self.language = self.persona.language_iso_code

    def say(self, text: str | None = None, *, wait_ack: bool = True) -> str:
        """Type then send a message; return its client_message_id."""
        self._chaos()
        conversation = self._conversation()
        if text is None:
            text = self.faker.customer_message(self.topic or Topic.ORDER_STATUS, self.language)
        cid = self._send_message(conversation, text, self.language)
        if wait_ack:
            self.wait_for_ack(cid, conversation)
        return cid

    def wait_for_reply(self, timeout: float | None = None) -> Frame | None:
        """The next agent message written after this customer's last message
        (earlier ones, e.g. the answer to the question, are not a reply to it);
        ``None`` once the chat is closed."""
        self._chaos()
        conversation = self.conversation_uuid

        def reply_or_closed(f: Frame) -> bool:
            if f.conversation_uuid != conversation:
                return False
            if f.event_type is EventType.CONVERSATION_CLOSED:
                return True
            msg = f.message
            if msg is None or msg.author_conversation_participant_arn in (None, self.my_arn):
                return False
            said = self.last_said_epoch
            return said is None or msg.message_epoch is None or msg.message_epoch > said

        if self.closed:  # its closing frame may be taken already (by the wait for an acknowledgement): no waiting
            found = self._wait(KPI.FIRST_REPLY, reply_or_closed, 0.0, "a reply from the agent", required=False)
            return None if found is None or found.message is None else found
        frame = self._wait(KPI.FIRST_REPLY, reply_or_closed, timeout, "a reply from the agent")
        return None if frame.message is None else frame

    def exchange(self, text: str | None = None) -> Frame | None:
        """One exchange: say something, wait for the reply, read it, think.
        ``None`` once the chat is closed (by either side)."""
        if self.closed:
            return None
        self.say(text)
        reply = self.wait_for_reply()
        if reply is None:
            return None
        self.read(message=reply)
        self.think()
        return reply

    def chat(self, exchanges: int) -> list[Frame]:
        """Up to ``exchanges`` exchanges; stops early when the chat is closed.
        Returns the agent's replies."""
        replies: list[Frame] = []
        for _ in range(exchanges):
            reply = self.exchange()
            if reply is None:
                break
            replies.append(reply)
        return replies

    def goodbye(self) -> None:
        """Say goodbye and close the chat (unless it is closed already)."""
        if not self.closed:
            self.say(self.faker.goodbye(self.language))
            self.close_chat()

    def read(self, conversation_uuid: str | None = None, message: Frame | None = None) -> None:
        """Mark ``message`` (a reply received) as read."""
        if message is None:
            raise TypeError("CustomerSession.read() needs message=, the frame to mark as read")
        self._chaos()
        super().read(conversation_uuid or self.conversation_uuid or "", message)

    def send_context(self) -> None:
        conn = self._connection()
        conn.send(self.dialect.webchat_context(self._conversation(), self.faker.webchat_context()))

    def stream_recording(self, *, events: int = 50, chunk_size: int = 4096) -> int:
        """Send an rrweb recording in chunks; return the number of chunks."""
        conn = self._connection()
        conversation = self._conversation()
        chunks = self.faker.rrweb_recording(events=events, chunk_size=chunk_size)
        for chunk in chunks:
            conn.send(self.dialect.rrweb(conversation, chunk))
            self.meter.counted(KPI.RRWEB, length=len(chunk.data or ""))
        return len(chunks)

    def close_chat(self, *, wait: bool = True) -> None:
        """Close the conversation (an abandon if still queued)."""
        conn = self._connection()
        conversation = self._conversation()
        if self.closed:
            return
        start = time.perf_counter()
        conn.send(self.dialect.close_chat(conversation))
        if self.agent_arn is None:  # still queued: an abandon, timed from the start
            self.meter.abandoned(start)
        if wait:
            self._wait(
                KPI.CLOSE,
                lambda f: f.event_type is EventType.CONVERSATION_CLOSED and f.conversation_uuid == conversation,
                None,
                "conversation closed",
            )
            self.meter.timed(KPI.CLOSE, start, time.perf_counter())
        self.closed = True

    def wait_for_close(self, timeout: float | None = None) -> None:
        if not self.closed:
            self._wait(
                KPI.CLOSE,
                lambda f: (
                    f.event_type is EventType.CONVERSATION_CLOSED and f.conversation_uuid == self.conversation_uuid
                ),
                timeout,
                "the agent to close the chat",
            )
        self.closed = True

    def reconnect(self) -> list[Frame]:
        """Connect again and resume the conversation with the resume token and
        the epoch of the last message seen; return the messages the server
        replayed that this session had not seen. A message the server counts
        but that was neither seen before nor replayed is reported as lost."""
        self.disconnect()
        start = time.perf_counter()
        seen = set(self.messages)
        p = self.persona
        try:
            if self.auth is not None:  # the same customer token: the resume token says which chat
                self._open(
                    self.dialect.authenticated_url(
                        self.auth, self.role, resume_token=self.resume_token, since=self.last_epoch
                    ),
                    headers=self.dialect.authenticated_headers(self.auth, self.role, resume_token=self.resume_token),
                )
            else:
                self._open(
                    self.dialect.customer_url(
                        self.host,
                        name=p.name,
                        email=p.email,
                        language=p.language_iso_code,
                        resume_token=self.resume_token,
                        since=self.last_epoch,
                    )
                )
        except TransportError as exc:
            raise self._fail(KPI.RECONNECT, str(exc), start) from exc  # a URL without its query string
        frame = self._wait(
            KPI.RECONNECT,
            lambda f: self.dialect.is_new_conversation(f) or f.error is not None,
            None,
            "resumed conversation",
        )
        if frame.error is not None:
            reason = f"resume refused: {server_reason(frame.error)}"
            if self.meter.chaos_resume and frame.error.error_code == ErrorCode.RESUME_FAILED:
                # The agent's close crossed the drop: a customer whose chat closed before its connection
                # dropped has nothing to resume (protocol 4.3). Counted, not failed; the chat is over.
                self.meter.counted(KPI.CHAOS_CLOSED)
                self.closed = True
                raise OperationFailed(KPI.RECONNECT, reason)  # ends the scenario, reported as counted above
            raise self._fail(KPI.RECONNECT, reason, start)
        self.meter.timed(KPI.RECONNECT, start, time.perf_counter())
        summary = frame.event_new_conversation
        if summary is not None and summary.closed:
            self.closed = True
        # The replay is sent right after the summary on this connection; a ping
        # answered after it proves everything replayed has arrived.
        self.ping()
        self._resumed()  # then what came before the drop and nobody took: still there for the waits
        expected = summary.message_count if summary is not None and summary.message_count is not None else 0
        for _ in range(expected - len(self.messages)):  # one failure per message: counts that group
            self.report_failure(KPI.MESSAGE_LOST, "missing after resume")
        return [f for uuid, f in self.messages.items() if uuid not in seen]
