"""The mock accepts every waiting connection at once (simulator/mock/accept.py),
not one per turn of the event loop as libuv does under uvloop."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Coroutine
from typing import Any

import pytest

from simulator.mock.accept import Acceptor
from simulator.mock.inbound import DirectConnection
from tests.raw_peer import OP_TEXT, RawPeer, frame
from tests.test_server import mock, run

uvloop = pytest.importorskip("uvloop")

TIMEOUT = 5.0
WAITING = 40


def run_uvloop(coro: Coroutine[Any, Any, None], timeout: float = 30.0) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(timeout):
            await coro

    uvloop.run(bounded())


def test_waiting_connections_are_accepted_in_one_turn_under_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[DirectConnection] = []
    connection_made = DirectConnection.connection_made

    def counting(self: DirectConnection, transport: Any) -> None:
        made.append(self)
        connection_made(self, transport)

    monkeypatch.setattr(DirectConnection, "connection_made", counting)

    async def scenario() -> None:
        async with mock() as srv:
            # Connections the kernel completes while the loop is not looking: all wait in the backlog.
            waiting = [socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) for _ in range(WAITING)]
            try:
                for _ in range(4):  # four turns of the loop; libuv alone accepts one per turn
                    await asyncio.sleep(0)
                assert len(made) == WAITING, f"{len(made)} of {WAITING} accepted in 4 turns"
                assert srv._acceptor is not None and srv._acceptor.accepted >= WAITING - 4
            finally:
                for sock in waiting:
                    sock.close()

    run_uvloop(scenario())


def test_connections_accepted_in_a_batch_chat_as_any_other() -> None:
    async def scenario() -> None:
        async with mock() as srv:
            peers = await asyncio.gather(*(RawPeer.open(srv.port, "/ws?role=customer") for _ in range(20)))
            try:
                for peer in peers:
                    await peer.send(frame(OP_TEXT, b'{"type":"ping"}'))
                async with asyncio.timeout(TIMEOUT):
                    for peer in peers:
                        got = await peer.receive()
                        assert got is not None and got.payload == b'{"type":"ping"}'
                assert srv.status()["sockets"] == 20
            finally:
                for peer in peers:
                    peer.abort()
        assert srv._acceptor is not None and srv._acceptor._listeners == []  # closed with the server

    run_uvloop(scenario())


def test_without_add_reader_the_loop_accepts_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()

        def no_readers(*args: object) -> None:
            raise NotImplementedError  # as Windows' proactor loop

        monkeypatch.setattr(loop, "add_reader", no_readers)
        async with mock() as srv:
            assert srv._acceptor is not None and srv._acceptor._listeners == []
            peer = await RawPeer.open(srv.port, "/ws?role=customer")
            try:
                await peer.send(frame(OP_TEXT, b'{"type":"ping"}'))
                async with asyncio.timeout(TIMEOUT):
                    got = await peer.receive()
                assert got is not None and got.payload == b'{"type":"ping"}'
            finally:
                peer.abort()

    run(scenario())


class _Exhausted:
    """A listening socket out of file descriptors."""

    def fileno(self) -> int:
        return 2**20  # watched by no loop

    def accept(self) -> tuple[socket.socket, Any]:
        raise OSError(errno.EMFILE, "Too many open files")


def test_out_of_file_descriptors_pauses_accepting_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with mock() as srv:
            acceptor = srv._acceptor
            assert isinstance(acceptor, Acceptor)
            loop = asyncio.get_running_loop()
            scheduled: list[Any] = []
            real_call_later = loop.call_later

            def call_later(delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
                scheduled.append((delay, callback, args))
                return real_call_later(delay, callback, *args)

            loop.call_later = call_later  # type: ignore[method-assign]
            try:
                with caplog.at_level(logging.ERROR, logger="webchat_sim.mock"):
                    acceptor._ready(_Exhausted())  # type: ignore[arg-type]
            finally:
                del loop.call_later  # type: ignore[method-assign]
            assert [r.getMessage() for r in caplog.records] == [
                "cannot accept a connection ([Errno 24] Too many open files); accepting again in 1 s"
            ]
            assert [(delay, callback.__name__) for delay, callback, _ in scheduled] == [(1.0, "_resume")]
            # The server itself goes on accepting.
            peer = await RawPeer.open(srv.port, "/ws?role=customer")
            peer.abort()

    run(scenario())
