"""The :class:`Session` base: what customers and agents share.

A session owns one websocket :class:`~simulator.load.transport.Connection`
and a :class:`~simulator.load.meter.Meter`. Every frame that arrives is shown
to the meter first, in the connection's receive loop (it times the pending
answers on arrival), then to the session (what it learns about the chat);
flow control (``_wait``) only decides when a scenario goes on. The verbs
build frames through the session's :class:`~simulator.load.dialect.Dialect`.

With :class:`~simulator.load.dialect.AuthSettings` (``--auth rest``) a
session first authenticates through REST (:meth:`Session.authenticate`,
timed as the ``auth`` KPI) and opens the websocket the answer names with its
JWT; ``connect`` then times the websocket connect alone.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final, overload
from urllib.parse import urlsplit

import gevent
from geventhttpclient import HTTPClient

from ..errors import FrameError, SessionStateError, redact_url
from ..fake import ChatFaker
from ..pace import Pace, Pacing
from ..protocol import ConversationMessage, Error, ErrorCode, EventType, Frame, FrameType
from .dialect import Auth, AuthError, AuthRequest, AuthSettings, Dialect
from .handshake import describe_cause
from .meter import BOARD, KPI, Arrival, DeliveryBoard, Meter, OperationFailed, Recorder, server_reason
from .record import opener
from .transport import Connection, TransportError, WaitTimeout

__all__ = ["Session", "SessionStateError"]


# aliases for the receive path (one lookup each)
_MESSAGE: Final = FrameType.MESSAGE
_EVENT: Final = FrameType.EVENT
_PING: Final = FrameType.PING
_UPDATED_MESSAGE: Final = EventType.UPDATED_MESSAGE
_QUEUE_POSITION: Final = EventType.QUEUE_POSITION
_ACK: Final = Arrival.ACK
_ANSWER: Final = Arrival.ANSWER
_CLOSED: Final = Arrival.CLOSED


class HttpFailure(Exception):
    """A REST call that got no usable answer; the message names the URL without its query."""


def http_call(request: AuthRequest, timeout: float) -> tuple[int, bytes]:
    """Send ``request`` on a fresh connection (geventhttpclient: cooperative
    whether or not the process is monkey-patched; no proxy, whatever the
    environment says); return the status and the body, within ``timeout``
    seconds. :class:`HttpFailure` when nothing usable answered."""
    url = redact_url(request.url)
    parts = urlsplit(request.url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    client: HTTPClient | None = None
    deadline = gevent.Timeout(timeout)
    deadline.start()
    try:
        client = HTTPClient.from_url(request.url, connection_timeout=timeout, network_timeout=timeout)
        response = client.request(request.method, target, body=request.body, headers=request.headers)
        try:
            return response.status_code, response.read()
        finally:
            response.release()
    except gevent.Timeout as exc:
        if exc is not deadline:
            raise
        raise HttpFailure(f"timed out after {timeout:g} s waiting for {url}") from None
    except (ConnectionRefusedError, socket.gaierror) as exc:
        raise HttpFailure(f"nothing answered at {url} ({describe_cause(exc)})") from None
    except TimeoutError:
        raise HttpFailure(f"timed out after {timeout:g} s waiting for {url}") from None
    except Exception as exc:  # geventhttpclient's errors have no common base: one line each
        raise HttpFailure(f"no answer from {url} ({describe_cause(exc)})") from None
    finally:
        deadline.close()
        if client is not None:
            client.close()


class Session:
    """What customers and agents share: a connection, a meter, verbs."""

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
        auth: AuthSettings | None = None,
    ) -> None:
        self.host = host
        self.record = record
        self.meter = Meter(record, role=self.role, timeout=timeout, board=board)
        self.faker = faker
        self.rng = rng or random.Random()
        self.dialect = dialect or Dialect()
        self.pacing = pacing or Pacing()
        self.board = board
        self.conn: Connection | None = None
        self.connect_ok: bool | None = None
        """Whether the last attempt to open a connection (its auth included) worked (``None``: none yet)."""
        self.auth_settings = auth
        """REST auth before every connect (``None``: the dialect's own identities, e.g. the query string)."""
        self.auth: Auth | None = None
        """What the last REST auth answered (the JWT and the websocket URL)."""
        self.my_arn: str | None = None
        self._position_answer: Frame | None = None
        self.last_said_epoch: int | None = None
        self.messages: dict[str, Frame] = {}  # every chat message seen, by uuid
        self.last_epoch: int | None = None
        self.errors: list[Frame] = []
        self._left_behind: list[Frame] = []
        """What the last connection received that no wait took (chat frames:
        no pings, no errors), for the waits after a resume."""

    @property
    def timeout(self) -> float:
        """Seconds one wait (an ack, an agent, a reply) may take; the meter's timeout too."""
        return self.meter.timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self.meter.timeout = value

    # Plumbing -----------------------------------------------------------------

    def _connection(self) -> Connection:
        """The open connection; :class:`SessionStateError` before :meth:`connect`."""
        conn = self.conn
        if conn is None:
            raise SessionStateError(f"{type(self).__name__} is not connected: call connect() first")
        return conn

    @contextmanager
    def _op(self, name: KPI) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        except OperationFailed:
            raise
        except (TransportError, FrameError) as exc:
            raise self.meter.failed(name, str(exc), start, time.perf_counter()) from exc
        else:
            self.meter.timed(name, start, time.perf_counter())

    def _fail(self, name: KPI, reason: str, started: float | None = None) -> OperationFailed:
        """Report a failure of ``name`` (timed from ``started`` if given); return it, to be raised."""
        return self.meter.failed(name, reason, started, time.perf_counter())

    def rest_url(self) -> str:
        """The REST base URL: ``--rest-url``, else the dialect's derivation from the host."""
        settings = self.auth_settings
        if settings is not None and settings.rest_url:
            return settings.rest_url
        return self.dialect.rest_url(self.host)

    def _auth_request(self, rest_url: str) -> AuthRequest:  # overridden
        return self.dialect.agent_auth_request(rest_url, self.api_key())

    def api_key(self) -> str | None:
        """The API key this session presents (``--api-key``)."""
        settings = self.auth_settings
        return settings.api_key if settings is not None else None

    def authenticate(self) -> Auth:
        """The REST auth (``auth`` KPI): the JWT and the websocket URL to
        connect to. A refusal (``HTTP 401 from …``), no answer or an answer
        without a token is a failure of ``auth``, and the connect that would
        follow is not attempted (the user backs off, as after a failed connect)."""
        self.connect_ok = False
        request = self._auth_request(self.rest_url())
        url = redact_url(request.url)
        start = time.perf_counter()
        try:
            status, body = http_call(request, self.timeout)
        except HttpFailure as exc:
            raise self._fail(KPI.AUTH, str(exc), start) from None
        if not 200 <= status < 300:
            reason = f"HTTP {status} from {url}"
            if (message := self.dialect.error_reason(body)) is not None:
                reason += f" ({message})"
            raise self._fail(KPI.AUTH, reason, start)
        try:
            auth = self.dialect.parse_auth(self.role, body)
        except AuthError as exc:
            raise self._fail(KPI.AUTH, f"HTTP {status} from {url}: {exc}", start) from None
        self.meter.timed(KPI.AUTH, start, time.perf_counter())
        self.auth = auth
        return auth

    def _connect_to(self, url: str) -> None:
        """``connect``: the REST auth first when configured (then the
        websocket its answer names, with the JWT), else ``url``."""
        self._left_behind = []  # a new session, not a resume
        if self.auth_settings is None:
            with self._op(KPI.CONNECT):
                self._open(url)
            return
        auth = self.authenticate()
        with self._op(KPI.CONNECT):
            self._open(
                self.dialect.authenticated_url(auth, self.role),
                headers=self.dialect.authenticated_headers(auth, self.role),
            )

    def _open(self, url: str, headers: dict[str, str] | None = None) -> None:
        """Open the connection; its errors' messages name ``url`` without its query string."""
        self.connect_ok = False
        self.conn = opener(self.role)(  # Connection.connect, or a recording one (load --record)
            url,
            timeout=self.timeout,
            headers=self.dialect.headers(self.role) if headers is None else headers,
            on_invalid=self._on_invalid,
            on_frame=self._on_frame,
            validate=self.dialect.strict_frames,
        )
        self.connect_ok = True

    def _on_invalid(self, error: FrameError, raw: bytes | str) -> None:
        self.meter.invalid(str(error), len(raw))

    def _on_frame(self, frame: Frame, arrived: float) -> bool:
        """Called in the receive loop for every valid frame, on arrival: the
        meter times the answers that are pending, the session learns what the
        frame says; returns whether a verb may still wait for this frame
        (``False``: not kept in the inbox)."""
        arrival = self.meter.received(frame, arrived)
        kind = frame.type
        if kind is _MESSAGE:
            msg = frame.message
            if msg is None:
                return False
            self._on_message(frame, msg, arrived, arrival is _ACK)
            return True
        if kind is not _EVENT:
            return kind is _PING
        event = frame.event_type
        if event is _UPDATED_MESSAGE and frame.event_updated_message is not None:
            return False  # read receipts: timed by the meter, never waited for
        if event is _QUEUE_POSITION:
            self._on_queue_position(frame)
            if arrival is not _ANSWER:
                return False  # a push; checks wait for their own answer
            self._position_answer = frame
            return True
        if event is None and frame.error is not None:
            self._on_error(frame, frame.error, arrival)
            return True
        return self._on_event(frame, arrived)

    def _on_error(self, frame: Frame, error: Error, arrival: Arrival) -> None:
        self.errors.append(frame)
        if len(self.errors) > 100:
            del self.errors[:50]
        if arrival is _CLOSED:
            # the peer closed the chat while we were typing: a race, not a failure
            self._on_closed_elsewhere(frame.conversation_uuid or error.object_id)

    def _on_message(self, frame: Frame, msg: ConversationMessage, arrived: float, acked: bool) -> None:
        """Every chat message, on arrival; ``acked``: it acknowledges one of ours."""
        if self.keep_messages and msg.conversation_message_uuid is not None:
            self.messages[msg.conversation_message_uuid] = frame
        epoch = msg.message_epoch
        if epoch is not None and (self.last_epoch is None or epoch > self.last_epoch):
            self.last_epoch = epoch
        if acked:
            if epoch is not None:
                self.last_said_epoch = epoch
            if self.my_arn is None:
                self.my_arn = msg.author_conversation_participant_arn

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
        """Report a scenario-level check that failed (the scenario goes on);
        ``name`` is a :class:`~simulator.load.meter.KPI` member (e.g.
        ``KPI.QUEUE_POSITION``) or a custom scenario's own name."""
        self.meter.failed(name, reason)

    def expire_pending(self, *, final: bool = False) -> None:
        """Report acknowledgements that did not come within the timeout (or,
        with ``final``, before the session ended) as failures."""
        self.meter.expire(time.perf_counter(), final=final)

    def pause(self, seconds: float) -> None:
        """Pacing (typing, thinking): a deliberate delay, not a wait for an event."""
        if seconds > 0:
            gevent.sleep(seconds)

    def think(self) -> None:
        self.pause(self.pacing.think_time(self.rng))

    def ping(self) -> None:
        conn = self._connection()
        start = time.perf_counter()
        conn.send(self.dialect.ping())
        self._wait(KPI.PING, lambda f: f.type is FrameType.PING, None, "ping reply")
        self.meter.timed(KPI.PING, start, time.perf_counter())

    def _send_message(self, conversation_uuid: str, text: str, language: str | None) -> str:
        conn = self._connection()
        if self.pacing.pace is not Pace.NONE:
            conn.send(self.dialect.typing_wire(conversation_uuid, text[: max(1, len(text) // 3)]))
            self.pause(self.pacing.typing_time(text))
        cid = self.faker.client_message_id()
        self.meter.sent(KPI.MESSAGE_ACK, cid, time.perf_counter())
        try:
            conn.send(self.dialect.message_wire(conversation_uuid, text, cid, language))
        except TransportError:
            self.meter.cancel(KPI.MESSAGE_ACK, cid)  # never sent: the broken connection is the failure, not an ack
            raise
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
                f.error is not None and f.error.error_code == ErrorCode.CONVERSATION_CLOSED
            )

        try:
            frame = self._wait(KPI.MESSAGE_ACK, acked_or_refused, timeout, "the acknowledgement of a message")
        except OperationFailed:
            self.meter.cancel(KPI.MESSAGE_ACK, client_message_id)  # reported once, here
            raise
        if frame.message is not None:
            return frame
        self.meter.cancel(KPI.MESSAGE_ACK, client_message_id)
        if frame.error is not None and frame.error.error_code != ErrorCode.CONVERSATION_CLOSED:
            raise OperationFailed(KPI.MESSAGE_ACK, server_reason(frame.error))  # reported on arrival
        self._on_closed_elsewhere(conversation_uuid)
        return None

    def read(self, conversation_uuid: str, message: Frame) -> None:
        """Mark ``message`` (a chat message frame received) as read."""
        conn = self._connection()
        if message.message is None:
            raise ValueError(f"read() needs a chat message frame, got a {message.type} frame")
        uuid = message.message.conversation_message_uuid
        if uuid is not None:
            conn.send(self.dialect.read_wire(conversation_uuid, uuid))

    def disconnect(self, *, abrupt: bool = False) -> None:
        """Drop the connection (without closing any chat; ``abrupt``: without
        the websocket closing handshake either). The chat frames it
        received that no wait took are kept for a resume (:meth:`_resumed`):
        one that came just before the drop moved :attr:`last_epoch`, so the
        server's replay after ``since`` rightly leaves it out."""
        conn = self.conn
        if conn is not None:
            if abrupt:
                conn.abort()
            else:
                conn.close()
            self._left_behind = [f for f in conn.frames(consume=True) if f.type is not _PING and f.error is None]
            self.conn = None

    def _resumed(self) -> None:
        """The session was resumed on a new connection (and what the server
        replays has arrived): the frames the old one left untaken go before
        the new one's, for the waits to come."""
        frames, self._left_behind = self._left_behind, []
        if frames and self.conn is not None:
            self.conn.keep_earlier(frames)

    @property
    def connected(self) -> bool:
        return self.conn is not None and not self.conn.closed
