"""Simulated participants for the load generator: chat verbs, not frames.

A :class:`CustomerSession` or :class:`AgentSession` owns one websocket
:class:`~simulator.load.transport.Connection`. Scenarios call verbs (``start_chat``,
``wait_for_agent``, ``say``, ``wait_for_reply``, ``close_chat`` …); the session
builds frames through its :class:`~simulator.load.dialect.Dialect` and reports one
measurement per logical operation to a :data:`Recorder` (the Locust users
forward them to ``events.request``).

Latencies of answers that arrive on their own (acks, agent joins, replies,
read receipts, deliveries) are measured in the connection's receive loop the
moment the frame arrives, from pending maps keyed by id, as Locust's MQTT user
does; flow control (``wait_for_*``) only decides when a scenario goes on.
A pending answer that never comes is reported as a failure after the timeout.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, overload

import gevent

from ..errors import FrameError, SimulatorError
from ..fake import ChatFaker, Persona, Topic
from ..pace import Pace, Pacing
from ..protocol import Error, EventType, Frame, FrameType, TransportStatus
from .dialect import Dialect
from .meter import KPI
from .transport import Connection, TransportError, WaitTimeout

__all__ = [
    "KPI",
    "AgentSession",
    "Backoff",
    "CustomerSession",
    "DeliveryBoard",
    "OperationFailed",
    "Pace",
    "Pacing",
    "Recorder",
    "Session",
]


RACES = frozenset({"already_engaged", "queue_entry_not_found"})
CUSTOMER_WAITS_FOR = frozenset(
    {
        EventType.NEW_CONVERSATION,
        EventType.WEBCHAT_START_CONVERSATION,
        EventType.PARTICIPANT_JOIN,
        EventType.CONVERSATION_CLOSED,
    }
)
AGENT_WAITS_FOR = frozenset({EventType.NEW_CONVERSATION, EventType.CONVERSATION_CLOSED, EventType.QUEUE_NEW_MEMBER})
"""Events a verb may wait for; the others are timed on arrival and not kept."""
"""Error codes that mean another agent was faster: not failures."""


_TOPICS = tuple(Topic)


class Recorder(Protocol):
    """Receives one call per logical operation (milliseconds, or ``None`` for
    an event that is counted but not timed)."""

    def __call__(
        self, name: str, response_time: float | None, *, length: int = 0, exception: BaseException | None = None
    ) -> None: ...


_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MAX_REASON = 300


def _scrub(text: str) -> str:
    """``text`` without uuids and email addresses, clipped: a failure reason
    that groups with those of other participants."""
    if "-" in text:
        text = _UUID.sub("<uuid>", text)
    if "@" in text:
        text = _EMAIL.sub("<email>", text)
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


class OperationFailed(SimulatorError):
    """A session operation failed; it has already been reported.

    ``reason`` carries no per-participant values (uuids and email addresses
    are replaced, URLs come without their query string), so the failures of
    many users group into one row of Locust's failure table. ``repr()`` is
    the reason alone: Locust shows ``repr(exception)`` as the error of a
    failure (table, CSV, web UI) after the operation's name."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = _scrub(reason)
        super().__init__(f"{name}: {self.reason}")

    def __repr__(self) -> str:
        return self.reason

    def __reduce__(self) -> tuple[type[OperationFailed], tuple[str, str]]:
        return (type(self), (self.name, self.reason))


def _server_reason(error: Error) -> str:
    """What a server's error frame says, for a failure reason: its code and
    its user message (a developer message may name ids)."""
    text = error.user_message or error.developer_message or "no reason given"
    return f"{error.error_code}: {text}" if error.error_code else text


class Backoff:
    """Capped exponential backoff with equal jitter, sans I/O.

    :meth:`next_delay` counts one more consecutive failure and returns how long
    to wait before the next attempt: the step ``min(cap, base * factor**(n-1))``
    for the n-th failure, half of it fixed and half drawn from ``rng``
    (so waits never collapse to zero and users that failed together spread
    out). :meth:`reset` after a success: the next failure waits ``base`` again.
    """

    __slots__ = ("base", "cap", "factor", "failures", "rng")

    def __init__(
        self, base: float = 0.5, cap: float = 10.0, rng: random.Random | None = None, *, factor: float = 2.0
    ) -> None:
        if not 0 < base <= cap:
            raise ValueError(f"need 0 < base <= cap, got base={base:g}, cap={cap:g}")
        if factor < 1:
            raise ValueError(f"factor must be at least 1, got {factor:g}")
        self.base = base
        self.cap = cap
        self.factor = factor
        self.rng = rng or random.Random()
        self.failures = 0

    def next_delay(self) -> float:
        """Seconds to wait after one more failure."""
        step = self.cap
        if self.factor == 1 or self.failures < 64:  # beyond that the step is the cap anyway
            step = min(self.cap, self.base * self.factor**self.failures)
        self.failures += 1
        half = step / 2
        return half + self.rng.uniform(0.0, half)

    def reset(self) -> None:
        """A success: start again from ``base``."""
        self.failures = 0


class DeliveryBoard:
    """Process-wide registry for ``message delivery``: a customer notes when
    it sent a client_message_id, an agent in the same process that receives
    the message reports the latency. Bounded; entries expire."""

    def __init__(self, limit: int = 100_000) -> None:
        self._sent: dict[str, float] = {}
        self._limit = limit

    def sent(self, client_message_id: str, at: float) -> None:
        if len(self._sent) >= self._limit:
            # drop the oldest half (dicts keep insertion order)
            for key in list(self._sent)[: self._limit // 2]:
                del self._sent[key]
        self._sent[client_message_id] = at

    def received(self, client_message_id: str | None) -> float | None:
        if client_message_id is None:
            return None
        return self._sent.pop(client_message_id, None)


BOARD = DeliveryBoard()


def _ms(start: float, end: float) -> float:
    return (end - start) * 1000.0


class Session:
    """What customers and agents share: a connection, pending maps, verbs."""

    role = "customer"
    keep_messages = True
    """Remember every chat message seen (a customer's one chat; not a long-lived agent's)."""

    def __init__(
        self,
        host: str,
        *,
        record: Recorder,
        faker: ChatFaker,
        rng: random.Random | None = None,
        dialect: Dialect | None = None,
        pacing: Pacing | None = None,
        timeout: float = 30.0,
        board: DeliveryBoard = BOARD,
    ) -> None:
        self.host = host
        self.record = record
        self.faker = faker
        self.rng = rng or random.Random()
        self.dialect = dialect or Dialect()
        self.pacing = pacing or Pacing()
        self.timeout = timeout
        self.board = board
        self.conn: Connection | None = None
        self.connect_ok: bool | None = None
        """Whether the last attempt to open a connection worked (``None``: none yet)."""
        self.my_arn: str | None = None
        # pending answers: key -> (kpi, started at)
        self._acks: dict[str, float] = {}  # client_message_id -> sent at
        self._reads: dict[str, float] = {}  # my message uuid -> sent at (waiting for the read receipt)
        self._position_checks: list[float] = []
        self._position_answer: Frame | None = None
        self.last_said_epoch: int | None = None
        self.messages: dict[str, Frame] = {}  # every chat message seen, by uuid
        self.last_epoch: int | None = None
        self.errors: list[Frame] = []

    # Plumbing -----------------------------------------------------------------

    @contextmanager
    def _op(self, name: KPI) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        except OperationFailed:
            raise
        except (TransportError, FrameError) as exc:
            error = OperationFailed(name, str(exc))
            self.record(name, _ms(start, time.perf_counter()), exception=error)
            raise error from exc
        else:
            self.record(name, _ms(start, time.perf_counter()))

    def _fail(self, name: KPI, reason: str, started: float | None = None) -> OperationFailed:
        elapsed = _ms(started, time.perf_counter()) if started is not None else None
        error = OperationFailed(name, reason)
        self.record(name, elapsed, exception=error)
        return error

    def _open(self, url: str) -> None:
        """Open the connection; its errors' messages name ``url`` without its query string."""
        self.connect_ok = False
        self.conn = Connection.connect(
            url,
            timeout=self.timeout,
            headers=self.dialect.headers(self.role),
            on_invalid=self._on_invalid,
            on_frame=self._on_frame,
            validate=self.dialect.strict_frames,
        )
        self.connect_ok = True

    def _on_invalid(self, error: FrameError, raw: bytes | str) -> None:
        self.record(KPI.INVALID_FRAME, None, length=len(raw), exception=OperationFailed(KPI.INVALID_FRAME, str(error)))

    def _on_frame(self, frame: Frame, arrived: float) -> bool:
        """Called in the receive loop for every valid frame, on arrival: times
        the answers that are pending and says whether a verb may still wait
        for this frame (``False``: not kept in the inbox)."""
        if frame.type is FrameType.MESSAGE and frame.message is not None:
            self._on_message(frame, arrived)
            return True
        if frame.type is not FrameType.EVENT:
            return frame.type is FrameType.PING
        event = frame.event_type
        if event is EventType.UPDATED_MESSAGE and frame.event_updated_message is not None:
            msg = frame.event_updated_message
            uuid = msg.conversation_message_uuid
            if (
                uuid is not None
                and uuid in self._reads
                and any(s.status is TransportStatus.READ for s in msg.transport_statuses or ())
            ):
                self.record(KPI.READ_RECEIPT, _ms(self._reads.pop(uuid), arrived))
            return False
        if event is EventType.QUEUE_POSITION:
            self._on_queue_position(frame)
            if not self._position_checks:
                return False  # a push; checks wait for their own answer
            self.record(KPI.CHECK_QUEUE_POSITION, _ms(self._position_checks.pop(0), arrived))
            self._position_answer = frame
            return True
        if event is None and frame.error is not None:
            self._on_error(frame, arrived)
            return True
        return self._on_event(frame, arrived)

    def _on_error(self, frame: Frame, arrived: float) -> None:
        err = frame.error
        assert err is not None
        self.errors.append(frame)
        if len(self.errors) > 100:
            del self.errors[:50]
        code = err.error_code
        if code == "conversation_closed":
            # the peer closed the chat while we were typing: a race, not a failure
            self._on_closed_elsewhere(frame.conversation_uuid or err.object_id)
            return
        if code in RACES:
            return  # another agent was faster; take_chat tries the next customer
        reason = _server_reason(err)
        if err.object_id is not None and err.object_id in self._acks:
            # the server refused a message: the ack will never come
            sent = self._acks.pop(err.object_id)
            self.record(KPI.MESSAGE_ACK, _ms(sent, arrived), exception=OperationFailed(KPI.MESSAGE_ACK, reason))
            return
        self.record(KPI.SERVER_ERROR, None, exception=OperationFailed(KPI.SERVER_ERROR, reason))

    def _on_message(self, frame: Frame, arrived: float) -> None:
        msg = frame.message
        assert msg is not None
        if self.keep_messages and msg.conversation_message_uuid is not None:
            self.messages[msg.conversation_message_uuid] = frame
        if msg.message_epoch is not None and (self.last_epoch is None or msg.message_epoch > self.last_epoch):
            self.last_epoch = msg.message_epoch
        cid = msg.client_message_id
        if cid is not None and cid in self._acks:
            sent = self._acks.pop(cid)
            self.record(KPI.MESSAGE_ACK, _ms(sent, arrived), length=len(msg.body or ""))
            if msg.message_epoch is not None:
                self.last_said_epoch = msg.message_epoch
            if msg.conversation_message_uuid is not None:
                self._reads[msg.conversation_message_uuid] = sent
            if self.my_arn is None:
                self.my_arn = msg.author_conversation_participant_arn
        elif self.role == "agent":
            sent_at = self.board.received(cid)
            if sent_at is not None:
                self.record(KPI.MESSAGE_DELIVERY, _ms(sent_at, arrived))

    def _on_event(self, frame: Frame, arrived: float) -> bool:  # overridden
        return True

    def _on_queue_position(self, frame: Frame) -> None:  # overridden
        """Every ``queue position`` frame (pushes and answers), on arrival."""

    def _on_closed_elsewhere(self, conversation_uuid: str | None) -> None:
        """A frame was refused because the conversation had been closed."""

    @overload
    def _wait(self, name: KPI, predicate: Callable[[Frame], bool], timeout: float | None, what: str) -> Frame: ...
    @overload
    def _wait(
        self, name: KPI, predicate: Callable[[Frame], bool], timeout: float | None, what: str, *, required: bool
    ) -> Frame | None: ...

    def _wait(
        self, name: KPI, predicate: Callable[[Frame], bool], timeout: float | None, what: str, *, required: bool = True
    ) -> Frame | None:
        """Flow control: the first unconsumed frame that matches. A timeout or
        a closed connection is reported as a failure of ``name`` unless
        ``required`` is false (then ``None`` is returned on timeout)."""
        if self.conn is None:
            raise self._fail(name, f"not connected while waiting for {what}")
        start = time.perf_counter()
        try:
            return self.conn.wait_for(predicate, timeout if timeout is not None else self.timeout, description=what)
        except WaitTimeout as exc:
            if not required:
                return None
            raise self._fail(name, str(exc), start) from exc
        except TransportError as exc:
            raise self._fail(name, str(exc), start) from exc

    def report_failure(self, name: str, reason: str) -> None:
        """Report a scenario-level check that failed (the scenario goes on)."""
        self.record(name, None, exception=OperationFailed(name, reason))

    def expire_pending(self, *, final: bool = False) -> None:
        """Report acknowledgements that did not come within the timeout (or,
        with ``final``, before the session ended) as failures."""
        cutoff = float("inf") if final else time.perf_counter() - self.timeout
        for cid, sent in list(self._acks.items()):
            if sent < cutoff:
                del self._acks[cid]
                why = "before the session ended" if final else f"within {self.timeout:g} s"
                self._fail(KPI.MESSAGE_ACK, f"no acknowledgement of a message {why}", sent)
        for uuid, sent in list(self._reads.items()):
            if sent < cutoff:  # a read receipt is not owed: the peer may never read; just forget it
                del self._reads[uuid]

    def pause(self, seconds: float) -> None:
        """Pacing (typing, thinking): a deliberate delay, not a wait for an event."""
        if seconds > 0:
            gevent.sleep(seconds)

    def think(self) -> None:
        self.pause(self.pacing.think_time(self.rng))

    def ping(self) -> None:
        assert self.conn is not None
        start = time.perf_counter()
        self.conn.send(self.dialect.ping())
        self._wait(KPI.PING, lambda f: f.type is FrameType.PING, None, "ping reply")
        self.record(KPI.PING, _ms(start, time.perf_counter()))

    def _send_message(self, conversation_uuid: str, text: str, language: str | None) -> str:
        assert self.conn is not None
        if self.pacing.pace is not Pace.NONE:
            self.conn.send(self.dialect.typing(conversation_uuid, text[: max(1, len(text) // 3)]))
            self.pause(self.pacing.typing_time(text))
        cid = self.faker.client_message_id()
        now = time.perf_counter()
        self._acks[cid] = now
        if self.role == "customer":
            self.board.sent(cid, now)
        self.conn.send(self.dialect.message(conversation_uuid, text, cid, language))
        return cid

    def wait_for_ack(
        self, client_message_id: str, conversation_uuid: str | None = None, timeout: float | None = None
    ) -> Frame | None:
        """Flow control until the server acknowledged the message; ``None`` if
        it was refused because the conversation had been closed meanwhile.
        A refusal for another reason raises :class:`OperationFailed` at once
        with the server's reason (reported on arrival)."""

        def acked_or_refused(f: Frame) -> bool:
            if f.message is not None:
                return f.message.client_message_id == client_message_id
            if f.error is not None and f.error.object_id == client_message_id:
                return True
            if f.conversation_uuid not in (None, conversation_uuid):
                return False
            return f.event_type is EventType.CONVERSATION_CLOSED or (
                f.error is not None and f.error.error_code == "conversation_closed"
            )

        try:
            frame = self._wait(KPI.MESSAGE_ACK, acked_or_refused, timeout, "the acknowledgement of a message")
        except OperationFailed:
            self._acks.pop(client_message_id, None)  # reported once, here
            raise
        if frame.message is not None:
            return frame
        self._acks.pop(client_message_id, None)
        if frame.error is not None and frame.error.error_code != "conversation_closed":
            raise OperationFailed(KPI.MESSAGE_ACK, _server_reason(frame.error))
        self._on_closed_elsewhere(conversation_uuid)
        return None

    def read(self, conversation_uuid: str, message: Frame) -> None:
        assert self.conn is not None and message.message is not None
        uuid = message.message.conversation_message_uuid
        if uuid is not None:
            self.conn.send(self.dialect.read(conversation_uuid, uuid))

    def disconnect(self) -> None:
        """Drop the connection (without closing any chat)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    @property
    def connected(self) -> bool:
        return self.conn is not None and not self.conn.closed


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
        self._started: float | None = None
        self._first_sent: float | None = None
        self._got_first_reply = False
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
                if self._started is not None:
                    self.record(KPI.QUEUE_WAIT, _ms(self._started, arrived))
        elif event is EventType.CONVERSATION_CLOSED and frame.conversation_uuid == self.conversation_uuid:
            self.closed = True
        elif event in (EventType.ADD_COUPON, EventType.ADD_ITEM):
            self.pushed.append(frame)
            return False
        return event in CUSTOMER_WAITS_FOR

    def _on_message(self, frame: Frame, arrived: float) -> None:
        super()._on_message(frame, arrived)
        msg = frame.message
        assert msg is not None
        if (
            not self._got_first_reply
            and self._first_sent is not None
            and msg.author_conversation_participant_arn not in (None, self.my_arn)
        ):
            self._got_first_reply = True
            self.record(KPI.FIRST_REPLY, _ms(self._first_sent, arrived))

    def _on_closed_elsewhere(self, conversation_uuid: str | None) -> None:
        if conversation_uuid in (None, self.conversation_uuid):
            self.closed = True
            self._acks.clear()  # refused, not lost: the chat was closed before they arrived

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

    # Verbs
    def connect(self) -> None:
        with self._op(KPI.CONNECT):
            p = self.persona
            self._open(self.dialect.customer_url(self.host, name=p.name, email=p.email, language=p.language_iso_code))

    def start_chat(self, *, queue: str | None = None, topic: Topic | None = None, question: str | None = None) -> str:
        """Join a queue with a question; return the conversation uuid."""
        assert self.conn is not None, "connect() first"
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
            self._first_sent = start  # the question is the first customer message
        self._started = start
        self.conn.send(self.dialect.start_chat(entry))
        frame = self._wait(
            KPI.START_CHAT,
            lambda f: self.dialect.is_new_conversation(f) or f.error is not None,
            None,
            "new conversation",
        )
        if frame.error is not None:
            raise self._fail(KPI.START_CHAT, f"refused: {_server_reason(frame.error)}", start)
        self.record(KPI.START_CHAT, _ms(start, time.perf_counter()))
        if self.conversation_uuid is None:
            raise self._fail(KPI.START_CHAT, "new conversation without conversation_uuid", start)
        return self.conversation_uuid

    def check_queue_position(self) -> int:
        """Ask for the queue position; return the answer (1-based, -1 when not
        queued). The first ``queue position`` that arrives after the request is
        taken as its answer (pushes before it are not)."""
        assert self.conn is not None and self.conversation_uuid is not None
        self._position_answer = None
        self._position_checks.append(time.perf_counter())
        self.conn.send(self.dialect.check_queue_position(self.conversation_uuid))
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
        assert self.conversation_uuid is not None
        if text is None:
            text = self.faker.customer_message(self.topic or Topic.ORDER_STATUS, self.language)
        cid = self._send_message(self.conversation_uuid, text, self.language)
        if self._first_sent is None:
            self._first_sent = self._acks[cid]
        if wait_ack:
            self.wait_for_ack(cid, self.conversation_uuid)
        return cid

    def wait_for_reply(self, timeout: float | None = None) -> Frame | None:
        """The next agent message written after this customer's last message
        (earlier ones, e.g. the answer to the question, are not a reply to it);
        ``None`` once the chat is closed."""
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
        assert message is not None
        super().read(conversation_uuid or self.conversation_uuid or "", message)

    def send_context(self) -> None:
        assert self.conn is not None and self.conversation_uuid is not None
        self.conn.send(self.dialect.webchat_context(self.conversation_uuid, self.faker.webchat_context()))

    def stream_recording(self, *, events: int = 50, chunk_size: int = 4096) -> int:
        """Send an rrweb recording in chunks; return the number of chunks."""
        assert self.conn is not None and self.conversation_uuid is not None
        chunks = self.faker.rrweb_recording(events=events, chunk_size=chunk_size)
        for chunk in chunks:
            self.conn.send(self.dialect.rrweb(self.conversation_uuid, chunk))
            self.record(KPI.RRWEB, None, length=len(chunk.data or ""))
        return len(chunks)

    def close_chat(self, *, wait: bool = True) -> None:
        """Close the conversation (an abandon if still queued)."""
        assert self.conn is not None and self.conversation_uuid is not None
        if self.closed:
            return
        start = time.perf_counter()
        self.conn.send(self.dialect.close_chat(self.conversation_uuid))
        if self.agent_arn is None and self._started is not None:  # still queued: an abandon, timed from the start
            self.record(KPI.ABANDON, _ms(self._started, start))
        if wait:
            conversation = self.conversation_uuid
            self._wait(
                KPI.CLOSE,
                lambda f: f.event_type is EventType.CONVERSATION_CLOSED and f.conversation_uuid == conversation,
                None,
                "conversation closed",
            )
            self.record(KPI.CLOSE, _ms(start, time.perf_counter()))
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
            raise self._fail(KPI.RECONNECT, f"resume refused: {_server_reason(frame.error)}", start)
        self.record(KPI.RECONNECT, _ms(start, time.perf_counter()))
        summary = frame.event_new_conversation
        if summary is not None and summary.closed:
            self.closed = True
        # The replay is sent right after the summary on this connection; a ping
        # answered after it proves everything replayed has arrived.
        self.ping()
        expected = summary.message_count if summary is not None and summary.message_count is not None else 0
        for _ in range(expected - len(self.messages)):  # one failure per message: counts that group
            self.report_failure("message lost", "missing after resume")
        return [f for uuid, f in self.messages.items() if uuid not in seen]


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

    def connect(self) -> None:
        with self._op(KPI.CONNECT):
            self._open(self.dialect.agent_url(self.host, name=self.name, queues=self.queues))

    def _on_event(self, frame: Frame, arrived: float) -> bool:
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
        assert self.conn is not None
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
                self.conn.send(self.dialect.engage(engaging))

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
            self.record(KPI.TAKE_CHAT, _ms(start, time.perf_counter()))
            return conversation

    def wait_for_customer_message(self, conversation_uuid: str, timeout: float | None = None) -> Frame | None:
        """The next customer message of that chat; ``None`` once it is closed."""
        frame = self._wait(
            KPI.MESSAGE_DELIVERY,
            lambda f: (
                f.conversation_uuid == conversation_uuid
                and (
                    (
                        f.message is not None
                        and f.message.author_conversation_participant_arn != self.my_arn
                        and f.message.client_message_id not in self._acks
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
        assert self.conn is not None
        self.conn.send(self.dialect.add_coupon(conversation_uuid, self.faker.coupon_code()))

    def push_items(self, conversation_uuid: str, count: int | None = None) -> None:
        assert self.conn is not None
        self.conn.send(self.dialect.add_items(conversation_uuid, self.faker.cart_items(count)))

    def close_chat(self, conversation_uuid: str) -> None:
        assert self.conn is not None
        start = time.perf_counter()
        self.conn.send(self.dialect.close_chat(conversation_uuid))
        self._wait(
            KPI.CLOSE,
            lambda f: f.event_type is EventType.CONVERSATION_CLOSED and f.conversation_uuid == conversation_uuid,
            None,
            "conversation closed",
        )
        self.record(KPI.CLOSE, _ms(start, time.perf_counter()))
        self.chats.pop(conversation_uuid, None)

    def _on_closed_elsewhere(self, conversation_uuid: str | None) -> None:
        if conversation_uuid is not None:
            self.chats.pop(conversation_uuid, None)

    def is_closed(self, conversation_uuid: str) -> bool:
        return conversation_uuid not in self.chats
