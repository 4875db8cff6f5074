"""The writing side of a load-generator
:class:`~simulator.load.transport.Connection`, as its base class.

Writes are serialized by a lock: only its holder calls
``protocol.data_to_send()`` and writes, so bytes hit the socket in protocol
order. On a plain socket each chunk first gets one non-blocking ``send`` on
gevent's own socket (no timer); what does not fit is written within
``write_timeout``. The receiving side never blocks on the lock
(:meth:`FrameWriting._flush_from_reader`): when it is busy the holder is
asked to flush once more before releasing; from the event loop, which must
never block, a short-lived greenlet flushes.
"""

from __future__ import annotations

import socket
from typing import Any

import gevent
import gevent.lock
from gevent import getcurrent
from gevent import socket as gsocket
from websockets.client import ClientProtocol

__all__ = ["FrameWriting"]


class FrameWriting:
    """Flushing what the protocol has to send (the connection holds the state)."""

    _protocol: ClientProtocol
    _sock: gsocket.socket
    _raw: Any  # gevent's own non-blocking socket under a plain one, else None
    _hub: Any
    _terminated: bool
    _write_lock: gevent.lock.Semaphore
    _write_timer: gevent.Timeout | None
    _flush_requested: bool
    _flush_spawned: bool

    def _terminate(self, cause: BaseException | None) -> None:
        """Close the socket and fail every waiter (the connection's)."""
        raise NotImplementedError

    def _drain(self) -> BaseException | None:
        """Write what the protocol has to send; the caller holds the write lock.

        Return the error that broke the connection, if any.
        """
        protocol = self._protocol
        raw = self._raw
        try:
            while True:
                for chunk in protocol.data_to_send():
                    if not chunk:
                        self._sock.shutdown(socket.SHUT_WR)
                        continue
                    if raw is not None:  # fast path: one non-blocking send, no timer
                        try:
                            sent = raw.send(chunk)
                        except BlockingIOError:
                            sent = 0
                        if sent == len(chunk):
                            continue
                        self._write_slowly(memoryview(chunk)[sent:])
                    else:
                        self._write_slowly(chunk)
                if not self._flush_requested:
                    return None
                self._flush_requested = False
        except gevent.Timeout as exc:
            if exc is not self._write_timer:
                raise
            return TimeoutError("timed out while writing")
        except OSError as exc:
            return exc

    def _write_slowly(self, data: bytes | memoryview) -> None:
        """Write what could not be written at once, within ``write_timeout``."""
        timer = self._write_timer
        if timer is None:
            self._sock.sendall(data)
            return
        timer.start()
        try:
            self._sock.sendall(data)
        finally:
            timer.cancel()

    def _flush_from_reader(self) -> BaseException | None:
        """Flush from the receiving side without ever blocking on the write lock.

        In the event loop, which must not block at all, a greenlet is spawned
        to flush (rare: pongs and closing frames), and errors are its own.
        """
        if getcurrent() is self._hub:
            if not self._flush_spawned:
                self._flush_spawned = True
                gevent.spawn(self._flush_later)
            return None
        lock = self._write_lock
        if not lock.acquire(blocking=False):
            self._flush_requested = True  # the holder flushes once more before releasing
            return None
        try:
            return self._drain()
        finally:
            lock.release()

    def _flush_later(self) -> None:
        self._flush_spawned = False
        if not self._terminated:
            cause = self._flush_from_reader()
            if cause is not None:
                self._terminate(cause)
