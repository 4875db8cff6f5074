"""The transport's own framing of simple text frames (simulator/load/framing.py), sans network.

A :class:`Connection` is built around one end of a gevent socket pair with a
protocol whose opening handshake is done, and fed server bytes directly, cut
at every possible place: what it delivers, answers and reports must be what
websockets' own parser makes of the same bytes, whatever the cuts.
"""

from __future__ import annotations

from collections.abc import Iterator

import gevent.socket
import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.protocol import OPEN, SERVER, Protocol
from websockets.uri import parse_uri
from websockets.utils import accept_key

from simulator.errors import FrameError
from simulator.load.framing import FrameSplitter, fast_receiving, text_frame
from simulator.load.transport import Connection
from simulator.protocol import ConversationEventTyping, EventType, Frame, FrameType, decode, encode


def open_protocol(max_size: int | None = 2**20) -> ClientProtocol:
    """A client protocol whose opening handshake has completed."""
    protocol = ClientProtocol(parse_uri("ws://127.0.0.1:1/"), max_size=max_size)
    request = protocol.connect()
    protocol.send_request(request)
    protocol.data_to_send()
    key = request.headers["Sec-WebSocket-Key"]
    response = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
    )
    protocol.receive_data(response.encode())
    protocol.events_received()
    assert protocol.state is OPEN
    return protocol


def server_frame(opcode: Opcode, data: bytes, *, fin: bool = True) -> bytes:
    return WsFrame(opcode, data, fin).serialize(mask=False)


def typing(value: str) -> bytes:
    payload = ConversationEventTyping(value=value)
    return encode(
        Frame(type=FrameType.EVENT, event_type=EventType.TYPING, conversation_uuid="c-1", event_typing=payload)
    )


class Fed:
    """A connection fed bytes by the test; what it delivered, reported invalid and wrote back."""

    def __init__(self, max_size: int | None = 2**20) -> None:
        self.ours, self.theirs = gevent.socket.socketpair()
        self.delivered: list[Frame] = []
        self.invalid: list[FrameError] = []
        self.conn = Connection(
            "ws://127.0.0.1:1/",
            self.ours,
            open_protocol(max_size),
            on_frame=lambda frame, _: self.delivered.append(frame) or True,  # type: ignore[func-returns-value]
            on_invalid=lambda error, _: self.invalid.append(error),
            close_timeout=1.0,
        )

    def feed(self, chunks: Iterator[bytes] | list[bytes]) -> None:
        for chunk in chunks:
            self.conn._received(chunk)

    def written(self) -> list[WsFrame]:
        """The frames the connection wrote to its peer (parsed as a server would)."""
        self.theirs.setblocking(False)
        data = b""
        while True:
            try:
                chunk = self.theirs.recv(65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        server = Protocol(SERVER, state=OPEN)
        server.receive_data(data)
        return [e for e in server.events_received() if isinstance(e, WsFrame)]

    def close(self) -> None:
        self.conn.abort()
        self.theirs.close()


def cuts(stream: bytes) -> Iterator[list[bytes]]:
    """The stream whole, cut once at every position, and byte by byte."""
    yield [stream]
    for at in range(1, len(stream)):
        yield [stream[:at], stream[at:]]
    yield [stream[i : i + 1] for i in range(len(stream))]


def values(frames: list[Frame]) -> list[str]:
    return [f.event_typing.value or "" if f.event_typing is not None else str(f.type) for f in frames]


STREAM = b"".join(
    [
        server_frame(Opcode.TEXT, typing("a")),
        server_frame(Opcode.PING, b"p1"),
        server_frame(Opcode.TEXT, typing("b" * 130)),  # 16-bit length
        server_frame(Opcode.TEXT, typing("c")[:10], fin=False),  # a fragmented message
        server_frame(Opcode.CONT, typing("c")[10:]),
        server_frame(Opcode.BINARY, b"\x00\x01"),
        server_frame(Opcode.TEXT, b"{not json"),
        server_frame(Opcode.TEXT, typing("d")),
        server_frame(Opcode.CLOSE, (1000).to_bytes(2, "big") + b"bye"),
        server_frame(Opcode.TEXT, typing("after close")),  # discarded, as websockets does
    ]
)


def test_every_cut_delivers_answers_and_closes_as_websockets_does() -> None:
    for chunks in cuts(STREAM):
        fed = Fed()
        try:
            fed.feed(chunks)
            assert values(fed.delivered) == ["a", "b" * 130, "c", "d"], chunks
            assert [e.code for e in fed.invalid] == ["binary_frame", "invalid_json"]
            assert fed.conn.closed and fed.conn.close_code == 1000 and fed.conn.close_reason == "bye"
            written = fed.written()
            assert [(f.opcode, f.data) for f in written] == [
                (Opcode.PONG, b"p1"),
                (Opcode.CLOSE, (1000).to_bytes(2, "big") + b"bye"),
            ]
        finally:
            fed.close()


def test_a_64_bit_length_frame_in_pieces() -> None:
    big = typing("e" * 70_000)
    stream = server_frame(Opcode.TEXT, big) + server_frame(Opcode.TEXT, typing("f"))
    for size in (1, 7, 4096, 65536):
        fed = Fed()
        try:
            fed.feed([stream[i : i + size] for i in range(0, len(stream), size)])
            assert values(fed.delivered) == ["e" * 70_000, "f"]
        finally:
            fed.close()


@pytest.mark.parametrize("cut", [1, 3, None])
def test_a_frame_beyond_max_size_fails_the_connection_with_1009(cut: int | None) -> None:
    stream = server_frame(Opcode.TEXT, typing("g")) + server_frame(Opcode.TEXT, typing("h" * 2000))
    chunks = [stream] if cut is None else [stream[: len(stream) - 2000 - cut], stream[len(stream) - 2000 - cut :]]
    fed = Fed(max_size=1000)
    try:
        fed.feed(chunks)
        assert values(fed.delivered) == ["g"]
        assert [f.opcode for f in fed.written()] == [Opcode.CLOSE]
        assert fed.conn._protocol.close_sent is not None and fed.conn._protocol.close_sent.code == 1009
    finally:
        fed.close()


def test_a_masked_frame_from_the_server_is_a_protocol_error() -> None:
    masked = WsFrame(Opcode.TEXT, typing("i")).serialize(mask=True)
    fed = Fed()
    try:
        fed.feed([server_frame(Opcode.TEXT, typing("h")) + masked + server_frame(Opcode.TEXT, typing("j"))])
        assert values(fed.delivered) == ["h"]
        assert fed.conn._protocol.close_sent is not None and fed.conn._protocol.close_sent.code == 1002
    finally:
        fed.close()


def test_reserved_bits_go_to_the_protocol_which_refuses_them() -> None:
    frame = bytearray(server_frame(Opcode.TEXT, typing("k")))
    frame[0] |= 0x40  # RSV1 without compression
    fed = Fed()
    try:
        fed.feed([bytes(frame)])
        assert fed.delivered == []
        assert fed.conn._protocol.close_sent is not None and fed.conn._protocol.close_sent.code == 1002
    finally:
        fed.close()


def test_fast_receiving_waits_for_a_frame_boundary() -> None:
    protocol = open_protocol()
    assert fast_receiving(protocol)
    frame = server_frame(Opcode.TEXT, typing("l"))
    protocol.receive_data(frame[:2])  # the header consumed, the payload not yet here: mid-frame, nothing buffered
    assert not protocol.reader.buffer and not fast_receiving(protocol)
    protocol.receive_data(frame[2:])
    assert [e.opcode for e in protocol.events_received()] == [Opcode.TEXT]
    assert fast_receiving(protocol)


def test_the_splitter_keeps_what_follows_another_frame() -> None:
    splitter = FrameSplitter(1000)
    ping = server_frame(Opcode.PING, b"x")
    second = server_frame(Opcode.TEXT, b"22222")
    texts, other = splitter.split(server_frame(Opcode.TEXT, b"1") + ping + second[:4])
    assert texts == [b"1"] and other == ping and splitter.buffered == 4
    assert splitter.split(b"") == ([], None)
    assert splitter.split(second[4:]) == ([b"22222"], None)
    assert splitter.buffered == 0


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536])
def test_text_frame_is_a_masked_text_frame_a_server_reads(length: int) -> None:
    payload = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    server = Protocol(SERVER, state=OPEN, max_size=None)
    first, second = text_frame(payload), text_frame(payload)
    server.receive_data(first + second)
    frames = [e for e in server.events_received() if isinstance(e, WsFrame)]
    assert [(f.opcode, f.fin, bytes(f.data)) for f in frames] == [(Opcode.TEXT, True, payload)] * 2
    if length >= 4:
        assert first != second  # a fresh masking key per frame


def test_sent_frames_still_decode_on_the_other_side() -> None:
    fed = Fed()
    try:
        frame = Frame(type=FrameType.PING)
        fed.conn.send(frame)
        [written] = fed.written()
        assert decode(bytes(written.data), context=False) == frame
    finally:
        fed.close()
