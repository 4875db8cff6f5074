"""Replaying a transcript (:mod:`simulator.transcript`) against a server:
the engine of ``webchat-sim replay`` and of the ``replay:FILE`` scenario.

A :class:`Plan` turns each connection of the transcript into steps: the
frames the participant sent, each preceded by the server's frames it had
received since its previous send (the *expected* frames). A
:class:`Replayer` plays one copy of the plan (one *user*) on new
connections, one greenlet per connection, each opened at its recorded time
(scaled by ``speed``):

* before each send it waits for the frames expected before it, then for the
  rest of the recorded pause (``speed`` 2.0: half of it);
* expected frames are matched by kind (:func:`kind_of`: the frame type, the
  event type, the error code, whether a ``message`` acknowledges one of the
  participant's own) and conversation, in any order between two sends, each
  within its recorded delay after the previous send plus ``tolerance``
  seconds (late: a failure; not within twice that: a failure, and the
  connection's replay stops);
* frames that come and go with timing (typing, read receipts, queue position
  pushes, status updates: :data:`INCIDENTAL`) are never required, nor are
  race refusals (:data:`RACES`); when the other side is not replayed (a live
  agent answers), what it does of its own accord (:data:`OTHER_SIDE`) is
  waited for but not required; nor, both sides replayed, is what raced a
  chat's close across connections (:attr:`Expect.raced`);
* correlation ids are rewritten: each matched frame teaches its connection
  the mapping from the recorded ids (keys ending in ``_uuid`` or ``_arn``) to
  the new server's (per connection: with several users a replayed agent may
  be given another user's customer), and the tokens the server hands out
  (``resume_token``) fill the redacted ones of later URLs;
  ``client_message_id`` is new per user.

Differences are :class:`Failure` objects naming the transcript line: an
expected frame that came late, one that never came (the connection's replay
stops there), an error frame nobody expected, a connection that could not
be opened.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import gevent
import orjson
from gevent.event import Event

from ..errors import TransportError
from ..transcript import REDACTED, Entry, Transcript, TranscriptWriter
from .transport import Connection

__all__ = ["INCIDENTAL", "Failure", "Plan", "ReplayResult", "Replayer", "kind_of", "kind_text"]

INCIDENTAL: Final = frozenset(
    {
        "typing",
        "read message",
        "updated message",
        "participant update",
        "queue status update",
        "queue new member",
        "queue position",
    }
)
"""Event types whose number and moment depend on timing: never required
(a ``queue position`` that answers a ``check queue position`` is). A
``queue new member`` depends on whether the agent was free at that moment;
its queue entry uuid is still learned (an agent's ``engage customer`` names it)."""
OTHER_SIDE: Final = frozenset(
    {
        ("message", "other"),
        ("event", "conversation closed"),
        ("event", "participant join"),
        ("event", "participant left"),
        ("event", "add coupon"),
        ("event", "add item"),
    }
)
"""What the other side does of its own accord: when that side is not
replayed (a live agent answers the replayed customers), waited for but not
required (the live side may join later, say more or less, close earlier)."""
RACES: Final = frozenset({"conversation_closed", "already_engaged", "queue_entry_not_found"})
"""Error codes of races (the chat closed meanwhile, another agent was faster): never required."""
_ID_SUFFIXES: Final = ("_uuid", "_arn")
_INBOX_LIMIT: Final = 10_000

Kind = tuple[str, ...]


def kind_of(frame: dict[str, Any], own_ids: set[str] | frozenset[str]) -> Kind:
    """What a frame is, for matching: ``("message", "ack")`` (one of the
    participant's own, ``own_ids``: its ``client_message_id`` values),
    ``("message", "other")``, ``("error", CODE)``, ``("event", EVENT_TYPE)``
    or ``(TYPE,)``."""
    error = frame.get("error")
    if isinstance(error, dict):
        return ("error", str(error.get("error_code") or "unknown"))
    kind = str(frame.get("type"))
    if kind == "message":
        message = frame.get("message")
        cid = message.get("client_message_id") if isinstance(message, dict) else None
        return ("message", "ack" if cid in own_ids else "other")
    if kind == "event":
        return ("event", str(frame.get("event_type")))
    return (kind,)


def kind_text(kind: Kind) -> str:
    if kind[0] == "event":
        return f"`{kind[1]}`"
    if kind[0] == "message":
        return "`message` (the acknowledgement)" if kind[1] == "ack" else "`message` (from the other side)"
    if kind[0] == "error":
        return f"error `{kind[1]}`"
    return f"`{kind[0]}`"


@dataclass(frozen=True, slots=True)
class Expect:
    entry: Entry
    kind: Kind
    delay: float
    """Recorded seconds from the step's start (the previous send or the open) to this frame."""
    required: bool
    soft: bool = False
    """Waited for like a required frame, but its absence is no failure (:data:`OTHER_SIDE`, ``raced``)."""
    raced: bool = False
    """Recorded after the chat's close was sent on a connection other than the one that caused
    it (its message's sender): the server took that message first, but which of two sockets
    it reads first is timing, so a replay may see the close first. Soft."""


@dataclass(slots=True)
class Step:
    expects: list[Expect]
    send: Entry | None
    """``None``: the last step, before the connection closes."""
    gap: float
    """Recorded seconds from the later of the previous send and the last expected frame to this send."""
    started_line: int
    """The line the step's expectations follow (the previous send, or the open)."""
    chat_closed: bool = False
    """The send's conversation was closed already when recorded (e.g. a late read receipt)."""


@dataclass(slots=True)
class ConnPlan:
    conn: int
    role: str
    opened_at: float
    """Recorded seconds since the transcript started."""
    url: str | None
    open_line: int
    steps: list[Step]


class Plan:
    """The transcript's connections as steps; ``roles``: the sides replayed."""

    def __init__(self, transcript: Transcript, roles: frozenset[str]) -> None:
        self.transcript = transcript
        self.both_sides = roles >= {"customer", "agent"}
        own: dict[str, set[str]] = {"customer": set(), "agent": set()}
        races = _Races()
        for entry in transcript.entries:
            if entry.dir == "send" and entry.frame is not None:
                cid = _client_message_id(entry.frame)
                if cid is not None:
                    own[entry.role].add(cid)
                    races.sender[cid] = entry.conn
                chat = entry.frame.get("conversation_uuid")
                if entry.frame.get("event_type") == "conversation closed" and isinstance(chat, str):
                    races.closes.setdefault(chat, []).append((entry.t, entry.conn))
        self.conns: list[ConnPlan] = []
        for conn, entries in transcript.connections().items():
            role = entries[0].role
            if role in roles:
                plan = self._plan(conn, role, entries, frozenset(own[role]), races if self.both_sides else None)
                self.conns.append(plan)
        self.expected = sum(1 for c in self.conns for s in c.steps for e in s.expects if e.required and not e.soft)

    @staticmethod
    def _plan(conn: int, role: str, entries: list[Entry], own: frozenset[str], races: _Races | None) -> ConnPlan:
        """``races``: both sides are replayed (what raced a close across connections is soft)."""
        both_sides = races is not None
        first = entries[0]
        opened = first.t / 1000 if first.dir == "open" else max(0.0, first.t / 1000 - 0.001)
        plan = ConnPlan(conn, role, opened, first.url if first.dir == "open" else None, first.line, [])
        expects: list[Expect] = []
        start_t, start_line, last_t = opened, first.line, opened
        answer_due = False  # a check queue position awaits its answer
        closed: set[str] = set()  # chats this connection was told were closed
        latest: dict[str, str | None] = {}  # each chat's latest message received: its client_message_id
        for entry in entries:
            t = entry.t / 1000
            if entry.dir == "recv" and entry.frame is not None:
                kind = kind_of(entry.frame, own)
                required = not (kind[0] == "event" and kind[1] in INCIDENTAL) and not (
                    kind[0] == "error" and kind[1] in RACES
                )
                if kind == ("event", "queue position") and answer_due:
                    required, answer_due = True, False
                soft = required and not both_sides and kind in OTHER_SIDE
                chat = entry.frame.get("conversation_uuid")
                if isinstance(chat, str) and kind[0] == "message":
                    latest[chat] = _client_message_id(entry.frame)  # what a `new message` event follows
                raced = (
                    races is not None
                    and required
                    and isinstance(chat, str)
                    and kind != ("event", "conversation closed")
                    and races.raced(chat, entry.t, latest.get(chat))
                )
                expects.append(Expect(entry, kind, max(0.0, t - start_t), required, soft or raced, raced))
                if kind == ("event", "conversation closed") and isinstance(chat, str):
                    closed.add(chat)
                if required:
                    last_t = max(last_t, t)
            elif entry.dir == "send" and entry.frame is not None:
                chat = entry.frame.get("conversation_uuid")
                gap = max(0.0, t - max(start_t, last_t))
                plan.steps.append(Step(expects, entry, gap, start_line, chat in closed))
                expects, start_t, start_line, last_t = [], t, entry.line, t
                if entry.frame.get("type") == "check queue position":
                    answer_due = True
        end = entries[-1].t / 1000 if entries[-1].dir == "close" else last_t
        plan.steps.append(Step(expects, None, max(0.0, end - max(start_t, last_t)), start_line))
        return plan


@dataclass(slots=True)
class _Races:
    """The transcript's closes and message senders, to tell what raced a close (:attr:`Expect.raced`)."""

    closes: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    """Each chat's ``conversation closed`` sends: recorded time (ms), connection."""
    sender: dict[str, int] = field(default_factory=dict)
    """``client_message_id`` -> the connection that sent it."""

    def raced(self, chat: str, t: float, cid: str | None) -> bool:
        """Whether a frame of ``chat`` received at ``t``, caused by message ``cid``, came after a
        close sent on another connection than ``cid``'s (no cause known: no race)."""
        if cid is None:
            return False
        sender = self.sender.get(cid)
        return any(closed < t and conn != sender for closed, conn in self.closes.get(chat, ()))


def _client_message_id(frame: dict[str, Any]) -> str | None:
    message = frame.get("message")
    cid = message.get("client_message_id") if isinstance(message, dict) else None
    return cid if isinstance(cid, str) else None


@dataclass(frozen=True, slots=True)
class Failure:
    line: int
    user: int
    conn: int
    role: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line} (user {self.user}, {self.role} connection {self.conn}): {self.reason}"


@dataclass(slots=True)
class ReplayResult:
    failures: list[Failure] = field(default_factory=list)
    sent: int = 0
    matched: int = 0
    latencies: list[float] = field(default_factory=list)
    """Seconds from each step's start to each required frame's arrival."""
    skipped: int = 0
    """Frames of the live other side (:data:`OTHER_SIDE`) that did not come."""
    connect_failed: int = 0
    """Connections that could not be opened."""
    cut_short: int = 0
    """Connections whose replay stopped because the live other side closed the chat earlier than recorded."""
    raced: int = 0
    """Frames (sent or expected) that raced a chat's close when recorded and lost it this time."""


class _Inbox:
    """What a replayed connection received: decoded JSON, arrival time, consumed mark."""

    __slots__ = ("closed", "closed_chats", "event", "frames", "ids", "images")

    def __init__(self) -> None:
        self.frames: list[list[Any]] = []  # [frame, arrived (perf_counter), consumed]
        self.event = Event()
        self.closed = False
        self.closed_chats: set[str] = set()
        """Conversations a ``conversation closed`` frame or error said were closed."""
        self.ids: dict[str, str] = {}
        """Recorded id -> the new server's, as this connection saw them (the first learned stays):
        with several users, a replayed agent may be given another user's customer."""
        self.images: set[str] = set()
        """The new server's ids that some recorded id maps to."""


class ReplayConnection(Connection):
    """A connection that hands each frame's JSON to an inbox, undecoded by the
    codec (replay checks kinds, not schemas), and optionally records it."""

    recorder: tuple[TranscriptWriter, int, str] | None = None
    _replay_inbox: _Inbox | None = None

    @property
    def inbox(self) -> _Inbox:
        """What arrived (made on the first frame: frames may come with the handshake)."""
        inbox = self._replay_inbox
        if inbox is None:
            inbox = self._replay_inbox = _Inbox()
        return inbox

    def _deliver(self, data: bytes, arrived: float) -> None:
        recorder = self.recorder
        if recorder is not None:
            recorder[0].frame(recorder[1], recorder[2], "recv", data)
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            value = {"type": "invalid", "error": {"error_code": "invalid JSON from the server"}}
        if not isinstance(value, dict):
            value = {"type": "invalid", "error": {"error_code": "not a JSON object"}}
        inbox = self.inbox
        error = value.get("error")
        if value.get("event_type") == "conversation closed" or (
            isinstance(error, dict) and error.get("error_code") == "conversation_closed"
        ):
            chat = value.get("conversation_uuid") or (error.get("object_id") if isinstance(error, dict) else None)
            if isinstance(chat, str):
                inbox.closed_chats.add(chat)
        if len(inbox.frames) < _INBOX_LIMIT:
            inbox.frames.append([value, time.perf_counter(), False])  # `arrived` is 0 without on_frame
        inbox.event.set()

    def _terminate(self, cause: BaseException | None) -> None:
        done = self._terminated
        super()._terminate(cause)
        self.inbox.closed = True
        self.inbox.event.set()
        recorder = self.recorder
        if not done and recorder is not None:
            recorder[0].closed_conn(recorder[1], recorder[2], self.close_code)


class _Stop(Exception):
    """This connection's replay cannot go on (a frame that never came, a connect that failed)."""


class Replayer:
    """One copy (``user``) of a plan against ``host``; :meth:`run` returns when every connection is done."""

    def __init__(
        self,
        plan: Plan,
        host: str,
        *,
        user: int = 0,
        speed: float = 1.0,
        tolerance: float = 2.0,
        connect_timeout: float = 10.0,
        agent_suffix: str = "",
        delay: float = 0.0,
        queue_suffix: str = "",
        writer: TranscriptWriter | None = None,
        on_failure: Callable[[Failure], None] | None = None,
        on_match: Callable[[float], None] | None = None,
    ) -> None:
        self.plan = plan
        self.host = host
        self.user = user
        self.speed = speed
        self.tolerance = tolerance
        self.connect_timeout = connect_timeout
        self.agent_suffix = agent_suffix
        self.delay = delay
        """Seconds before this copy starts (``--spawn-rate``)."""
        self.queue_suffix = queue_suffix
        """Appended to every queue name sent or logged in to: copies in queues of their own."""
        self.writer = writer
        self.on_failure = on_failure
        self.on_match = on_match
        self.result = ReplayResult()
        self.cids: dict[str, str] = {}
        """Recorded ``client_message_id`` -> this user's."""
        self.tokens: dict[str, str] = {}
        """The latest ``resume_token`` the new server gave each role."""
        self.own: dict[str, set[str]] = {"customer": set(), "agent": set()}
        self._started = 0.0

    def run(self) -> ReplayResult:
        if self.delay > 0:
            gevent.sleep(self.delay)
        self._started = time.perf_counter()
        greenlets = [gevent.spawn(self._run_conn, conn) for conn in self.plan.conns]
        try:
            gevent.joinall(greenlets)
        finally:  # stopped from outside (Locust stopping the user): its connections go too
            gevent.killall(greenlets, block=False)
        return self.result

    # -- Failures ------------------------------------------------------------------

    def _fail(self, line: int, conn: ConnPlan, reason: str) -> None:
        failure = Failure(line, self.user, conn.conn, conn.role, reason)
        self.result.failures.append(failure)
        if self.on_failure is not None:
            self.on_failure(failure)

    # -- One connection --------------------------------------------------------------

    def _run_conn(self, plan: ConnPlan) -> None:
        try:
            self._replay_conn(plan)
        except Exception as exc:  # a bug must be a failure, not a pass
            self._fail(plan.open_line, plan, f"internal error: {type(exc).__name__}: {exc}")

    def _replay_conn(self, plan: ConnPlan) -> None:
        gevent.sleep(max(0.0, self._started + plan.opened_at / self.speed - time.perf_counter()))
        try:
            connection = self._open(plan)
        except _Stop:
            return
        try:
            self._steps(plan, connection, connection.inbox)
        except _Stop:
            pass
        except TransportError as exc:
            self._fail(plan.open_line, plan, f"the connection broke: {exc}")
        finally:
            connection.close(timeout=2.0)

    def _url(self, plan: ConnPlan) -> str:
        """The recorded URL's identity on ``host``: tokens as the new server gave them, no ``since``."""
        recorded = urlsplit(plan.url or "")
        target = urlsplit(self.host if "://" in self.host else f"ws://{self.host}")
        params = dict(parse_qsl(recorded.query, keep_blank_values=True))
        params.pop("since", None)  # an epoch of the old server
        token = params.pop("token", None)
        params.setdefault("role", plan.role)
        if plan.role == "agent" and self.agent_suffix and params.get("name"):
            params["name"] += self.agent_suffix
        if self.queue_suffix and params.get("queues"):
            params["queues"] = ",".join(q + self.queue_suffix for q in params["queues"].split(",") if q)
        if token is not None and (fresh := self.tokens.get(plan.role)) is not None:
            params["token"] = fresh
        elif token is not None and token != REDACTED:
            params["token"] = token
        path = target.path if target.path not in ("", "/") else "/ws"
        return urlunsplit((target.scheme, target.netloc, path, urlencode(params, safe=","), ""))

    def _open(self, plan: ConnPlan) -> ReplayConnection:
        url = self._url(plan)
        try:
            connection = cast(ReplayConnection, ReplayConnection.connect(url, timeout=self.connect_timeout))
        except (TransportError, ValueError) as exc:
            self.result.connect_failed += 1
            self._fail(plan.open_line, plan, f"cannot open the connection: {exc}")
            raise _Stop from None
        if self.writer is not None:
            number = self.writer.new_conn()
            connection.recorder = (self.writer, number, plan.role)
            self.writer.opened(number, plan.role, url)
            for item in connection.inbox.frames:  # what came with the handshake, before the recorder
                self.writer.frame(number, plan.role, "recv", orjson.dumps(item[0]))
        return connection

    def _steps(self, plan: ConnPlan, connection: ReplayConnection, inbox: _Inbox) -> None:
        step_start = time.perf_counter()
        errors = frozenset(e.kind for s in plan.steps for e in s.expects if e.kind[0] == "error")
        for step in plan.steps:
            last = self._expect(plan, step, inbox, step_start)
            self._unexpected_errors(plan, step, inbox, errors)
            send = step.send
            if send is None or send.frame is None:  # the end: closed as long after as recorded
                pause = step.gap / self.speed - (time.perf_counter() - max(step_start, last))
                if pause > 0:
                    gevent.sleep(pause)
                return
            chat = send.frame.get("conversation_uuid")
            if not step.chat_closed and isinstance(chat, str) and inbox.ids.get(chat, chat) in inbox.closed_chats:
                if not self.plan.both_sides:
                    self.result.cut_short += 1  # the live agent closed earlier than the recorded one
                    return
                # both sides replayed: a frame that raced the close (it came first when recorded)
                self.result.raced += 1
                step_start = time.perf_counter()
                continue
            if not self.plan.both_sides and self._names_the_unknown(send.frame, inbox):
                self.result.skipped += 1  # e.g. a read receipt of a message the live agent never wrote
                step_start = time.perf_counter()
                continue
            pause = step.gap / self.speed - (time.perf_counter() - max(step_start, last))
            if pause > 0:
                gevent.sleep(pause)
            data = orjson.dumps(self._rewrite(send.frame, plan.role, inbox))
            if connection.recorder is not None:
                writer, number, role = connection.recorder
                writer.frame(number, role, "send", data)
            try:
                connection.send(data)
            except TransportError as exc:
                self._fail(send.line, plan, f"cannot send: {exc}")
                raise _Stop from None
            self.result.sent += 1
            step_start = time.perf_counter()

    def _expect(self, plan: ConnPlan, step: Step, inbox: _Inbox, start: float) -> float:
        """Wait for the step's required frames (matching the incidental ones
        that came too); return the perf_counter of the last match."""
        pending = [e for e in step.expects if e.required]
        last = start
        for expect in step.expects:
            if not expect.required:
                self._match(expect, inbox, plan.role)  # learns ids if it came; never waited for
        while pending:
            for expect in list(pending):
                arrived = self._match(expect, inbox, plan.role)
                if arrived is None:
                    continue
                pending.remove(expect)
                last = max(last, arrived)
                took = max(0.0, arrived - start)  # it may have come before the step began
                if expect.soft:
                    continue
                self.result.matched += 1
                self.result.latencies.append(took)
                if self.on_match is not None:
                    self.on_match(took)
                if took > expect.delay + self.tolerance:
                    self._fail(
                        expect.entry.line,
                        plan,
                        f"{kind_text(expect.kind)} came {took:.2f} s after line {step.started_line}, "
                        f"recorded after {expect.delay:.2f} s (tolerance {self.tolerance:g} s)",
                    )
            now = time.perf_counter()
            for expect in [e for e in pending if self._closed_here(expect, inbox)]:
                pending.remove(expect)  # its chat is closed: it raced the close (came first when recorded)
                self._skip(expect)
            for expect in [e for e in pending if e.soft]:
                if inbox.closed or now >= start + expect.delay + self.tolerance:
                    pending.remove(expect)  # the live other side said less, or closed earlier
                    self._skip(expect)
            if not pending:
                break
            first = min(pending, key=lambda e: (e.soft, e.delay))
            deadline = start + first.delay + (1 if first.soft else 2) * self.tolerance
            left = deadline - now
            if first.soft:
                inbox.event.clear()
                inbox.event.wait(max(0.0, left))
                continue
            if left <= 0 or (inbox.closed and not self._has_unconsumed(inbox)):
                chat = (first.entry.frame or {}).get("conversation_uuid")
                if not self.plan.both_sides and isinstance(chat, str) and inbox.ids.get(chat) in inbox.closed_chats:
                    self.result.cut_short += 1  # the live agent closed the chat earlier than the recorded one
                    raise _Stop
                seen = ", ".join(kind_text(kind_of(f[0], self.own[plan.role])) for f in inbox.frames if not f[2])
                closed = " (the server closed the connection)" if inbox.closed else ""
                self._fail(
                    first.entry.line,
                    plan,
                    f"expected {kind_text(first.kind)} within {first.delay + self.tolerance:.2f} s of line "
                    f"{step.started_line}; it never came{closed}"
                    + (f" (received instead: {seen})" if seen else ""),
                )
                raise _Stop
            inbox.event.clear()  # no switch since the last look: nothing can be missed
            inbox.event.wait(left)
        return last

    def _skip(self, expect: Expect) -> None:
        if expect.raced:
            self.result.raced += 1
        else:
            self.result.skipped += 1

    @staticmethod
    def _closed_here(expect: Expect, inbox: _Inbox) -> bool:
        """Whether the expected frame's conversation is closed on this connection (not so when recorded)."""
        chat = (expect.entry.frame or {}).get("conversation_uuid")
        if not isinstance(chat, str) or expect.kind == ("event", "conversation closed"):
            return False
        mapped = inbox.ids.get(chat)
        return mapped is not None and mapped in inbox.closed_chats

    @staticmethod
    def _has_unconsumed(inbox: _Inbox) -> bool:
        return any(not f[2] for f in inbox.frames)

    def _match(self, expect: Expect, inbox: _Inbox, role: str) -> float | None:
        """Consume the first unconsumed frame of the expected kind and of the
        same conversation (:meth:`_same_chat`); learn its ids (a required
        frame only); its arrival time."""
        own = self.own[role]
        recorded = expect.entry.frame or {}
        for item in inbox.frames:
            if item[2] or kind_of(item[0], own) != expect.kind or not self._same_chat(recorded, item[0], inbox):
                continue
            item[2] = True
            if expect.required:
                self._learn(recorded, item[0], inbox)
            else:
                self._learn_tokens(recorded, item[0])
                if expect.kind == ("event", "queue new member"):
                    self._learn(recorded, item[0], inbox, only="conversation_webchat_queue_uuid")
            return float(item[1])
        return None

    @staticmethod
    def _same_chat(recorded: dict[str, Any], actual: dict[str, Any], inbox: _Inbox) -> bool:
        """Whether ``actual`` may be the new server's ``recorded``: the
        conversation the recorded one names maps to the actual one's, or,
        not mapped yet, the actual one is no other recorded chat's."""
        old, new = recorded.get("conversation_uuid"), actual.get("conversation_uuid")
        if not isinstance(old, str) or not isinstance(new, str):
            return True
        mapped = inbox.ids.get(old)
        return new == mapped if mapped is not None else new not in inbox.images

    def _learn_tokens(self, recorded: dict[str, Any], actual: dict[str, Any]) -> None:
        token = actual.get("resume_token")
        if isinstance(token, str) and "resume_token" in recorded:
            self._learn_token(actual, token)

    def _unexpected_errors(self, plan: ConnPlan, step: Step, inbox: _Inbox, expected: frozenset[Kind]) -> None:
        """Error frames no line of the connection expects, received during
        ``step``: each is a failure naming the line the step follows."""
        own = self.own[plan.role]
        for item in inbox.frames:
            if item[2]:
                continue
            kind = kind_of(item[0], own)
            if kind[0] == "error" and kind not in expected and kind[1] not in RACES:
                item[2] = True
                error = item[0].get("error") or {}
                text = error.get("user_message") or error.get("developer_message") or ""
                reason = f"unexpected {kind_text(kind)} from the server" + (f": {text}" if text else "")
                self._fail(step.started_line, plan, reason)

    # -- Correlation -----------------------------------------------------------------

    def _learn(self, recorded: Any, actual: Any, inbox: _Inbox, only: str | None = None) -> None:
        """Map the recorded ids to the new server's, walking both frames alike."""
        if isinstance(recorded, dict) and isinstance(actual, dict):
            for key, old in recorded.items():
                new = actual.get(key)
                if new is None:
                    continue
                if isinstance(old, str) and isinstance(new, str):
                    if key == "resume_token":
                        self._learn_token(actual, new)
                    elif (
                        (key == only if only else key.endswith(_ID_SUFFIXES))
                        and old not in inbox.ids
                        and new not in inbox.images
                    ):
                        inbox.ids[old] = new
                        inbox.images.add(new)
                elif isinstance(old, dict | list):
                    self._learn(old, new, inbox, only)
        elif isinstance(recorded, list) and isinstance(actual, list):
            for old, new in zip(recorded, actual, strict=False):
                self._learn(old, new, inbox, only)

    def _learn_token(self, frame: dict[str, Any], token: str) -> None:
        role = "agent" if frame.get("event_type") == "queue status update" else "customer"
        if token != REDACTED:
            self.tokens[role] = token

    @staticmethod
    def _names_the_unknown(frame: Any, inbox: _Inbox) -> bool:
        """Whether ``frame`` names a recorded message the new server never showed (no mapping)."""
        read = frame.get("event_read_message") if isinstance(frame, dict) else None
        uuid_ = read.get("conversation_message_uuid") if isinstance(read, dict) else None
        return isinstance(uuid_, str) and uuid_ not in inbox.ids

    def _rewrite(self, frame: Any, role: str, inbox: _Inbox) -> Any:
        """The frame to send: recorded ids replaced by the new server's, a new ``client_message_id``."""
        if isinstance(frame, dict):
            out: dict[str, Any] = {}
            for key, value in frame.items():
                if key == "queue_name" and isinstance(value, str) and self.queue_suffix:
                    out[key] = value + self.queue_suffix
                elif key == "client_message_id" and isinstance(value, str):
                    new = self.cids.get(value)
                    if new is None:
                        new = self.cids[value] = str(uuid.uuid4())
                    self.own[role].add(new)
                    out[key] = new
                else:
                    out[key] = self._rewrite(value, role, inbox)
            return out
        if isinstance(frame, list):
            return [self._rewrite(v, role, inbox) for v in frame]
        if isinstance(frame, str):
            return inbox.ids.get(frame, frame)
        return frame
