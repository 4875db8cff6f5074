"""A websocket peer on a bare socket, for tests of misbehaving clients.

A real client library reads everything the server sends and answers the
closing handshake; the peers of the server's limits do not: one stops reading
(a slow consumer), another writes thousands of frames at once (a flood).
:class:`RawPeer` reads only when a test asks (``loop.sock_recv``, no
background reader, a small receive buffer if asked) and writes frames as the
test says, masked with a zero key (valid; the payload needs no XOR).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from dataclasses import dataclass

OP_TEXT, OP_CLOSE, OP_PING = 0x1, 0x8, 0x9


def frame(opcode: int, payload: bytes) -> bytes:
    """One client frame: FIN + ``opcode``, the masked length, a zero masking key, ``payload``."""
    length = len(payload)
    if length < 126:
        head = bytes((0x80 | opcode, 0x80 | length))
    elif length < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


@dataclass(frozen=True)
class Received:
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int:
        return int.from_bytes(self.payload[:2], "big")


class RawPeer:
    """One connection; open it with :meth:`open`, close it with :meth:`abort`."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    @classmethod
    async def open(cls, port: int, target: str, *, rcvbuf: int | None = None, timeout: float = 5.0) -> RawPeer:
        """Connect to ``ws://127.0.0.1:port`` + ``target`` and complete the opening handshake."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if rcvbuf is not None:  # before connect(): the window the server may fill
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        peer = cls(sock)
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, ("127.0.0.1", port))
                key = base64.b64encode(os.urandom(16)).decode()
                request = (
                    f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                )
                await loop.sock_sendall(sock, request.encode())
                while b"\r\n\r\n" not in peer._buffer:
                    chunk = await loop.sock_recv(sock, 4096)
                    if not chunk:
                        raise ConnectionError("connection closed during the handshake")
                    peer._buffer += chunk
        except BaseException:
            sock.close()
            raise
        head, _, peer._buffer = peer._buffer.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            sock.close()
            raise ConnectionError(f"handshake refused: {head[:60]!r}")
        return peer

    async def send(self, data: bytes) -> None:
        """Write ``data`` (frames made with :func:`frame`) in full."""
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def receive(self) -> Received | None:
        """The next frame from the server (``None``: the connection ended)."""
        loop = asyncio.get_running_loop()
        while True:
            data = self._buffer
            if len(data) >= 2:
                length, start = data[1] & 0x7F, 2
                if length == 126:
                    length, start = int.from_bytes(data[2:4], "big"), 4
                elif length == 127:
                    length, start = int.from_bytes(data[2:10], "big"), 10
                if len(data) >= start + length and len(data) >= start:
                    self._buffer = data[start + length :]
                    return Received(data[0] & 0x0F, data[start : start + length])
            try:
                chunk = await loop.sock_recv(self.sock, 65536)
            except ConnectionError:
                return None
            if not chunk:
                return None
            self._buffer += chunk

    async def receive_close(self) -> Received | None:
        """Read until the server's close frame (``None``: the connection ended without one)."""
        while (received := await self.receive()) is not None:
            if received.opcode == OP_CLOSE:
                return received
        return None

    def abort(self) -> None:
        self.sock.close()
