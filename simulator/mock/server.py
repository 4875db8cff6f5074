"""The mock webchat server: asyncio + ``websockets`` glue around the engine.

It accepts connections on ``ws://HOST:PORT/ws``, identifies the participant,
decodes each frame, hands it to the sans-I/O core (the engine, or the autopilot
hub that hosts simulated agents inside it), encodes every outgoing frame
**once** and broadcasts it to its recipients, closes the connections the core
says to close, runs the core's timers and enforces limits. Nothing else: all
chat behaviour lives in the engine, and the shell never looks inside the
frames it sends.

Who a connection is, is decided at the handshake by a
:class:`~.access.FrontDoor` when one is given: a JWT as ``?token=`` or
``Authorization: Bearer`` (refused with 401/403 when forged, expired or of
the wrong role), or, in development mode only, the query string::

    ws://127.0.0.1:8765/ws?role=customer[&name=…&email=…&lang=fr][&token=RESUME&since=EPOCH_MS]
    ws://127.0.0.1:8765/ws?role=agent&name=Alice&queues=support,sales

Without a front door the query string alone identifies (development mode).
``GET /healthz`` answers ``200`` with a small JSON status (plus the
:attr:`WebchatServer.links` the program sets: REST and web URLs).

Fault injection (:mod:`.faults`, ``serve --fault``, ``PUT /admin/faults``):
while a fault is on, :meth:`WebchatServer._deliver` hands each batch to
``_deliver_faulty``, which carries out the decider's verdict per frame per
recipient (abort, drop, duplicate, hold back, delay in order); with none on,
the hot path is the usual one behind a single ``if self.faults:``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import math
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import OPEN

from ..errors import AccessDenied, FrameError, IdentityError
from ..protocol import Error, ErrorCode, Frame, FrameType, decode, encode
from .accept import Acceptor, connection_factory
from .access import FrontDoor, parse_identity
from .engine import Close, ConnId, Delivery, Identity
from .faults import REORDER_HOLD, Decision, FaultConfig, FaultDecider
from .framing import queue_text
from .inbound import Bucket as _Bucket
from .inbound import DirectConnection
from .metrics import Counters

if TYPE_CHECKING:
    from .persist import Persister

__all__ = ["Core", "IdentityError", "ServerConfig", "Tap", "WebchatServer", "parse_identity"]  # parse_identity: .access

log = logging.getLogger("webchat_sim.server")

Tap = Callable[[str, bytes], None]
"""A watcher of one conversation's frames (:attr:`WebchatServer.taps`): called
with ``"in"`` and the raw frame a client sent, or ``"out"`` and the encoded
frame the server sent (once per frame, whatever the number of recipients)."""


_fields = object.__getattribute__
"""``_fields(frame, "__dict__")``: a frame's field values, read without turning a
:class:`~.prepared.PreparedFrame` into a model (its envelope is all it has)."""


def _tap(watchers: set[Tap], direction: str, data: bytes) -> None:
    for watcher in tuple(watchers):
        try:
            watcher(direction, data)
        except Exception:  # a watcher's bug must not cost the frame
            log.exception("a frame watcher failed")


class Core(Protocol):
    """What the server needs from the sans-I/O core (``Engine`` or ``AutopilotHub``).

    After each of ``start``, ``connect``, ``receive``, ``disconnect`` and
    ``tick``, the server sends the deliveries it returned, then closes the
    connections of ``take_closes()``.
    """

    def start(self, now: float) -> list[Delivery]: ...
    def connect(self, conn: ConnId, identity: Identity, now: float) -> list[Delivery]: ...
    def receive(self, conn: ConnId, frame: Frame, now: float) -> list[Delivery]: ...
    def disconnect(self, conn: ConnId, now: float) -> list[Delivery]: ...
    def tick(self, now: float) -> list[Delivery]: ...
    def take_closes(self) -> Sequence[Close]: ...
    def next_deadline(self) -> float | None: ...
    def error_frame(self, error: FrameError, *, conversation_uuid: str | None = None) -> Frame: ...
    def status(self) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    path: str = "/ws"
    # Limits
    max_frame_bytes: int = 64 * 1024
    max_connections: int = 50_000
    max_write_buffer: int = 4 * 1024 * 1024
    backlog: int = 1024
    """Pending connections the listening socket queues (asyncio's default, 100,
    drops SYNs when thousands of clients connect at once)."""
    frames_per_second: float = 30.0
    burst: int = 60
    # Timeouts
    idle_timeout: float | None = 600.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float = 5.0
    # Protocol
    compression: bool = False
    debug: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)
    # Fault injection (:mod:`.faults`; off by default)
    faults: FaultConfig = field(default_factory=FaultConfig)
    fault_seed: int | None = None
    """The fault decider's seed when ``faults`` has none (``serve --seed``)."""


class _Outbox:
    """A connection's frames delayed (``latency``: ``(due, data)`` by loop
    time, in order) or held back (``reorder``) by the fault injection."""

    __slots__ = ("frames", "held", "hold_timer", "timer")

    def __init__(self) -> None:
        self.frames: deque[tuple[float, bytes]] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.held: list[bytes] = []
        self.hold_timer: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        for timer in (self.timer, self.hold_timer):
            if timer is not None:
                timer.cancel()


_JSON = Headers([("Content-Type", "application/json")])


class WebchatServer:
    """One listening socket serving the webchat dialect on top of a core."""

    def __init__(self, core: Core, config: ServerConfig | None = None, *, door: FrontDoor | None = None) -> None:
        self.core = core
        self.config = config or ServerConfig()
        self.door = door
        self.links: dict[str, str] = {}
        """URLs /healthz reports besides ``websocket_url`` (``rest_url``, ``web_url``)."""
        self.taps: dict[str, set[Tap]] = {}
        """Watchers by conversation uuid (the dashboard's watch feed); empty: one truthiness check per frame."""
        self._conns: dict[ConnId, ServerConnection] = {}
        self._buckets: dict[ConnId, _Bucket] = {}  # of the connections in _conns
        self._next_conn: ConnId = 1
        self._server: Server | None = None
        self._acceptor: Acceptor | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._sweeper: asyncio.Task[None] | None = None
        # Identities parsed by _process_request, taken by _handler (an entry
        # whose handshake fails goes with its connection object).
        self._identities: weakref.WeakKeyDictionary[ServerConnection, Identity] = weakref.WeakKeyDictionary()
        self.started = time.time()
        self.frames_in = 0
        self.frames_out = 0
        self.errors_sent = 0
        self.counters = Counters()
        """Frames by kind, errors by code, relay latency: what ``/metrics`` reports."""
        self.fault_decider = FaultDecider(self.config.faults, seed=self.config.fault_seed)
        self.counters.faults = self.fault_decider.injected
        self.faults: FaultDecider | None = None
        """The decider while a websocket-side fault is on, else ``None`` (one check per batch)."""
        self._outboxes: dict[ConnId, _Outbox] = {}  # frames delayed or held back by faults
        self.store: Persister | None = None
        """Storage (``serve --db``, :mod:`.persist`): deliveries wait for their commit; ``None``: no storage."""
        self.configure_faults({})

    # Life cycle

    async def start(self) -> None:
        cfg = self.config
        # The same options for serve() and the factory the Acceptor (.accept) hands accepted sockets to.
        options: dict[str, Any] = {"max_size": cfg.max_frame_bytes, "max_queue": 64, "close_timeout": cfg.close_timeout}
        options.update(ping_interval=cfg.ping_interval, ping_timeout=cfg.ping_timeout)
        self._server = await serve(
            self._handler,
            cfg.host,
            cfg.port,
            process_request=self._process_request,
            compression="deflate" if cfg.compression else None,
            backlog=cfg.backlog,
            server_header="webchat-sim",
            create_connection=DirectConnection,  # whole text frames handled at once (.inbound)
            **options,
        )
        factory = connection_factory(self._server, DirectConnection, compression=cfg.compression, **options)
        self._acceptor = Acceptor(self._server, factory)
        self._acceptor.start()  # accepts every waiting connection at once, beside the loop's one per turn
        self._apply(self.core.start(time.time()))  # the autopilot hub logs its agents in
        if cfg.idle_timeout:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_idle(cfg.idle_timeout))
        self._reschedule()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        sockname = self._server.sockets[0].getsockname()
        return int(sockname[1])

    @property
    def url(self) -> str:
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"ws://{host}:{self.port}{self.config.path}"

    async def stop(self) -> None:
        """Close every connection with 1001 (going away) and stop listening,
        within the close timeout even for peers that stopped reading."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for ws in list(self._conns.values()):  # bounded by the close timeout (see _close), not by ws.close()
            self._close(ws, 1001, "server shutting down")
        if self._acceptor is not None:
            self._acceptor.close()
        if self._server is not None:
            self._server.close(close_connections=True, reason="server shutting down")  # handshakes in progress
            await self._server.wait_closed()

    async def __aenter__(self) -> WebchatServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # HTTP side

    def status(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "websocket_url": self.url,
            **self.links,
            "uptime_seconds": round(time.time() - self.started, 3),
            "sockets": len(self._conns),
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "errors_sent": self.errors_sent,
            **self.core.status(),
            "faults": self.fault_decider.status(),
            **({"store": self.store.status()} if self.store is not None else {}),
        }

    def configure_faults(self, settings: dict[str, Any]) -> FaultConfig:
        """Apply ``{name: value}`` to the faults (``None`` or 0: off), all or
        nothing (``ValueError`` with one line); the new configuration."""
        config = self.fault_decider.update(settings)
        self.faults = self.fault_decider if config.active else None
        think = self.fault_decider.think_delay if config.slow_agent is not None else None
        for bot in getattr(self.core, "bots", {}).values():  # the autopilot hub's agents
            bot.extra_think = think
        return config

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/healthz":
            return self._json_response(http.HTTPStatus.OK, self.status())
        if url.path != self.config.path:
            return connection.respond(
                http.HTTPStatus.NOT_FOUND, f"no websocket endpoint at {url.path}; use {self.config.path}\n"
            )
        if len(self._conns) >= self.config.max_connections:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "too many connections\n")
        try:
            if self.door is None:
                identity = parse_identity(url.query)
            else:
                authorization = request.headers.get("Authorization")
                identity = self.door.websocket_identity(url.query, authorization, time.time())
        except IdentityError as exc:
            return connection.respond(http.HTTPStatus.BAD_REQUEST, f"{exc}\n")
        except AccessDenied as exc:  # nothing accepted: the engine never hears of it
            return connection.respond(http.HTTPStatus(exc.status), f"{exc}\n")
        self._identities[connection] = identity
        return None

    @staticmethod
    def _json_response(status: http.HTTPStatus, body: Any) -> Response:
        data = orjson.dumps(body)
        headers = Headers(_JSON)
        headers["Content-Length"] = str(len(data))
        return Response(status.value, status.phrase, headers, data)

    # Websocket side

    async def _handler(self, ws: ServerConnection) -> None:
        # Locals live as long as the connection: keep them few (memory per session).
        conn = self._next_conn
        self._next_conn += 1
        self._conns[conn] = ws
        now = time.time()
        cfg = self.config
        bucket = self._buckets[conn] = _Bucket(cfg.frames_per_second, cfg.burst, now)
        try:
            self._apply(self.core.connect(conn, self._identities.pop(ws), now))  # parsed by _process_request
            self._reschedule()
            if isinstance(ws, DirectConnection):
                ws.on_text = partial(self._on_text, ws, conn, bucket)
            async for data in ws:  # what the fast path leaves (.inbound), in order
                if not self._receive(conn, data, bucket):
                    # A flood (or a connection already dropped): closed at once, the rest of it unread.
                    self._close(ws, 1008, "frame rate limit exceeded", fail=True)  # docs/protocol.md, section 6
                    break
                del data  # not kept (nor its decoded frame) while waiting for the next one
        except ConnectionClosed:
            pass
        except Exception:  # a bug in the core must not take the server down
            log.exception("internal error on connection %d", conn)
            with contextlib.suppress(Exception):
                self._close(ws, 1011, "internal error", fail=True)
        finally:
            self._gone(conn)

    def _on_text(self, ws: ServerConnection, conn: ConnId, bucket: _Bucket, data: str) -> bool:
        """A text message on the fast path (.inbound): as :meth:`_handler` would handle it."""
        try:
            if self._receive(conn, data, bucket):
                return True
            self._close(ws, 1008, "frame rate limit exceeded", fail=True)
        except Exception:
            log.exception("internal error on connection %d", conn)
            with contextlib.suppress(Exception):
                self._close(ws, 1011, "internal error", fail=True)
        self._gone(conn)
        return False

    def _gone(self, conn: ConnId) -> None:
        """Tell the core that ``conn`` is gone (once: when its socket ends, or
        as soon as the server drops it, whichever comes first)."""
        if self._conns.pop(conn, None) is None:
            return
        if self._outboxes and (box := self._outboxes.pop(conn, None)) is not None:
            box.cancel()
        self._buckets.pop(conn).stop()  # any frame of it still queued is refused, not handed to the core
        try:
            self._apply(self.core.disconnect(conn, time.time()))
        except Exception:
            log.exception("internal error while disconnecting %d", conn)
        self._reschedule()

    def _receive(self, conn: ConnId, data: str | bytes, bucket: _Bucket) -> bool:
        """Handle one frame from ``conn``; False: the peer ignored the rate
        limit for too long and the connection must be closed."""
        now = time.time()
        started = time.perf_counter()
        self.frames_in += 1
        if self.config.debug:
            log.debug("conn %d <- %r", conn, data[:200])
        if not bucket.take(now):
            if bucket.exhausted:
                return False
            rate = self.config.frames_per_second
            reason = f"more than {rate:g} frames per second; frame dropped"
            self._refuse(conn, FrameError(reason, code=ErrorCode.RATE_LIMITED))
            return True
        if isinstance(data, bytes):
            reason = "binary frames are not accepted; send JSON text frames"
            self._refuse(conn, FrameError(reason, code=ErrorCode.BINARY_FRAME))
            return True
        received = self.counters.received
        try:
            frame = decode(data)
        except FrameError as exc:
            received["invalid"] = received.get("invalid", 0) + 1
            self._refuse(conn, exc)
            return True
        kind = frame.event_type or frame.type
        received[kind] = received.get(kind, 0) + 1
        if self.taps and (watchers := self.taps.get(frame.conversation_uuid or "")):
            _tap(watchers, "in", data.encode())
        self._apply(self.core.receive(conn, frame, now))
        if kind is FrameType.MESSAGE:
            self.counters.observe_relay(time.perf_counter() - started)
        self._reschedule()
        return True

    def deliver(self, deliveries: Iterable[Delivery]) -> Awaitable[None] | None:
        """Send what the core decided outside a websocket frame (a REST call's
        deliveries and closes), then re-arm the tick timer; with storage, what
        to await before answering (done once committed)."""
        self._apply(deliveries)
        self._reschedule()
        return self.store.committed() if self.store is not None and self.store.holding() else None

    def _refuse(self, conn: ConnId, error: FrameError) -> None:
        self._apply([Delivery((conn,), self.core.error_frame(error))])  # with storage: behind held frames

    def _apply(self, deliveries: Iterable[Delivery]) -> None:
        """Carry out what one call of the core decided: send its deliveries,
        then close the connections it says to close (with storage, once committed)."""
        if self.store is not None and self.store.holding():
            self.store.hold(deliveries, self.core.take_closes())
            return
        self.carry_out(deliveries, self.core.take_closes())

    def carry_out(self, deliveries: Iterable[Delivery], closes: Sequence[Close]) -> None:
        """Send ``deliveries``, then close the connections of ``closes``."""
        self._deliver(deliveries)
        if closes:
            conns = self._conns
            for conn, code, reason in closes:
                if (ws := conns.get(conn)) is not None:
                    self._close(ws, code, reason)

    def _close(self, ws: ServerConnection, code: int, reason: str, *, fail: bool = False) -> None:
        """Send ``ws`` its close frame now and abort its transport when the
        close timeout has passed, whatever the keepalive settings, unless the
        connection ended before.

        ``ws.close()`` would not do: it queues the close frame behind the
        unsent data and first waits for the peer to read that (forever, for
        a peer that stopped reading; the keepalive is no help without pings),
        and only then starts the close timeout. A graceful close waits for
        the peer's half of the handshake; with ``fail`` (a peer that broke a
        limit: *Fail the WebSocket Connection*, RFC 6455 section 7.1.7) the
        server reads nothing more from it (the rest is discarded unparsed)
        and ends its side of the TCP stream after the close frame. A
        connection that is closing already keeps its own deadline."""
        if ws.protocol.state is not OPEN:
            return
        if fail:
            ws.protocol.fail(code, reason)
        else:
            ws.protocol.send_close(code, reason)
        loop = asyncio.get_running_loop()
        deadline = ws.close_deadline = loop.time() + self.config.close_timeout  # websockets' own waits, too
        transport = ws.transport
        try:
            ws.send_data()  # on the transport at once, behind what it holds already
        except Exception as exc:  # the connection is broken: nothing to wait for
            log.debug("connection %s: failed to send its close frame: %r", ws.id, exc)
            transport.abort()
            return
        abort = loop.call_at(deadline, transport.abort)
        ws.connection_lost_waiter.add_done_callback(lambda _: abort.cancel())

    def _deliver(self, deliveries: Iterable[Delivery]) -> None:
        """Encode and frame (:mod:`.framing`) each frame once, whatever the number
        of recipients, and queue it on each recipient's protocol; then write what each connection got
        with one ``transport.write`` (a chat message costs its agent one
        syscall for the ``message`` and its ``new message`` summary, not two).
        Connections that are not open are skipped; one whose unsent data grows
        past ``max_write_buffer`` (a peer that stopped reading) is closed with
        1008 rather than buffered without limit, and is gone for the core at
        once (its partners are told now, not when its socket ends). Every
        error frame sent counts in ``errors_sent``, whoever refused.

        With a fault on (:attr:`faults`), :meth:`_deliver_faulty` does it instead."""
        if self.faults:
            self._deliver_faulty(deliveries, self.faults)
            return
        conns = self._conns
        taps = self.taps
        limit = self.config.max_write_buffer
        touched: dict[ServerConnection, ConnId] = {}
        slow: list[ConnId] = []
        counted = self.counters.sent
        try:
            for recipients, frame in deliveries:
                try:
                    data = encode(frame)
                except Exception:  # a bug must cost one frame, not the connection or the batch
                    log.exception("cannot encode a %s frame; dropped", frame.event_type or frame.type)
                    continue
                if taps and (watchers := taps.get(frame.conversation_uuid or "")):
                    _tap(watchers, "out", data)
                sent = 0
                framed = None  # framed once, the same bytes for every recipient (.framing)
                for conn in recipients:
                    if (ws := conns.get(conn)) is not None:
                        sent += 1
                        if ws.protocol.state is OPEN and ws.send_in_progress is None:
                            framed = queue_text(ws.protocol, data, framed)
                            touched[ws] = conn
                self.frames_out += sent
                fields = _fields(frame, "__dict__")
                kind = fields["event_type"] or fields["type"]
                counted[kind] = counted.get(kind, 0) + sent
                if fields["error"] is not None:
                    self._count_errors(fields["error"], sent)
        finally:  # what was queued goes out, even if encoding a later frame failed
            for ws, conn in touched.items():
                # Only text frames were queued on open protocols: no end-of-stream marker among them.
                data = b"".join(ws.protocol.data_to_send())
                try:
                    ws.transport.write(data)
                    if ws.transport.get_write_buffer_size() > limit:  # a peer that does not read
                        self._close(ws, 1008, f"slow consumer: more than {limit} bytes unsent", fail=True)
                        slow.append(conn)
                except Exception as exc:  # as broadcast(): one broken connection must not stop the others
                    log.warning("connection %s: failed to write %d bytes: %r", ws.id, len(data), exc)
            # The core hears of each in a callback of its own, right after this batch: not from
            # within it, nor one level deeper each time its partners' frames find another one slow.
            for conn in slow:
                asyncio.get_running_loop().call_soon(self._gone, conn)

    # Fault injection (off the hot path: only while a fault is on)

    def _deliver_faulty(self, deliveries: Iterable[Delivery], faults: FaultDecider) -> None:
        """:meth:`_deliver` with each frame's fate per recipient drawn by
        ``faults``: aborted connection, lost, doubled, held back behind the
        next frame, or queued behind the connection's delayed frames (its
        order kept). Counted as sent either way (the faults count apart)."""
        conns = self._conns
        taps = self.taps
        touched: dict[ServerConnection, ConnId] = {}
        try:
            for recipients, frame in deliveries:
                try:
                    data = encode(frame)
                except Exception:
                    log.exception("cannot encode a %s frame; dropped", frame.event_type or frame.type)
                    continue
                if taps and (watchers := taps.get(frame.conversation_uuid or "")):
                    _tap(watchers, "out", data)
                sent = 0
                for conn in recipients:
                    if (ws := conns.get(conn)) is None:
                        continue
                    sent += 1
                    if ws.protocol.state is not OPEN or ws.send_in_progress is not None or ws.transport.is_closing():
                        continue
                    decision = faults.decide()
                    if decision.disconnect:
                        ws.transport.abort()  # no close frame: the peer sees 1006; _handler calls _gone
                    elif not decision.drop:
                        self._enqueue(ws, conn, data, decision, touched)
                    if decision.stall:
                        self._stall(ws, decision.stall)
                self._count(frame, sent)
        finally:
            self._write(touched)

    def _stall(self, ws: ServerConnection, seconds: float) -> None:
        """The ``stall`` fault: read nothing more from ``ws`` for ``seconds``."""
        transport = ws.transport
        if transport.is_closing():
            return
        transport.pause_reading()

        def resume() -> None:
            if not transport.is_closing():
                with contextlib.suppress(RuntimeError):  # already reading, or closed meanwhile
                    transport.resume_reading()

        asyncio.get_running_loop().call_later(seconds, resume)

    def _count(self, frame: Frame, sent: int) -> None:
        self.frames_out += sent
        fields = _fields(frame, "__dict__")
        kind = fields["event_type"] or fields["type"]
        self.counters.sent[kind] = self.counters.sent.get(kind, 0) + sent
        if fields["error"] is not None:
            self._count_errors(fields["error"], sent)

    def _count_errors(self, error: Error, sent: int) -> None:
        self.errors_sent += sent
        code = error.error_code or "unknown"
        self.counters.errors[code] = self.counters.errors.get(code, 0) + sent

    def _enqueue(
        self,
        ws: ServerConnection,
        conn: ConnId,
        data: bytes,
        decision: Decision,
        touched: dict[ServerConnection, ConnId],
    ) -> None:
        box = self._outboxes.get(conn)
        items = [data, data] if decision.duplicate else [data]
        loop = asyncio.get_running_loop()
        if decision.reorder and (box is None or not box.held):
            box = box or self._outboxes.setdefault(conn, _Outbox())
            box.held = items
            box.hold_timer = loop.call_later(REORDER_HOLD, self._release_held, conn)
            return
        if box is not None and box.held:  # the frame held back goes after this one
            items += box.held
            box.held = []
            if box.hold_timer is not None:
                box.hold_timer.cancel()
                box.hold_timer = None
        if not decision.delay and (box is None or not box.frames):
            for item in items:
                ws.protocol.send_text(item)
            touched[ws] = conn
            return
        box = box or self._outboxes.setdefault(conn, _Outbox())
        due = loop.time() + decision.delay
        if box.frames:
            due = max(due, box.frames[-1][0])  # never before an earlier frame: the order is kept
        box.frames.extend((due, item) for item in items)
        if box.timer is None:
            box.timer = loop.call_at(box.frames[0][0], self._drain, conn)

    def _drain(self, conn: ConnId) -> None:
        """Send ``conn``'s delayed frames that are due; re-arm for the next."""
        box = self._outboxes.get(conn)
        if box is None:
            return
        box.timer = None
        ws = self._conns.get(conn)
        loop = asyncio.get_running_loop()
        now = loop.time()
        frames = box.frames
        while frames and frames[0][0] <= now:
            data = frames.popleft()[1]
            if ws is not None and ws.protocol.state is OPEN and not ws.transport.is_closing():
                ws.protocol.send_text(data)
        if ws is not None:
            self._write({ws: conn})
        if frames:
            box.timer = loop.call_at(frames[0][0], self._drain, conn)

    def _release_held(self, conn: ConnId) -> None:
        """No next frame came within the hold time: the held one goes alone."""
        box = self._outboxes.get(conn)
        ws = self._conns.get(conn)
        if box is None or ws is None or not box.held:
            return
        box.hold_timer = None
        held, box.held = box.held, []
        touched: dict[ServerConnection, ConnId] = {}
        if ws.protocol.state is OPEN and not ws.transport.is_closing():
            for data in held:
                self._enqueue(ws, conn, data, Decision(), touched)
        self._write(touched)

    def _write(self, touched: dict[ServerConnection, ConnId]) -> None:
        """Write what each connection got queued (as :meth:`_deliver` does, slow consumers included)."""
        limit = self.config.max_write_buffer
        for ws, conn in touched.items():
            data = b"".join(ws.protocol.data_to_send())
            if not data or ws.transport.is_closing():
                continue
            try:
                ws.transport.write(data)
                if ws.transport.get_write_buffer_size() > limit:
                    self._close(ws, 1008, f"slow consumer: more than {limit} bytes unsent", fail=True)
                    asyncio.get_running_loop().call_soon(self._gone, conn)
            except Exception as exc:
                log.warning("connection %s: failed to write %d bytes: %r", ws.id, len(data), exc)

    # Timers

    def _reschedule(self) -> None:
        deadline = self.core.next_deadline()
        if deadline is None or deadline >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = deadline
        self._timer = loop.call_at(loop.time() + max(0.0, deadline - time.time()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        try:
            self._apply(self.core.tick(time.time()))
        except Exception:
            log.exception("internal error in tick")
        self._reschedule()

    async def _sweep_idle(self, idle_timeout: float) -> None:
        """Close connections that sent nothing for ``idle_timeout`` seconds
        (one pass per quarter of the timeout, not per event)."""
        while True:
            await asyncio.sleep(max(0.05, idle_timeout / 4))
            cutoff = time.time() - idle_timeout
            for conn, bucket in list(self._buckets.items()):
                if bucket.last < cutoff and (ws := self._conns.get(conn)) is not None:
                    self._close(ws, 1000, "idle timeout")
