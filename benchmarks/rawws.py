"""A minimal websocket client for the server benchmarks: the least client work per frame.

The benchmarks measure servers on a 2-CPU machine where the clients share the
machine: a client that spends 50 µs per frame (a full ``websockets`` client
parses, assembles and queues every frame) caps what a fast server can show,
and holds kilobytes per idle connection. :class:`RawClient` is an
``asyncio.Protocol`` that speaks just enough RFC 6455 for a benchmark:

* the opening handshake (``101`` expected; the accept key is not checked);
* text frames out with a zero masking key (valid; the payload needs no XOR);
* frames in, unmasked as servers send them, handed to ``on_text`` as bytes
  (no UTF-8 check, no fragmentation: servers here send whole messages);
* pings answered, a close frame answered and the TCP connection closed.

Not a general-purpose client: no TLS, no extensions, no validation.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from typing import cast

__all__ = ["RawClient", "connect"]

OnText = Callable[[bytes], None]

_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING = 0x0, 0x1, 0x2, 0x8, 0x9


def _header(opcode: int, length: int) -> bytes:
    """FIN + opcode, the masked length, and a zero masking key."""
    if length < 126:
        return bytes((0x80 | opcode, 0x80 | length, 0, 0, 0, 0))
    if length < 1 << 16:
        return bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big") + b"\0\0\0\0"
    return bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big") + b"\0\0\0\0"


class RawClient(asyncio.Protocol):
    """One client connection; build it with :func:`connect`."""

    def __init__(self, request: bytes, on_text: OnText | None) -> None:
        loop = asyncio.get_running_loop()
        self.request = request
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._buffer = b""
        self.frames_in = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        if not self.opened.done():
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self._buffer = data
                return
            status = data[: data.find(b"\r\n")]
            if not status.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(f"handshake refused: {status.decode(errors='replace')}"))
                self._close_transport()
                return
            self.opened.set_result(None)
            data = data[end + 4 :]
        size = len(data)
        offset = 0
        while size - offset >= 2:
            first, second = data[offset], data[offset + 1]
            length = second & 0x7F
            start = offset + 2
            if length == 126:
                if size - offset < 4:
                    break
                length = int.from_bytes(data[start : start + 2], "big")
                start += 2
            elif length == 127:
                if size - offset < 10:
                    break
                length = int.from_bytes(data[start : start + 8], "big")
                start += 8
            end = start + length
            if end > size:
                break
            offset = end
            self.frames_in += 1
            opcode = first & 0x0F
            if opcode in (_OP_TEXT, _OP_CONT, _OP_BINARY):
                if self.on_text is not None:
                    self.on_text(data[start:end])
            elif opcode == _OP_PING:
                self._send(0xA, data[start:end])
            elif opcode == _OP_CLOSE:
                self._send(_OP_CLOSE, data[start : start + 2])
                self._close_transport()
                return
        if offset < size:
            self._buffer = data[offset:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("connection closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    # API

    def send_text(self, payload: bytes) -> None:
        """Send one text frame (``payload`` is UTF-8 already)."""
        self._send(_OP_TEXT, payload)

    def close(self, code: int = 1000) -> None:
        """Send a close frame; the server closes the TCP connection (see :attr:`closed`)."""
        self._send(_OP_CLOSE, code.to_bytes(2, "big"))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _send(self, opcode: int, payload: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(_header(opcode, len(payload)) + payload)

    def _close_transport(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(host: str, port: int, path: str, on_text: OnText | None, *, timeout: float) -> RawClient:
    """Open a connection to ``ws://host:port/path`` and complete the handshake within ``timeout``."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        _, client = await loop.create_connection(lambda: RawClient(request, on_text), host, port)
        try:
            await client.opened
        except BaseException:
            client.abort()
            raise
    return client
