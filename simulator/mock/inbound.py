"""The server's inbound fast path: a whole text frame handled where it is parsed.

``websockets`` hands each message to the connection's handler task through
its assembler: the frame is queued, the task's future resolved, the task
woken by the event loop, the message fetched by ``recv`` and the async
iterator: about 10–20 µs of server CPU per chat message, of ~220 (uvloop,
``benchmarks/bench_relay.py``). A :class:`DirectConnection` instead calls
its :attr:`~DirectConnection.on_text` handler at once, from
``data_received`` (in the protocol callback, before the loop's next turn),
for every unfragmented text frame, when:

* the handler is set (the shell sets it once the core knows the connection);
* the connection is open;
* nothing is waiting in the assembler (so messages keep their order: a
  fragmented message, and anything that arrived before the handler was
  set, is read the usual way, by the handler task, first);
* the payload is valid UTF-8.

Nor does such a frame go through websockets' parser (a chain of generator
coroutines and a ``Frame`` per frame, another ~12 µs): while the protocol
waits at a frame boundary with nothing queued, :meth:`DirectConnection.data_received`
cuts the received bytes itself (:class:`simulator.wsframes.FrameSplitter`,
unmasking with the client's key) and hands every other frame to the
protocol whole, in order, and everything after it as it came once the
protocol is no longer at a boundary with nothing queued (a fragmented
message, a close frame). Answers therefore follow the order of the frames
they answer, a pong included.

Anything else (fragmented or binary messages, invalid UTF-8, control
frames, frames that come once the connection is closing) goes the usual
way, with websockets' own errors and close codes; the handler task reads
those as before. The handler runs within ``data_received``: it must not
raise (the shell catches and logs, as its handler task does); it returns
False when it failed the connection (a flood, an internal error): then no
data frame of it is read any more, as the handler task would stop reading.

:class:`Bucket` is a connection's rate limit (the shell's, per frame).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN, Event

from ..wsframes import FrameSplitter, fast_receiving, masked_text_frame, max_message_size

__all__ = ["Bucket", "DirectConnection"]

_TEXT = Opcode.TEXT
_DATA = frozenset({Opcode.TEXT, Opcode.BINARY, Opcode.CONT})


class DirectConnection(ServerConnection):
    """A ``ServerConnection`` whose whole text frames go to :attr:`on_text` at once (see the module)."""

    on_text: Callable[[str], bool] | None = None
    """Called with each text message taken on the fast path; ``None``: all go the usual way.
    False: the connection was failed, no data frame of it is read any more (those parsed
    already in the same read are dropped, as the handler task would not read them either)."""
    reading = True
    splitter: FrameSplitter | None = None
    """Set while received bytes are cut into frames here, without websockets' parser."""

    def _may_split(self) -> bool:
        protocol = self.protocol
        return (
            self.on_text is not None
            and self.reading
            and not protocol.debug  # websockets logs each frame it parses
            and fast_receiving(protocol)
            and not self.recv_messages.frames.queue
        )

    def data_received(self, data: bytes) -> None:
        splitter = self.splitter
        if splitter is None:
            if not self._may_split():
                super().data_received(data)
                return
            splitter = self.splitter = FrameSplitter(max_message_size(self.protocol), masked=True)
        self._split(splitter, data)

    def _split(self, splitter: FrameSplitter, data: bytes) -> None:
        """Cut ``data`` into frames: whole text frames to :attr:`on_text`, every
        other frame to the protocol, whole, in order; once the protocol is
        no longer at a frame boundary with nothing queued (a fragmented
        message, a close frame), everything else goes to it as it came."""
        on_text, protocol = self.on_text, self.protocol
        assert on_text is not None  # _may_split
        while True:
            texts, other = splitter.split(data)
            for index, payload in enumerate(texts):
                if protocol.state is not OPEN:  # closing (the shell closed it): the usual way, as before
                    self._unsplit(splitter, texts[index:], other)
                    return
                try:
                    text = str(payload, "utf-8")
                except UnicodeDecodeError:  # the protocol closes with 1007, as it always did
                    self._unsplit(splitter, texts[index:], other)
                    return
                if not on_text(text):
                    self.reading = False  # the connection was failed: the data frames that follow are dropped
                    self._unsplit(splitter, texts[index + 1 :], other)
                    return
            if other is None:
                return
            super().data_received(other)
            if not self._may_split():
                self._unsplit(splitter, [], None)
                return
            data = b""

    def _unsplit(self, splitter: FrameSplitter, texts: list[bytes], other: bytes | None) -> None:
        """Leave the split: what was cut and not handled, and what is buffered, goes to the protocol."""
        self.splitter = None
        rest = b"".join(masked_text_frame(payload) for payload in texts)
        if other is not None:
            rest += other
        rest += splitter.take()
        if rest:
            super().data_received(rest)

    def eof_received(self) -> None:
        if (splitter := self.splitter) is not None:
            self._unsplit(splitter, [], None)  # a frame cut short: the protocol sees it before the end
        super().eof_received()

    def process_event(self, event: Event) -> None:
        on_text = self.on_text
        if on_text is None or type(event) is not Frame:  # set once the handshake is over
            super().process_event(event)
            return
        if not self.reading and event.opcode in _DATA:
            return
        if event.opcode is _TEXT and event.fin and self.protocol.state is OPEN and not self.recv_messages.frames.queue:
            try:
                text = str(event.data, "utf-8")
            except UnicodeDecodeError:
                super().process_event(event)  # websockets closes with 1007, as usual
                return
            self.reading = on_text(text)
            return
        super().process_event(event)


class Bucket:
    """Token bucket of one connection: ``rate`` frames per second, ``burst`` deep.
    Tokens may go below zero while frames are refused; at ``-burst`` the peer
    has ignored ``burst`` refusals and is disconnected. ``last`` is when the
    peer last sent a frame (for the idle timeout); :meth:`stop` empties the
    bucket for good: the connection is gone for the core, none of its frames
    may reach it any more (at no cost per frame: the next one is refused)."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.last = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= 1.0
        return self.tokens >= 0.0

    @property
    def exhausted(self) -> bool:
        return self.tokens <= -self.burst

    def stop(self) -> None:
        self.tokens = -math.inf
