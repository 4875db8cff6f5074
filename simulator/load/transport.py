"""The load generator's websocket client: websockets' sans-I/O protocol on a gevent socket.

Locust runs on gevent, and asyncio must never run in its process. This module
drives :class:`websockets.client.ClientProtocol` directly from a
:mod:`gevent.socket` (cooperative whether or not the process is
monkey-patched), receiving in the event loop itself (TLS: one receive
greenlet per connection), with no helper thread::

    conn = Connection.connect("ws://127.0.0.1:8765/ws", timeout=5)
    conn.send(frame)
    ack = conn.wait_for(lambda f: f.message is not None and f.message.client_message_id == cid, 10)
    conn.close()

Receiving runs in the event loop: on a plain socket, an I/O watcher's
callback in the gevent hub reads what arrived, feeds the protocol, decodes
each text frame with :func:`simulator.protocol.decode` and switches straight
to the first registered waiter whose predicate accepts it (two greenlet
switches per answer, no receive greenlet, no extra ``recv`` that would
block). Frames nobody waits for go to a bounded inbox that later
:meth:`Connection.wait_for` calls search first. On a TLS socket, whose
library may hold decrypted bytes the watcher cannot see, one receive
greenlet per connection does the same with blocking reads. An invalid frame
(bad JSON, schema violation, a binary frame) goes to ``on_invalid`` and the
session carries on. Control frames are handled as in websockets' own sync
client: pings are answered, the closing handshake is completed and bounded
in time.

Writes are serialized by a lock: only its holder calls
``protocol.data_to_send()`` and writes, so bytes hit the socket in protocol
order. The receiving side never blocks on that lock (it would stop reading
while a writer waits for a peer that is itself blocked writing to us): when
the lock is busy it asks the holder to flush once more before releasing;
from the event loop, which must never block, a short-lived greenlet flushes.

The module is split along those concepts: :mod:`.handshake` opens the
websocket (URL, TCP, TLS, the opening handshake) and defines the errors,
this module the connection itself (the receive loop, decoding, sending,
pings, closing); :mod:`.waiters` and :mod:`.writing` are its base classes
(the inbox and the waiters; flushing to the socket); :mod:`.framing` frames
simple text frames on both sides without websockets' parser and ``Frame``
objects (every other frame still goes through the protocol). The public
names are importable from here.

No proxy is ever used, whatever the environment says.
"""

from __future__ import annotations

import logging
import ssl as ssl_module
import struct
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from itertools import count
from time import perf_counter
from types import TracebackType
from typing import Any, Final, Self

import gevent
import gevent.lock
import gevent.ssl
from gevent import getcurrent
from gevent import socket as gsocket
from gevent.event import AsyncResult, Event
from websockets.client import ClientProtocol
from websockets.exceptions import ProtocolError
from websockets.frames import CloseCode, Opcode
from websockets.frames import Frame as WsFrame
from websockets.protocol import CLOSED, OPEN

from ..errors import FrameError
from ..protocol import ErrorCode, Frame, decode, encode
from .framing import FrameSplitter, fast_receiving, fast_sending, max_message_size, text_frame
from .handshake import (
    RECV_SIZE,
    ConnectError,
    ConnectionClosedError,
    ConnectTimeout,
    HandshakeError,
    TransportError,
    WaitTimeout,
    close_quietly,
    describe_cause,
    open_websocket,
    redact_url,
)
from .waiters import FrameWaiters, _Failure, _Waiter
from .writing import FrameWriting

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "Connection",
    "ConnectionClosedError",
    "FrameObserver",
    "HandshakeError",
    "InvalidFrameHandler",
    "TransportError",
    "WaitTimeout",
    "redact_url",
]

logger = logging.getLogger(__name__)

InvalidFrameHandler = Callable[[FrameError, bytes | str], None]
"""Called with the decoding error and the raw payload of each invalid frame."""

FrameObserver = Callable[[Frame, float], bool | None]
"""Called with each valid frame and the ``perf_counter()`` reading of its arrival;
returning ``False`` means: do not keep this frame in the inbox if no waiter
takes it (frames nobody will ask for)."""

_TEXT: Final = Opcode.TEXT
_BINARY: Final = Opcode.BINARY
_CONT: Final = Opcode.CONT
_PING: Final = Opcode.PING
_PONG: Final = Opcode.PONG
_CLOSE: Final = Opcode.CLOSE


class Connection(FrameWriting, FrameWaiters):
    """One websocket client connection: send frames, wait for frames.

    Create it with :meth:`connect`. Every method must be called from a greenlet
    of the thread that created the connection.

    ``closed`` is true once no more frames will arrive (a close frame was
    received or the connection is gone); ``close_code`` and ``close_reason``
    describe the closing handshake. ``received``, ``invalid`` and ``dropped``
    count valid frames, invalid frames and frames discarded from a full inbox.
    Waiting for frames (:meth:`wait_for`, :meth:`frames`) is :class:`FrameWaiters`'s.
    """

    def __init__(
        self,
        url: str,
        sock: gsocket.socket,
        protocol: ClientProtocol,
        *,
        on_invalid: InvalidFrameHandler | None = None,
        on_frame: FrameObserver | None = None,
        validate: bool = True,
        inbox_limit: int = 10_000,
        close_timeout: float = 5.0,
        write_timeout: float | None = 10.0,
    ) -> None:
        """Wrap a socket whose opening handshake ``protocol`` has completed.

        Prefer :meth:`connect`, which performs the handshake.
        """
        super().__init__(inbox_limit)
        self.url = url
        self._sock = sock
        self._plain = not isinstance(sock, gevent.ssl.SSLSocket)  # gevent's SSL send() ignores its timeout
        # gevent's own non-blocking socket under a plain one: read and write at once, no wrapper
        self._raw: Any = getattr(sock, "_sock", None) if self._plain else None
        self._protocol = protocol
        self._close_timeout = close_timeout
        # Receiving (the inbox and the waiters: FrameWaiters)
        self._on_invalid = on_invalid
        self._on_frame = on_frame
        self._decode: Callable[[bytes], Frame] = decode if validate else partial(decode, context=False)
        self._watcher: Any = None  # the I/O watcher that receives in the event loop (plain sockets)
        self._reader: gevent.Greenlet | None = None  # the receive greenlet (TLS)
        self._fragments: list[bytes] | None = None
        self._fragments_binary = False
        self._splitter = FrameSplitter(max_message_size(protocol))  # simple text frames: no protocol parsing
        self._fast = fast_receiving(protocol)
        self._pings: dict[bytes, tuple[AsyncResult, float]] = {}
        self._ping_ids = count(1)
        # Sending
        self._write_lock = gevent.lock.Semaphore(1)
        self._write_timer = None if write_timeout is None else gevent.Timeout(write_timeout)
        self._flush_requested = False
        self._flush_spawned = False
        # Closing
        self._terminated = False
        self._cause: BaseException | None = None
        self._watchdog: gevent.Greenlet | None = None
        self._done = Event()
        # Statistics (and FrameWaiters.dropped)
        self.received = 0
        self.invalid = 0

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        # Timeouts
        timeout: float = 10.0,
        close_timeout: float = 5.0,
        write_timeout: float | None = 10.0,
        # HTTP
        headers: Mapping[str, str] | None = None,
        # Limits
        max_size: int = 2**20,
        inbox_limit: int = 10_000,
        # Frames
        on_invalid: InvalidFrameHandler | None = None,
        on_frame: FrameObserver | None = None,
        validate: bool = True,
        # WebSocket and TLS
        compression: bool = False,
        ssl: ssl_module.SSLContext | None = None,
    ) -> Connection:
        """Open a connection to a ``ws://`` or ``wss://`` URL and perform the opening handshake.

        ``timeout`` bounds TCP connect, TLS and the handshake together;
        ``close_timeout`` the closing handshake; ``write_timeout`` each write
        that cannot complete at once (``None``: no limit), after which the
        connection is dropped. ``headers`` are added to (or replace) the
        handshake request's headers. Incoming messages
        larger than ``max_size`` bytes fail the connection with code 1009.

        Each text frame is decoded with :func:`simulator.protocol.decode`; with
        ``validate=False`` only JSON, types and enums are checked, not the
        frame's required context. Invalid frames go to ``on_invalid``. Each
        valid frame is shown to ``on_frame(frame, arrived)`` (``arrived``: the
        :func:`time.perf_counter` reading when its bytes were read) before it
        goes to a waiter or the inbox; if it returns ``False`` the frame is
        offered to waiters but not kept in the inbox. Both handlers run where
        bytes are received, the gevent hub itself on a plain socket: they must
        not block (no :meth:`wait_for`, no socket I/O there; :meth:`close` is
        fine, it goes on in a greenlet of its own).

        ``compression`` offers permessage-deflate. For ``wss://``, ``ssl`` must
        be a :class:`gevent.ssl.SSLContext` (what :class:`ssl.SSLContext` is
        once gevent has monkey-patched); the default verifies the server
        against the system's CA certificates.

        Raises :class:`ConnectTimeout`, :class:`HandshakeError` or
        :class:`ConnectError`; :class:`ValueError` for a URL that isn't a
        websocket URL.
        """
        if inbox_limit < 1:
            raise ValueError(f"inbox_limit must be at least 1, got {inbox_limit}")
        sock, protocol, events = open_websocket(
            url, timeout=timeout, headers=headers, max_size=max_size, compression=compression, ssl=ssl
        )
        connection = cls(
            url,
            sock,
            protocol,
            on_invalid=on_invalid,
            on_frame=on_frame,
            validate=validate,
            inbox_limit=inbox_limit,
            close_timeout=close_timeout,
            write_timeout=write_timeout,
        )
        connection._start_receiving()
        # Frames that came with the handshake response; nothing was received since.
        connection._process(events, perf_counter())
        return connection

    # -- State --------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once no more frames will arrive."""
        return self._input_closed

    @property
    def close_code(self) -> int | None:
        """Close code received from the server; 1006 if the connection ended without one; ``None`` before."""
        close = self._protocol.close_rcvd
        if close is not None:
            return int(close.code)
        return CloseCode.ABNORMAL_CLOSURE if self._terminated else None

    @property
    def close_reason(self) -> str | None:
        """Close reason received from the server; ``""`` if the connection ended without one; ``None`` before."""
        close = self._protocol.close_rcvd
        if close is not None:
            return close.reason
        return "" if self._terminated else None

    # -- Sending ------------------------------------------------------------

    def send(self, frame: Frame | bytes) -> None:
        """Send a frame (encoded once) or bytes as they are, in a text frame.

        Raises :class:`ConnectionClosedError` if the connection is closing or closed.
        """
        payload = frame if isinstance(frame, bytes) else encode(frame)
        lock = self._write_lock
        lock.acquire()
        try:
            protocol = self._protocol
            if protocol.state is not OPEN:
                raise self._closed_error()
            if fast_sending(protocol):  # what send_text() would queue, framed without its Frame and BytesIO
                protocol.writes.append(text_frame(payload))
            else:
                protocol.send_text(payload)
            cause = self._drain()
        finally:
            lock.release()
        if cause is not None:
            self._terminate(cause)
            raise self._closed_error() from cause

    def ping(self, timeout: float) -> float:
        """Send a websocket ping and return the round-trip time in seconds.

        Raises :class:`WaitTimeout` if no pong arrives within ``timeout``
        seconds, :class:`ConnectionClosedError` if the connection closes.
        """
        data = struct.pack("!I", next(self._ping_ids) & 0xFFFFFFFF)
        result = AsyncResult()
        lock = self._write_lock
        lock.acquire()
        try:
            if self._protocol.state is not OPEN:
                raise self._closed_error()
            sent_at = perf_counter()
            self._pings[data] = (result, sent_at)
            self._protocol.send_ping(data)
            cause = self._drain()
        finally:
            lock.release()
        if cause is not None:
            self._terminate(cause)
            raise self._closed_error() from cause
        try:
            result.wait(timeout)
        finally:
            self._pings.pop(data, None)
        if not result.ready():
            raise WaitTimeout("pong", timeout)
        received_at: float = result.get(block=False)  # raises ConnectionClosedError
        return received_at - sent_at

    # -- Receiving ----------------------------------------------------------

    def _start_receiving(self) -> None:
        """Receive in the event loop (plain sockets) or in a receive greenlet (TLS)."""
        raw = self._raw
        if raw is None:
            self._reader = gevent.spawn(self._run)
            return
        self._recv = raw.recv
        watcher = self._loop.io(self._sock.fileno(), 1)  # 1: readable
        watcher.start(self._on_readable)
        self._watcher = watcher

    def _on_readable(self) -> None:
        """The socket is readable (runs in the hub: nothing here may block)."""
        try:
            data = self._recv(RECV_SIZE)
        except BlockingIOError:
            return  # spurious wake-up
        except OSError as exc:
            self._end(exc)
            return
        if not data:
            self._end(None)
            return
        try:
            self._received(data)
        except Exception as exc:
            # A safety net: a bug here must not leave waiters hanging.
            logger.exception("websocket receive callback failed on %s", self.url)
            self._terminate(exc)

    def _run(self) -> None:
        """The receive loop of a TLS connection: read, feed the protocol, process events, until it ends."""
        sock = self._sock
        cause: BaseException | None = None
        try:
            while not self._terminated:
                try:
                    data = sock.recv(RECV_SIZE)
                except OSError as exc:
                    cause = exc
                    break
                if self._terminated:
                    return
                if not data:
                    break
                self._received(data)
        except Exception as exc:
            # A safety net: a bug here must not leave waiters hanging.
            logger.exception("websocket receive loop failed on %s", self.url)
            cause = exc
        self._end(cause)

    def _received(self, data: bytes) -> None:
        """Feed bytes to the protocol, handle the frames; answer or end as the protocol says;
        then wake the waiters that were handed something."""
        protocol = self._protocol
        batch: list[tuple[_Waiter, object]] = []
        self._batch = batch
        try:
            arrived = perf_counter() if self._on_frame is not None else 0.0
            if self._fast:
                flush = self._split(data, arrived)
            else:
                protocol.receive_data(data)
                flush = self._process(protocol.events_received(), arrived)
                self._fast = fast_receiving(protocol)
            if flush or protocol.state is not OPEN:
                cause = self._flush_from_reader()
                if cause is not None:
                    self._terminate(cause)
                    return
                if protocol.close_expected():
                    self._expect_close()
            if protocol.state is CLOSED:
                self._end(None)
        finally:
            self._batch = None
            for waiter, value in batch:
                self._hand(waiter, value)

    def _split(self, data: bytes, arrived: float) -> bool:
        """The fast path of :meth:`_received` (:mod:`.framing`): simple text
        frames are delivered as they are cut out, every other frame goes
        through the protocol; once that ends the fast path (a close frame, a
        protocol failure), so does the rest. Return whether to flush."""
        splitter, protocol, deliver = self._splitter, self._protocol, self._deliver
        flush = False
        while True:
            texts, other = splitter.split(data)
            for text in texts:
                deliver(text, arrived)
            if other is None:
                return flush
            protocol.receive_data(other)
            flush = self._process(protocol.events_received(), arrived) or flush
            if not fast_receiving(protocol):
                self._fast = False
                if rest := splitter.take():
                    protocol.receive_data(rest)
                    flush = self._process(protocol.events_received(), arrived) or flush
                return flush
            data = b""

    def _end(self, cause: BaseException | None) -> None:
        """No more bytes will come (EOF, a read error, or the protocol is closed)."""
        if not self._terminated:
            self._protocol.receive_eof()
            if cause is None:
                cause = self._flush_from_reader()
        self._terminate(cause)

    def _process(self, events: Iterable[object], arrived: float) -> bool:
        """Handle incoming frames; return whether the protocol may have something to send."""
        flush = False
        for event in events:
            if not isinstance(event, WsFrame):  # pragma: no cover - only a response, handled by connect()
                continue
            opcode = event.opcode
            if opcode is _TEXT:
                if event.fin:
                    data = event.data  # bytes in practice; typed as any bytes-like
                    self._deliver(data if type(data) is bytes else bytes(data), arrived)
                else:
                    self._fragments = [bytes(event.data)]
                    self._fragments_binary = False
            elif opcode is _CONT:
                fragments = self._fragments
                if fragments is None:  # pragma: no cover - the protocol refuses it
                    continue
                fragments.append(bytes(event.data))
                if event.fin:
                    self._fragments = None
                    if self._fragments_binary:
                        self._binary(b"".join(fragments))
                    else:
                        self._deliver(b"".join(fragments), arrived)
            elif opcode is _BINARY:
                if event.fin:
                    self._binary(bytes(event.data))
                else:
                    self._fragments = [bytes(event.data)]
                    self._fragments_binary = True
            elif opcode is _PING:
                flush = True
            elif opcode is _PONG:
                self._acknowledge(bytes(event.data))
            elif opcode is _CLOSE:
                flush = True
                self._input_closed = True
                self._fail_waiters()
        return flush

    def _deliver(self, data: bytes, arrived: float) -> None:
        """Decode one text message; hand it to the first matching waiter, else the inbox."""
        try:
            frame = self._decode(data)
        except FrameError as exc:
            self._report_invalid(exc, data)
            return
        self.received += 1
        on_frame = self._on_frame
        keep: bool | None = None
        if on_frame is not None:
            try:
                keep = on_frame(frame, arrived)
            except Exception:
                logger.exception("on_frame handler failed for a frame from %s", self.url)
        waiters = self._waiters
        if waiters:
            index = 0
            while index < len(waiters):
                waiter = waiters[index]
                try:
                    matched = waiter[0](frame)
                except Exception as exc:
                    del waiters[index]
                    self._hand(waiter, _Failure(exc))
                    continue
                if matched:
                    del waiters[index]
                    self._hand(waiter, frame)
                    return
                index += 1
        if keep is False:
            return
        inbox = self._inbox
        if len(inbox) == self._inbox_limit:
            self.dropped += 1  # deque(maxlen) discards the oldest
        inbox.append(frame)

    def _binary(self, data: bytes) -> None:
        error = FrameError(f"binary frame of {len(data)} bytes; expected a text frame", code=ErrorCode.BINARY_FRAME)
        self._report_invalid(error, data)

    def _report_invalid(self, error: FrameError, data: bytes) -> None:
        self.invalid += 1
        handler = self._on_invalid
        if handler is None:
            logger.warning("invalid frame from %s: %s", self.url, error)
            return
        try:
            handler(error, data)
        except Exception:
            logger.exception("on_invalid handler failed for a frame from %s", self.url)

    def _acknowledge(self, data: bytes) -> None:
        """A pong acknowledges its ping and every earlier one (RFC 6455 allows answering only the last)."""
        pings = self._pings
        if data not in pings:
            return  # unsolicited, or its ping() already timed out
        now = perf_counter()
        while pings:
            key = next(iter(pings))
            result, _ = pings.pop(key)
            result.set(now)
            if key == data:
                return

    # -- Closing ------------------------------------------------------------

    def close(self, code: int = 1000, reason: str = "", *, timeout: float | None = None) -> None:
        """Perform the closing handshake, waiting at most ``timeout`` seconds (default: ``close_timeout``).

        Idempotent. If the peer doesn't complete the handshake in time, the
        connection is dropped. Waiters get :class:`ConnectionClosedError`.
        """
        if self._terminated:
            return
        if getcurrent() is self._hub:
            # From a handler or a predicate in the event loop, which must not block.
            gevent.spawn(self.close, code, reason, timeout=timeout)
            return
        limit = self._close_timeout if timeout is None else timeout
        protocol = self._protocol
        if protocol.state is OPEN:
            lock = self._write_lock
            if not lock.acquire(timeout=limit):
                self._terminate(TimeoutError("timed out waiting to send the close frame"))
                return
            try:
                if protocol.state is OPEN:
                    try:
                        protocol.send_close(code, reason)
                    except ProtocolError as exc:
                        raise ValueError(str(exc)) from None
                cause = self._drain()
            finally:
                lock.release()
            if cause is not None:
                self._terminate(cause)
                return
            self._expect_close()
        if gevent.getcurrent() is self._reader:
            return  # called from on_invalid or a predicate: the watchdog bounds the handshake
        if not self._done.wait(limit):
            self._terminate(TimeoutError("timed out while closing the connection"))

    def abort(self) -> None:
        """Drop the TCP connection at once, without the closing handshake: to
        the peer, a network failure. Idempotent."""
        self._terminate(None)

    def _expect_close(self) -> None:
        """The peer should close the TCP connection soon: drop it if it doesn't."""
        if self._watchdog is None and not self._terminated:
            self._watchdog = gevent.spawn_later(
                self._close_timeout, self._terminate, TimeoutError("timed out while closing the connection")
            )

    def _terminate(self, cause: BaseException | None) -> None:
        """Close the socket and fail every waiter. Idempotent."""
        if self._terminated:
            return
        self._terminated = True
        self._input_closed = True
        self._cause = cause
        watcher = self._watcher
        if watcher is not None:
            self._watcher = None
            watcher.stop()  # before the socket closes; not close(): this may run in its callback
        close_quietly(self._sock)
        protocol = self._protocol
        protocol.receive_eof()  # idempotent; the state becomes CLOSED
        protocol.data_to_send()
        self._fragments = None
        watchdog = self._watchdog
        if watchdog is not None and watchdog is not gevent.getcurrent():
            watchdog.kill(block=False)
        self._done.set()
        for result, _ in self._pings.values():
            result.set_exception(self._closed_error())
        self._pings.clear()
        self._fail_waiters()  # last: from the hub, the waiting greenlets run at once

    def _closed_error(self) -> ConnectionClosedError:
        """The close frame received, else the one sent (by close() or a protocol failure), else 1006."""
        protocol = self._protocol
        close = protocol.close_rcvd or protocol.close_sent
        if close is not None:
            exc = ConnectionClosedError(int(close.code), close.reason)
        else:
            cause = self._cause
            exc = ConnectionClosedError(CloseCode.ABNORMAL_CLOSURE, "" if cause is None else describe_cause(cause))
        exc.__cause__ = self._cause
        return exc

    # -- Context manager ------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._input_closed else "open"
        return f"<Connection {redact_url(self.url)} {state} inbox={len(self._inbox)} waiting={len(self._waiters)}>"
