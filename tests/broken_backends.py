"""Broken backends for tests/test_check.py: tiny asyncio ``websockets``
servers on 127.0.0.1, random free ports, each in a thread of its own with
its own event loop (the test process never imports gevent: the checker runs
as ``python -m simulator check`` in a subprocess).

* ``silent``: accepts the websocket handshake and never sends anything.
* ``echo-typing``: a proxy in front of a real backend (``upstream``) that
  also sends every ``typing`` frame a client sends back to that client,
  stamped like a relayed one (with the conversation's ARN).
* ``bad-epoch``: a proxy that turns ``message.message_epoch`` of every
  ``message`` frame the backend sends into a string (an invalid frame).

A proxy passes the backend's close code on to its client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["MODES", "BrokenBackend"]

MODES = ("silent", "echo-typing", "bad-epoch")


class BrokenBackend:
    """One broken backend, started at construction; ``url`` is its websocket URL."""

    def __init__(self, mode: str, upstream: str | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        if mode != "silent" and upstream is None:
            raise ValueError(f"{mode} is a proxy: it needs an upstream URL")
        self.mode = mode
        self.upstream = upstream.rsplit("/", 1)[0] if upstream else None  # ws://host:port
        self.arns: dict[str, str] = {}  # conversation uuid -> ARN, learned from the backend's frames
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._port = 0
        self._thread = threading.Thread(target=self._run, name=f"broken-{mode}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the broken backend did not start")
        self.url = f"ws://127.0.0.1:{self._port}/ws"

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        handler = self._silent if self.mode == "silent" else self._proxy
        server: Server
        async with serve(handler, "127.0.0.1", 0, max_size=None) as server:
            self._port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _silent(self, client: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for _ in client:
                pass

    async def _proxy(self, client: ServerConnection) -> None:
        assert self.upstream is not None and client.request is not None
        async with connect(self.upstream + client.request.path, max_size=None, proxy=None) as backend:

            async def up() -> None:
                async for message in client:
                    await backend.send(message)
                    if self.mode == "echo-typing" and isinstance(message, str):
                        frame: Any = json.loads(message)
                        if frame.get("event_type") == "typing":  # the fault: an echo to its author
                            conversation = frame.get("conversation_uuid", "")
                            await client.send(json.dumps({**frame, "conversation_arn": self.arns.get(conversation)}))

            async def down() -> None:
                async for message in backend:
                    if isinstance(message, str):
                        message = self._downstream(message)
                    await client.send(message)

            tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
            code = backend.close_code if backend.close_code not in (None, 1005, 1006) else 1000
            await client.close(code, backend.close_reason or "")

    def _downstream(self, message: str) -> str:
        frame: Any = json.loads(message)
        if not isinstance(frame, dict):
            return message
        if frame.get("conversation_uuid") and frame.get("conversation_arn"):
            self.arns[frame["conversation_uuid"]] = frame["conversation_arn"]
        if self.mode == "bad-epoch" and frame.get("type") == "message" and isinstance(frame.get("message"), dict):
            frame["message"]["message_epoch"] = "soon"
            return json.dumps(frame)
        return message
