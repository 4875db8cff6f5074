"""Accepting every waiting connection at once, not one per event-loop turn.

libuv, under uvloop, accepts one connection per turn of the event loop
(libuv 1.45, libuv/libuv#3696: it then waits for the listening socket to be
reported readable again). Under load a turn of the mock's loop takes 10–20
ms (every socket's frames of that turn are handled in it), so connections
queued in the listen backlog: with 50 customers reconnecting at pace
``fast`` against 17 autopilot agents, 30 waited there and a websocket
``connect`` took 730 ms at the median (``strace``: one ``accept4`` every
15–20 ms, never an ``EAGAIN``). asyncio's own loop accepts up to its backlog
per readiness, but its turns are longer.

:class:`Acceptor` watches the server's listening sockets beside the loop
(a duplicate of each descriptor): each time one is readable, it accepts
every connection waiting (up to :data:`BATCH`), handing each to the loop
with ``connect_accepted_socket`` and the same protocol factory ``serve``
uses (:func:`connection_factory`: websockets' own ``ServerProtocol`` and
connection, with the server's options). Whichever of the two runs first
takes a connection; websockets' ``Server`` runs the handshake and the
handler of each as before. Where the loop has no ``add_reader`` (Windows'
proactor), the loop accepts alone (:meth:`Acceptor.start` returns False).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection
from websockets.extensions.permessage_deflate import enable_server_permessage_deflate
from websockets.server import ServerProtocol

__all__ = ["BATCH", "Acceptor", "connection_factory"]

log = logging.getLogger("webchat_sim.mock")

BATCH = 256
"""Connections accepted per readiness of a listening socket at most (the rest on the next turn)."""
_RETRY_DELAY = 1.0  # as asyncio: out of file descriptors (or memory), accepting pauses for a second
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def connection_factory(
    server: Server,
    create_connection: type[ServerConnection],
    *,
    compression: bool,
    max_size: int | None,
    max_queue: int,
    ping_interval: float | None,
    ping_timeout: float | None,
    close_timeout: float | None,
    write_limit: int = 32768,
) -> Callable[[], ServerConnection]:
    """The protocol factory ``websockets.asyncio.server.serve`` makes for these
    options (no origins, no subprotocols: the mock takes neither)."""
    extensions = enable_server_permessage_deflate(None) if compression else None

    def factory() -> ServerConnection:
        protocol = ServerProtocol(extensions=extensions, max_size=max_size, logger=server.logger)
        return create_connection(
            protocol,
            server,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            max_queue=max_queue,
            write_limit=write_limit,
        )

    return factory


class Acceptor:
    """Accepts for ``server``, in batches (see the module)."""

    def __init__(self, server: Server, factory: Callable[[], ServerConnection]) -> None:
        self._server = server
        self._factory = factory
        self._listeners: list[socket.socket] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._adopting: set[asyncio.Task[Any]] = set()
        self.accepted = 0

    def start(self) -> bool:
        """Watch the listening sockets; False (nothing done) where the loop cannot watch a socket."""
        loop = asyncio.get_running_loop()
        listeners = []
        for bound in self._server.sockets:
            listener = socket.socket(fileno=os.dup(bound.fileno()))  # the loop's server keeps its own
            listener.setblocking(False)
            listeners.append(listener)
        try:
            for listener in listeners:
                loop.add_reader(listener.fileno(), self._ready, listener)
        except NotImplementedError:
            for listener in listeners:
                with contextlib.suppress(Exception):
                    loop.remove_reader(listener.fileno())
                listener.close()
            return False
        self._loop, self._listeners = loop, listeners
        return True

    def _ready(self, listener: socket.socket) -> None:
        loop = self._loop
        assert loop is not None
        for _ in range(BATCH):
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise
                log.error("cannot accept a connection (%s); accepting again in %.0f s", exc, _RETRY_DELAY)
                loop.remove_reader(listener.fileno())
                loop.call_later(_RETRY_DELAY, self._resume, listener)
                return
            self.accepted += 1
            with contextlib.suppress(OSError):  # as asyncio's TCP transports
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = loop.create_task(self._adopt(loop, sock))
            self._adopting.add(task)
            task.add_done_callback(self._adopting.discard)

    def _resume(self, listener: socket.socket) -> None:
        if self._loop is not None and listener in self._listeners:
            self._loop.add_reader(listener.fileno(), self._ready, listener)

    async def _adopt(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        try:
            await loop.connect_accepted_socket(self._factory, sock)
        except Exception as exc:  # the peer went away meanwhile, or the server is closing
            log.debug("accepted connection dropped: %r", exc)
            sock.close()

    def close(self) -> None:
        """Stop accepting: before the server closes its sockets (a duplicate would keep them listening)."""
        loop, self._loop = self._loop, None
        for listener in self._listeners:
            if loop is not None:
                with contextlib.suppress(Exception):
                    loop.remove_reader(listener.fileno())
            listener.close()
        self._listeners = []
