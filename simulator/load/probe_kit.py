"""What the probes of ``webchat-sim check`` share: sessions that watch every
frame, the run's context (its sessions, their clean-up) and the assertions.

A :class:`WatchedCustomer` or :class:`WatchedAgent` is the load generator's
own session (same dialect, same verbs) that also keeps a log of every valid
frame it received and the reason of every invalid one (decoded by the
project's codec, strictly: an invalid frame is a probe failure naming the
field). :func:`expect` waits on that log, never on the connection's inbox, so
it consumes nothing a session verb may wait for. :func:`barrier` is a ``ping``
round trip: the server answers it after every frame it sent that connection
before, so what has not arrived by then was not sent (typing echoes, leaks).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, Final

import gevent
from gevent.event import Event

from ..errors import FrameError, OperationFailed, TransportError
from ..fake import ChatFaker
from ..pace import Pacing
from ..protocol import ConversationMessage, ErrorCode, EventType, Frame, FrameType
from .agent import AgentSession
from .customer import CustomerSession
from .dialect import Dialect
from .session import Session

__all__ = [
    "WAITING",
    "ProbeFailed",
    "ProbeSkipped",
    "Run",
    "WatchedAgent",
    "WatchedCustomer",
    "absent",
    "barrier",
    "error_code",
    "expect",
    "expect_at",
    "is_error",
    "message_frame",
    "require",
]

WAITING: Final = [""]
"""What the probe in progress waits for (``role: what``), for the message of a probe timeout."""

_NOT_CONVERSATION_FRAMES: Final = frozenset({EventType.QUEUE_STATUS_UPDATE, EventType.QUEUE_NEW_MEMBER})


class ProbeFailed(Exception):
    """A probe found the backend departing from the dialect; the message is the exact reason."""


class ProbeSkipped(Exception):
    """A probe that cannot run here; the message says why."""


def _ignore(name: str, response_time: float | None, *, length: int = 0, exception: BaseException | None = None) -> None:
    """The sessions' recorder: the probes judge the frames themselves."""


class _Watched(Session):
    """A session that logs every frame it receives (and every invalid one)."""

    def __init__(self, host: str, **kwargs: Any) -> None:
        self.log: list[Frame] = []
        self.invalid: list[str] = []
        self.news = Event()
        super().__init__(host, **kwargs)

    def _on_frame(self, frame: Frame, arrived: float) -> bool:
        self.log.append(frame)
        if (
            frame.conversation_uuid is not None
            and frame.error is None
            and frame.conversation_arn is None
            and frame.event_type not in _NOT_CONVERSATION_FRAMES
        ):
            what = str(frame.event_type or frame.type)
            self.invalid.append(f"{self.role} got a {what!r} frame with conversation_uuid but no conversation_arn")
        news = self.news
        news.set()
        self.news = Event()
        return super()._on_frame(frame, arrived)

    def _on_invalid(self, error: FrameError, raw: bytes | str) -> None:
        self.invalid.append(f"{self.role} got an invalid frame: {error}")
        super()._on_invalid(error, raw)

    def _wait(self, name: Any, predicate: Any, timeout: Any, what: str, **kwargs: Any) -> Any:
        WAITING[0] = f"{self.role}: {what}"
        return super()._wait(name, predicate, timeout, what, **kwargs)

    @property
    def mark(self) -> int:
        """Where the log is now: :func:`expect` and :func:`absent` look after it."""
        return len(self.log)


class WatchedCustomer(_Watched, CustomerSession):
    """The load generator's customer, watched."""


class WatchedAgent(_Watched, AgentSession):
    """The load generator's agent, watched."""


class Run:
    """One check run: the backend, the fake data, the sessions of the probe in
    progress (closed by :meth:`cleanup`) and the timeouts."""

    def __init__(
        self,
        host: str,
        *,
        timeout: float,
        manual: bool = False,
        queue: str = "support",
        seed: int = 0,
        dialect: Dialect | None = None,
    ) -> None:
        self.host = host
        self.timeout = timeout
        self.manual = manual
        self.queue = queue
        self.faker = ChatFaker(seed)
        self.dialect = dialect or Dialect()
        self.sessions: list[WatchedCustomer | WatchedAgent] = []
        self._agents = 0

    def _kwargs(self) -> dict[str, Any]:
        return {
            "record": _ignore,
            "faker": self.faker,
            "dialect": self.dialect,
            "pacing": Pacing.of("none"),
            "timeout": self.timeout,
        }

    def customer(self, *, start: bool = True, question: str | None = None) -> WatchedCustomer:
        """A connected customer (that started a chat, unless ``start`` is false)."""
        customer = WatchedCustomer(self.host, **self._kwargs())
        customer.queue = self.queue
        self.sessions.append(customer)
        connect(customer)
        if start:
            customer.start_chat(question=question or self.faker.question()[1])
        return customer

    def agent(self, *, status: bool = True) -> WatchedAgent:
        """A connected agent of the run's queue, with a name of its own (once
        the queue status update of its connect came, unless ``status`` is false)."""
        self._agents += 1
        # not from the seeded faker: a second run against the same backend must not meet its names still held
        name = f"Check Agent {self._agents} ({secrets.token_hex(4)})"
        agent = WatchedAgent(self.host, name=name, queues=(self.queue,), manual=self.manual, **self._kwargs())
        self.sessions.append(agent)
        connect(agent)
        if status:
            expect(
                agent, lambda f: f.event_type is EventType.QUEUE_STATUS_UPDATE, "the queue status update of its connect"
            )
        return agent

    def pair(self) -> tuple[WatchedAgent, WatchedCustomer, str]:
        """An agent and a customer in one engaged conversation (the agent
        connects first; manual routing: it engages the customer)."""
        agent = self.agent()
        customer = self.customer()
        conversation = customer.conversation_uuid or ""
        take(agent, conversation)
        customer.wait_for_agent()
        return agent, customer, conversation

    def invalid(self) -> str | None:
        """The first invalid frame any session of the probe received."""
        for session in self.sessions:
            if session.invalid:
                return session.invalid[0]
        return None

    def cleanup(self, seconds: float = 2.0) -> None:
        """Close the probe's chats (without waiting) and connections, within ``seconds``."""
        sessions, self.sessions = self.sessions, []

        def end(session: WatchedCustomer | WatchedAgent) -> None:
            conn = session.conn
            if conn is None or conn.closed:
                return
            if isinstance(session, CustomerSession) and session.conversation_uuid and not session.closed:
                try:
                    conn.send(self.dialect.close_chat(session.conversation_uuid))
                except TransportError:
                    return
            conn.close(timeout=min(1.0, seconds))

        jobs = [gevent.spawn(end, s) for s in sessions]
        gevent.joinall(jobs, timeout=seconds)
        for job in jobs:
            job.kill(block=False)


def connect(session: WatchedCustomer | WatchedAgent) -> None:
    try:
        session.connect()
    except OperationFailed as exc:
        raise ProbeFailed(f"{session.role} could not connect: {exc.reason}") from None


def take(agent: WatchedAgent, conversation: str) -> None:
    """The agent gets ``conversation`` (assigned, or engaged with manual
    routing); chats of other customers it is given first are kept."""
    for _ in range(5):
        if agent.take_chat() == conversation:
            if agent.my_arn is None:  # the load generator's agent learns it from its first acknowledgement
                joined = expect(
                    agent,
                    lambda f: f.event_type is EventType.PARTICIPANT_JOIN and f.conversation_uuid == conversation,
                    "its participant join",
                ).event_participant_join_participant
                agent.my_arn = joined.conversation_participant_arn if joined is not None else None
            return
    raise ProbeFailed("the agent was given other conversations, not the customer's")


def expect(
    session: _Watched, predicate: Callable[[Frame], bool], what: str, *, since: int = 0, timeout: float | None = None
) -> Frame:
    """The first frame of the session's log after ``since`` that matches,
    waiting up to ``timeout`` (default: the run's) for it to arrive."""
    return session.log[expect_at(session, predicate, what, since=since, timeout=timeout)]


def expect_at(
    session: _Watched, predicate: Callable[[Frame], bool], what: str, *, since: int = 0, timeout: float | None = None
) -> int:
    """:func:`expect`, returning the frame's index in the log."""
    WAITING[0] = f"{session.role}: {what}"
    deadline = time.monotonic() + (timeout if timeout is not None else session.timeout)
    index = since
    while True:
        log = session.log
        while index < len(log):
            if predicate(log[index]):
                return index
            index += 1
        conn = session.conn
        if conn is None or conn.closed:
            code = conn.close_code if conn is not None else None
            reason = f" ({conn.close_reason})" if conn is not None and conn.close_reason else ""
            raise ProbeFailed(f"{session.role}: connection closed (code {code}{reason}) while waiting for {what}")
        left = deadline - time.monotonic()
        if left <= 0:
            limit = timeout if timeout is not None else session.timeout
            raise ProbeFailed(f"{session.role}: timed out after {limit:g} s waiting for {what}")
        session.news.wait(min(left, 0.25))


def barrier(session: _Watched) -> int:
    """A ``ping`` round trip; returns the log's mark once its answer arrived:
    the server sent nothing more before it."""
    mark = session.mark
    conn = session.conn
    if conn is None:
        raise ProbeFailed(f"{session.role} is not connected")
    try:
        conn.send(session.dialect.ping())
    except TransportError as exc:
        raise ProbeFailed(f"{session.role}: {exc}") from None
    expect(session, lambda f: f.type is FrameType.PING, "the answer to a ping", since=mark)
    return session.mark


def absent(session: _Watched, predicate: Callable[[Frame], bool], reason: str, *, since: int) -> None:
    """After a :func:`barrier`: fail with ``reason`` if any frame after ``since`` matches."""
    barrier(session)
    for frame in session.log[since:]:
        if predicate(frame):
            raise ProbeFailed(reason)


def require(condition: bool, reason: str) -> None:
    if not condition:
        raise ProbeFailed(reason)


def is_error(code: ErrorCode | None = None, conversation: str | None = None) -> Callable[[Frame], bool]:
    """Matches an error frame (of ``code``, when given)."""

    def match(frame: Frame) -> bool:
        error = frame.error
        return error is not None and (code is None or error.error_code == code)

    return match


def error_code(frame: Frame) -> str | None:
    return frame.error.error_code if frame.error is not None else None


def message_frame(
    conversation: str, *, client_message_id: str | None = None, uuid: str | None = None
) -> Callable[[Frame], bool]:
    """Matches a chat message frame of ``conversation`` (with that id, or uuid)."""

    def match(frame: Frame) -> bool:
        msg: ConversationMessage | None = frame.message
        if frame.type is not FrameType.MESSAGE or msg is None or frame.conversation_uuid != conversation:
            return False
        if client_message_id is not None and msg.client_message_id != client_message_id:
            return False
        return uuid is None or msg.conversation_message_uuid == uuid

    return match
