"""The mock's inbound split (simulator/mock/inbound.py, simulator/wsframes.py):
whole text frames are cut from the received bytes without websockets' parser,
unmasked with the client's own key; every other frame, and every cut of the
stream, gives what websockets gives."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import ServerConnection

from simulator.mock.inbound import DirectConnection
from simulator.mock.server import WebchatServer
from simulator.wsframes import FrameSplitter
from tests.raw_peer import OP_CLOSE, OP_PING, OP_TEXT, RawPeer
from tests.test_server import mock, run

TIMEOUT = 5.0
OP_CONT, OP_PONG = 0x0, 0xA


def masked(opcode: int, payload: bytes, *, fin: bool = True, key: bytes | None = None) -> bytes:
    """A client frame masked with a random (non-zero) key."""
    key = key if key is not None else bytes(b | 1 for b in os.urandom(4))
    length = len(payload)
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        head = bytes((first, 0x80 | length))
    elif length < 1 << 16:
        head = bytes((first, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        head = bytes((first, 0x80 | 127)) + length.to_bytes(8, "big")
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def counting_parser(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes handed to websockets' own ``data_received`` (its parser), per call."""
    handed: list[int] = []
    parent: Callable[..., Any] = ServerConnection.data_received

    def counting(self: ServerConnection, data: bytes) -> None:
        handed.append(len(data))
        parent(self, data)

    monkeypatch.setattr(ServerConnection, "data_received", counting)
    return handed


def watching_reads(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], asyncio.Event]:
    """Bytes the server's connections read, and an event set at each read."""
    seen: list[int] = []
    event = asyncio.Event()
    own: Callable[..., Any] = DirectConnection.data_received

    def watching(self: DirectConnection, data: bytes) -> None:
        seen.append(len(data))
        event.set()
        own(self, data)

    monkeypatch.setattr(DirectConnection, "data_received", watching)
    return seen, event


async def answers(peer: RawPeer, count: int = 1 << 30) -> list[tuple[int, bytes]]:
    """What the server sends, until its close frame or ``count`` frames: (opcode, payload), error texts kept."""
    out: list[tuple[int, bytes]] = []
    async with asyncio.timeout(TIMEOUT):
        while len(out) < count and (received := await peer.receive()) is not None:
            payload = received.payload
            if received.opcode == OP_TEXT:
                payload = orjson.dumps(orjson.loads(payload).get("error") or orjson.loads(payload))
            out.append((received.opcode, payload))
            if received.opcode == OP_CLOSE:
                break
    return out


def test_text_frames_are_cut_without_websockets_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    handed = counting_parser(monkeypatch)

    async def scenario() -> None:
        async with mock() as srv:
            peer = await RawPeer.open(srv.port, "/ws?role=customer")
            try:
                await peer.send(masked(OP_TEXT, b'{"type":"ping"}'))
                async with asyncio.timeout(TIMEOUT):
                    first = await peer.receive()
                assert first is not None and orjson.loads(first.payload) == {"type": "ping"}
                before = len(handed)
                # Three in one write, two apart, one long enough for a 16-bit length.
                await peer.send(masked(OP_TEXT, b'{"type":"ping"}') * 3)
                await peer.send(masked(OP_TEXT, b'{"type":"ping"}'))
                await peer.send(masked(OP_TEXT, b'{"type":"ping"' + b" " * 300 + b"}"))
                async with asyncio.timeout(TIMEOUT):
                    for _ in range(5):
                        got = await peer.receive()
                        assert got is not None and orjson.loads(got.payload) == {"type": "ping"}
                assert handed[before:] == []  # none of them went through websockets' parser
                assert srv.frames_in == 6
            finally:
                peer.abort()

    run(scenario())


# Every kind of frame in one stream: whole texts (a refused one too), a ping,
# a fragmented text, a text with a 16-bit length. (Not the close: websockets
# answers a close frame as soon as it parses it, and no data frame follows
# that answer, so what comes back of the frames read with it depends on timing.)
STREAM = b"".join(
    [
        masked(OP_TEXT, b'{"type":"ping"}'),
        masked(OP_TEXT, b'{"type":"bogus1"}'),
        masked(OP_PING, b"hi"),
        masked(OP_TEXT, b'{"type":', fin=False),
        masked(OP_CONT, b'"bogus2"}'),
        masked(OP_TEXT, b'{"type":"bogus3"' + b" " * 130 + b"}"),
        masked(OP_TEXT, b'{"type":"ping"}'),
    ]
)
CLOSE = masked(OP_CLOSE, (1000).to_bytes(2, "big") + b"bye")


async def exchange(srv: WebchatServer, parts: list[bytes], reads: tuple[list[int], asyncio.Event]) -> list[Any]:
    """Send ``parts`` in that many reads of the server (each waits until the
    server has read the one before), and return what came back."""
    seen, event = reads
    peer = await RawPeer.open(srv.port, "/ws?role=customer")
    try:
        for part in parts:
            target = sum(seen) + len(part)
            await peer.send(part)
            async with asyncio.timeout(TIMEOUT):
                while sum(seen) < target:
                    event.clear()
                    await event.wait()
        got = await answers(peer, 6)
        await peer.send(CLOSE)
        return got + await answers(peer)
    finally:
        peer.abort()


def test_every_cut_of_the_stream_gives_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = watching_reads(monkeypatch)

    async def scenario() -> None:
        async with mock() as srv:
            whole = await exchange(srv, [STREAM], reads)
            kinds = [opcode for opcode, _ in whole]
            assert kinds == [OP_TEXT, OP_TEXT, OP_PONG, OP_TEXT, OP_TEXT, OP_TEXT, OP_CLOSE], whole
            assert b"bogus1" in whole[1][1] and b"bogus2" in whole[3][1] and b"bogus3" in whole[4][1]
            assert whole[2][1] == b"hi" and whole[-1][1][:2] == (1000).to_bytes(2, "big")
            for cut in range(1, len(STREAM), 3):
                got = await exchange(srv, [STREAM[:cut], STREAM[cut:]], reads)
                assert got == whole, f"cut at byte {cut}"

    run(scenario(), timeout=60.0)


def test_a_frame_sent_unmasked_is_refused_with_1002() -> None:
    async def scenario() -> None:
        async with mock() as srv:
            peer = await RawPeer.open(srv.port, "/ws?role=customer")
            try:
                await peer.send(masked(OP_TEXT, b'{"type":"ping"}'))
                await peer.send(bytes((0x81, 15)) + b'{"type":"ping"}')  # a client must mask (RFC 6455, 5.1)
                got = await answers(peer)
                assert [opcode for opcode, _ in got] == [OP_TEXT, OP_CLOSE]
                assert got[-1][1][:2] == (1002).to_bytes(2, "big")
                assert srv.frames_in == 1
            finally:
                peer.abort()

    run(scenario())


def test_a_frame_cut_short_by_the_end_of_the_stream_reaches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = watching_reads(monkeypatch)

    async def scenario() -> None:
        async with mock() as srv:
            peer = await RawPeer.open(srv.port, "/ws?role=customer")
            try:
                await peer.send(masked(OP_TEXT, b'{"type":"ping"}'))
                async with asyncio.timeout(TIMEOUT):
                    assert await peer.receive() is not None
                await peer.send(masked(OP_TEXT, b'{"type":"ping"}')[:9])
                seen, event = reads
                async with asyncio.timeout(TIMEOUT):
                    while sum(seen) < 21 + 9:
                        event.clear()
                        await event.wait()
                peer.sock.shutdown(1)  # SHUT_WR: the end of the stream, inside a frame
                async with asyncio.timeout(TIMEOUT):
                    while (received := await peer.receive()) is not None:
                        assert received.opcode == OP_CLOSE  # nothing else: the cut frame reached no one
                assert srv.frames_in == 1
            finally:
                peer.abort()

    run(scenario())


@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536])
def test_the_splitter_unmasks_every_length(length: int) -> None:
    payload = os.urandom(length)
    data = masked(OP_TEXT, payload)
    splitter = FrameSplitter(1 << 20, masked=True)
    texts, other = splitter.split(data[: len(data) // 2])
    texts2, other2 = splitter.split(data[len(data) // 2 :])
    assert other is None and other2 is None
    assert texts + texts2 == [payload] and splitter.buffered == 0


def test_the_splitter_leaves_unmasked_frames_and_larger_ones_to_the_protocol() -> None:
    splitter = FrameSplitter(100, masked=True)
    unmasked = bytes((0x81, 2)) + b"{}"
    texts, other = splitter.split(masked(OP_TEXT, b"ok") + unmasked + masked(OP_TEXT, b"later"))
    assert texts == [b"ok"] and other == unmasked
    assert splitter.split(b"") == ([b"later"], None)
    big = masked(OP_TEXT, b"x" * 101)
    assert splitter.split(big) == ([], big)
