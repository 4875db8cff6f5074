"""The chat KPIs and their meter, sans I/O.

:class:`KPI` names every operation the load generator reports to Locust
(request type ``WS``) and the summary prints, defined once.

A :class:`Meter` is what a session measures with. The session feeds it what
it sent (:meth:`Meter.sent`) and every frame it received (:meth:`Meter.received`),
each with the time it happened (a :func:`time.perf_counter` reading, in
seconds, from the session's clock), plus the milestones only the session can
recognise (an agent joined: :meth:`Meter.joined`; a peer wrote:
:meth:`Meter.replied`). The meter keeps what is pending, keyed by id, and
reports one measurement per logical operation to its :data:`Recorder`
(a :class:`KPI` name, milliseconds or ``None`` for an event counted but not
timed, and an :class:`OperationFailed` with its reason for a failure) the
moment the answer is fed to it, as Locust's MQTT user does. A pending answer
that never comes is reported as a failure by :meth:`Meter.expire` after the
timeout. No sockets, no gevent, no clock of its own.
"""

from __future__ import annotations

from collections import deque
from enum import Enum, StrEnum
from typing import Final, Protocol

from ..errors import OperationFailed
from ..protocol import Error, ErrorCode, EventType, Frame, FrameType, TransportStatus

__all__ = [
    "BOARD",
    "KPI",
    "RACES",
    "Arrival",
    "DeliveryBoard",
    "Meter",
    "OperationFailed",
    "Recorder",
    "server_reason",
]


class KPI(StrEnum):
    """The operation names reported to Locust (request type ``WS``)."""

    AUTH = "auth"
    """The REST auth before a connect (``--auth rest``): the JWT and websocket URL."""
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
    CHAOS_DROP = "chaos drop"
    """``--chaos disconnect=P``: a customer dropped its connection on purpose (untimed; it then resumes)."""
    CHAOS_CLOSED = "chaos resume refused"
    """After a chaos drop the server refused the resume (``resume_failed``): the chat closed meanwhile (untimed)."""
    INVALID_FRAME = "invalid frame"
    SERVER_ERROR = "server error"
    MESSAGE_LOST = "message lost"
    CONNECTION_LOST = "connection lost"
    """The connection broke while a scenario was between two waits (untimed)."""
    """A message the server counts that was neither seen before a reconnect nor replayed after it."""
    QUEUE_POSITION = "queue position"
    """A scenario check (rush_hour): the queue position went up while waiting."""
    REPLY_LANGUAGE = "reply language"
    """A scenario check (multilingual): a reply in another language than the customer's."""


class Recorder(Protocol):
    """Receives one call per logical operation (milliseconds, or ``None`` for
    an event that is counted but not timed)."""

    def __call__(
        self, name: str, response_time: float | None, *, length: int = 0, exception: BaseException | None = None
    ) -> None: ...


# Failures -------------------------------------------------------------------

def server_reason(error: Error) -> str:
    """What a server's error frame says, for a failure reason: its code and
    its user message (a developer message may name ids)."""
    text = error.user_message or error.developer_message or "no reason given"
    return f"{error.error_code}: {text}" if error.error_code else text


_RESUME_FAILED: Final = ErrorCode.RESUME_FAILED
RACES: Final = frozenset({ErrorCode.ALREADY_ENGAGED, ErrorCode.QUEUE_ENTRY_NOT_FOUND})
"""Error codes that mean another agent was faster: not failures."""


# Message delivery across sessions ---------------------------------------------


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


# The meter ----------------------------------------------------------------------


class Arrival(Enum):
    """What a received frame meant to the :class:`Meter` (see :meth:`Meter.received`)."""

    OTHER = "other"
    """Nothing pending was answered by it."""
    ACK = "ack"
    """The acknowledgement of one of our messages (timed: ``message ack``)."""
    RECEIPT = "receipt"
    """The read receipt of one of our messages (timed: ``read receipt``)."""
    ANSWER = "answer"
    """The answer to a queue position check (timed: ``check queue position``)."""
    DELIVERY = "delivery"
    """A customer message whose sending is on the board (timed: ``message delivery``)."""
    REFUSED = "refused"
    """An error refusing one of our pending messages (a ``message ack`` failure)."""
    CLOSED = "closed"
    """Refused because the conversation had been closed: a race with the peer, not a failure."""
    RACE = "race"
    """Another agent was faster (:data:`RACES`): not a failure."""
    ERROR = "error"
    """Any other error from the server (a ``server error`` failure)."""


def _ms(start: float, end: float) -> float:
    return (end - start) * 1000.0


# aliases for the receive path (one lookup each)
_MESSAGE: Final = FrameType.MESSAGE
_EVENT: Final = FrameType.EVENT
_UPDATED_MESSAGE: Final = EventType.UPDATED_MESSAGE
_QUEUE_POSITION: Final = EventType.QUEUE_POSITION
_READ: Final = TransportStatus.READ
_CONVERSATION_CLOSED: Final = ErrorCode.CONVERSATION_CLOSED
_OTHER: Final = Arrival.OTHER
_ACK: Final = Arrival.ACK
_RECEIPT: Final = Arrival.RECEIPT
_ANSWER: Final = Arrival.ANSWER
_DELIVERY: Final = Arrival.DELIVERY


class Meter:
    """The KPI timing of one session, sans I/O: fed frames and times, it
    reports measurements to ``record``.

    ``role`` says whose meter it is: a ``"customer"`` notes the messages it
    sends on the delivery ``board`` and its first message starts the
    first-reply clock (unless a question did); an ``"agent"`` times the
    delivery of the customer messages it receives from the board. ``timeout``
    is how long an acknowledgement may take before :meth:`expire` reports it
    missing.
    """

    __slots__ = (
        "_acks",
        "_customer",
        "_deliveries",
        "_first_sent",
        "_position_checks",
        "_queued_at",
        "_reads",
        "_replied",
        "board",
        "chaos_resume",
        "record",
        "timeout",
    )

    def __init__(
        self, record: Recorder, *, role: str = "customer", timeout: float = 30.0, board: DeliveryBoard = BOARD
    ) -> None:
        self.record = record
        self.timeout = timeout
        self.board = board
        self._customer = role == "customer"
        self._deliveries = role == "agent"
        self._acks: dict[str, float] = {}  # client_message_id -> sent at (waiting for the ack)
        self._reads: dict[str, float] = {}  # our message's uuid -> sent at (waiting for the read receipt)
        self._position_checks: deque[float] = deque()  # sent at, oldest first
        self._queued_at: float | None = None  # joined the queue at (queue wait, abandon)
        self._first_sent: float | None = None  # the first customer message went out at (first reply)
        self._replied = False
        self.chaos_resume = False
        """A resume after a ``--chaos`` drop is under way: its ``resume_failed`` is the session's to judge."""

    # What the session sent ----------------------------------------------------------

    def sent(self, kind: KPI, key: str | None, at: float) -> None:
        """The session sent something whose answer ``kind`` times:

        * ``MESSAGE_ACK``, ``key`` its client_message_id: a chat message; its
          acknowledgement, then its read receipt, are pending;
        * ``CHECK_QUEUE_POSITION``: a position check; the next ``queue
          position`` frame answers the oldest check;
        * ``QUEUE_WAIT``: the chat was started, the queue wait begins (and
          an abandon is timed from here);
        * ``FIRST_REPLY``: the question that opens the chat; the first reply
          is timed from it.
        """
        if kind is KPI.MESSAGE_ACK:
            if key is None:
                raise ValueError("a message is sent with its client_message_id")
            self._acks[key] = at
            if self._customer:
                self.board.sent(key, at)
                if self._first_sent is None:
                    self._first_sent = at
        elif kind is KPI.CHECK_QUEUE_POSITION:
            self._position_checks.append(at)
        elif kind is KPI.QUEUE_WAIT:
            self._queued_at = at
        elif kind is KPI.FIRST_REPLY:
            self._first_sent = at
        else:
            raise ValueError(f"{kind.value!r} is not timed from something sent")

    def awaiting(self, kind: KPI, key: str | None) -> bool:
        """Whether the answer to ``key`` (a ``MESSAGE_ACK`` or ``READ_RECEIPT``) is pending."""
        if kind is KPI.MESSAGE_ACK:
            return key in self._acks
        if kind is KPI.READ_RECEIPT:
            return key in self._reads
        raise ValueError(f"{kind.value!r} is not keyed")

    def acks_pending(self) -> bool:
        """Whether any message still waits for its acknowledgement."""
        return bool(self._acks)

    def cancel(self, kind: KPI, key: str | None = None) -> None:
        """Stop waiting for the ``MESSAGE_ACK`` of ``key`` (already reported, or
        refused because the chat was closed), or for every one (``key=None``)."""
        if kind is not KPI.MESSAGE_ACK:
            raise ValueError(f"{kind.value!r} cannot be cancelled")
        if key is None:
            self._acks.clear()
        else:
            self._acks.pop(key, None)

    # What arrived -----------------------------------------------------------------------

    def received(self, frame: Frame, at: float) -> Arrival:
        """A valid frame arrived at ``at``: report what it answers; return what it meant."""
        kind = frame.type
        if kind is _MESSAGE:
            msg = frame.message
            if msg is None:
                return _OTHER
            cid = msg.client_message_id
            acks = self._acks
            if cid is not None and cid in acks:
                sent = acks.pop(cid)
                self.record(KPI.MESSAGE_ACK, _ms(sent, at), length=len(msg.body or ""))
                if msg.conversation_message_uuid is not None:
                    self._reads[msg.conversation_message_uuid] = sent
                return _ACK
            if self._deliveries:
                sent_at = self.board.received(cid)
                if sent_at is not None:
                    self.record(KPI.MESSAGE_DELIVERY, _ms(sent_at, at))
                    return _DELIVERY
            return _OTHER
        if kind is not _EVENT:
            return _OTHER
        event = frame.event_type
        if event is _UPDATED_MESSAGE:
            updated = frame.event_updated_message
            if updated is not None:
                uuid = updated.conversation_message_uuid
                if (
                    uuid is not None
                    and uuid in self._reads
                    and any(s.status is _READ for s in updated.transport_statuses or ())
                ):
                    self.record(KPI.READ_RECEIPT, _ms(self._reads.pop(uuid), at))
                    return _RECEIPT
            return _OTHER
        if event is _QUEUE_POSITION:
            checks = self._position_checks
            if not checks:
                return _OTHER  # a push; checks are answered by what follows them
            self.record(KPI.CHECK_QUEUE_POSITION, _ms(checks.popleft(), at))
            return _ANSWER
        if event is None and frame.error is not None:
            return self._error(frame.error, at)
        return _OTHER

    def _error(self, error: Error, at: float) -> Arrival:
        code = error.error_code
        if code == _CONVERSATION_CLOSED:
            return Arrival.CLOSED  # the peer closed the chat while we were typing: a race, not a failure
        if code in RACES:
            return Arrival.RACE  # another agent was faster; take_chat tries the next customer
        if code == _RESUME_FAILED and self.chaos_resume:
            return Arrival.RACE  # the chat may have closed while the connection was down: see CustomerSession._chaos
        reason = server_reason(error)
        key = error.object_id
        if key is not None and key in self._acks:
            # the server refused a message: the ack will never come
            sent = self._acks.pop(key)
            self.record(KPI.MESSAGE_ACK, _ms(sent, at), exception=OperationFailed(KPI.MESSAGE_ACK, reason))
            return Arrival.REFUSED
        self.record(KPI.SERVER_ERROR, None, exception=OperationFailed(KPI.SERVER_ERROR, reason))
        return Arrival.ERROR

    def invalid(self, reason: str, length: int) -> None:
        """A frame of ``length`` bytes that is not valid arrived."""
        self.record(KPI.INVALID_FRAME, None, length=length, exception=OperationFailed(KPI.INVALID_FRAME, reason))

    # Milestones the session recognises -------------------------------------------------

    def joined(self, at: float) -> None:
        """An agent joined the chat at ``at``: the queue wait is over."""
        if self._queued_at is not None:
            self.record(KPI.QUEUE_WAIT, _ms(self._queued_at, at))

    def replied(self, at: float) -> None:
        """A peer's message arrived at ``at``: the first one after the first
        customer message is the first reply."""
        if not self._replied and self._first_sent is not None:
            self._replied = True
            self.record(KPI.FIRST_REPLY, _ms(self._first_sent, at))

    def abandoned(self, at: float) -> None:
        """The customer closed the chat at ``at`` while still queued."""
        if self._queued_at is not None:
            self.record(KPI.ABANDON, _ms(self._queued_at, at))

    # Expiry --------------------------------------------------------------------------------

    def expire(self, now: float, *, final: bool = False) -> None:
        """Report acknowledgements not fed within ``timeout`` of ``now`` (or,
        with ``final``, before the session ended) as failures; forget read
        receipts as old (a read receipt is not owed: the peer may never read)."""
        cutoff = float("inf") if final else now - self.timeout
        if self._acks:
            why = "before the session ended" if final else f"within {self.timeout:g} s"
            for cid, sent in list(self._acks.items()):
                if sent < cutoff:
                    del self._acks[cid]
                    self.failed(KPI.MESSAGE_ACK, f"no acknowledgement of a message {why}", sent, now)
        for uuid, sent in list(self._reads.items()):
            if sent < cutoff:
                del self._reads[uuid]

    # Operations the session times itself ---------------------------------------------------

    def timed(self, kind: KPI, started: float, ended: float, *, length: int = 0) -> None:
        """``kind`` succeeded: it took from ``started`` to ``ended``."""
        self.record(kind, _ms(started, ended), length=length)

    def counted(self, kind: KPI, *, length: int = 0) -> None:
        """One more ``kind``, not timed (e.g. an rrweb chunk sent)."""
        self.record(kind, None, length=length)

    def failed(self, kind: str, reason: str, started: float | None = None, at: float | None = None) -> OperationFailed:
        """Report a failure of ``kind`` (timed from ``started`` to ``at`` if
        given, else untimed) and return it, to be raised."""
        elapsed: float | None = None
        if started is not None:
            if at is None:
                raise ValueError("a timed failure needs the time it ended")
            elapsed = _ms(started, at)
        error = OperationFailed(kind, reason)
        self.record(kind, elapsed, exception=error)
        return error

    def __repr__(self) -> str:
        return (
            f"<Meter acks={len(self._acks)} reads={len(self._reads)} checks={len(self._position_checks)}"
            f" queued={self._queued_at is not None} replied={self._replied}>"
        )
