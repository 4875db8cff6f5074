"""The inbound fast path (simulator/mock/inbound.py): whole text frames are
handled where websockets parses them; everything else goes the usual way,
in order, with websockets' own close codes."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from simulator.mock.server import WebchatServer
from tests.raw_peer import OP_TEXT, RawPeer, frame
from tests.test_server import mock, run

OP_CONT = 0x0
TIMEOUT = 5.0


def fragment(opcode: int, payload: bytes, *, fin: bool) -> bytes:
    """One masked client frame (zero key) with FIN as given (``raw_peer.frame`` always sets it)."""
    assert len(payload) < 126
    return bytes(((0x80 if fin else 0) | opcode, 0x80 | len(payload))) + b"\0\0\0\0" + payload


def counting_fast_path(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    taken: list[str] = []
    on_text = WebchatServer._on_text

    def counting(self: WebchatServer, *args: Any) -> bool:
        taken.append(args[-1])
        return on_text(self, *args)

    monkeypatch.setattr(WebchatServer, "_on_text", counting)
    return taken


async def developer_messages(peer: RawPeer, count: int) -> list[str]:
    out: list[str] = []
    async with asyncio.timeout(TIMEOUT):
        while len(out) < count:
            received = await peer.receive()
            assert received is not None and received.opcode == OP_TEXT
            out.append(orjson.loads(received.payload)["error"]["developer_message"])
    return out


def test_whole_frames_behind_a_fragmented_message_keep_their_order(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = counting_fast_path(monkeypatch)

    async def scenario() -> None:
        async with mock() as srv:
            peer = await RawPeer.open(srv.port, "/ws?role=customer")
            try:
                await peer.send(frame(OP_TEXT, b'{"type":"bogus0"}'))
                assert "bogus0" in (await developer_messages(peer, 1))[0]
                # In one write: a fragmented message, then two whole ones (parsed in the same read).
                await peer.send(
                    fragment(OP_TEXT, b'{"type":', fin=False)
                    + fragment(OP_CONT, b'"bogus1"}', fin=True)
                    + frame(OP_TEXT, b'{"type":"bogus2"}')
                    + frame(OP_TEXT, b'{"type":"bogus3"}')
                )
                got = await developer_messages(peer, 3)
                assert ["bogus1" in got[0], "bogus2" in got[1], "bogus3" in got[2]] == [True, True, True], got
                assert '{"type":"bogus0"}' in taken  # a whole frame with nothing queued: the fast path
                assert '{"type":"bogus1"}' not in taken  # a fragmented one: the handler task
            finally:
                peer.abort()

    run(scenario())


def test_invalid_utf8_is_closed_by_websockets_with_1007(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = counting_fast_path(monkeypatch)

    async def scenario() -> None:
        async with mock() as srv:
            peer = await RawPeer.open(srv.port, "/ws?role=customer")
            try:
                await peer.send(frame(OP_TEXT, b'{"type":"\xff"}'))
                async with asyncio.timeout(TIMEOUT):
                    close = await peer.receive_close()
                assert close is not None and close.close_code == 1007
                assert taken == []
                assert srv.frames_in == 0
            finally:
                peer.abort()

    run(scenario())


def test_a_core_failure_on_the_fast_path_closes_with_1011_and_reads_nothing_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = counting_fast_path(monkeypatch)

    async def scenario() -> None:
        async with mock() as srv:
            receive = srv.core.receive
            seen: list[Any] = []

            def failing(conn: Any, frame: Any, now: float) -> Any:
                seen.append(frame.type)
                raise RuntimeError("a bug in the core")

            monkeypatch.setattr(srv.core, "receive", failing)
            peer = await RawPeer.open(srv.port, "/ws?role=customer")
            try:
                ping = frame(OP_TEXT, b'{"type":"ping"}')
                await peer.send(ping * 3)  # one read: the first fails the connection, the others are dropped
                async with asyncio.timeout(TIMEOUT):
                    close = await peer.receive_close()
                assert close is not None and close.close_code == 1011
                assert close.payload[2:] == b"internal error"
                assert len(seen) == 1 and len(taken) == 1
                assert srv.frames_in == 1  # nothing more of that read reached the shell
                # The engine was told at once, in the same callback (as the handler task's finally).
                assert srv.status()["sockets"] == 0 and srv.core.status()["connections"] == 0
            finally:
                peer.abort()
                monkeypatch.setattr(srv.core, "receive", receive)

    run(scenario())
