"""Cutting complete websocket text frames out of received bytes, beside websockets' own parser.

Both wings receive mostly the simplest kind of frame: one complete text
frame (the generator from servers, unmasked; the mock from clients, masked).
websockets' sans-I/O protocol parses every frame through a chain of
generator coroutines and a :class:`~websockets.frames.Frame`; for that kind,
the connections of both wings (:mod:`simulator.load.transport`,
:mod:`simulator.mock.inbound`) use a :class:`FrameSplitter` instead, and
leave every other frame to the protocol, byte for byte:

* :class:`FrameSplitter` cuts the received bytes into frames: the payloads
  of unfragmented text frames without reserved bits, masked as the peer's
  role requires (RFC 6455, section 5.1: a client masks, a server does not),
  at most ``max_size`` long, come out directly, unmasked; any other frame
  (control frames, fragments, binary, a frame masked the wrong way, anything
  malformed) comes out as its complete raw bytes, for the protocol to parse
  as it always did (a frame longer than ``max_size``: everything from its
  start, so the protocol fails it with 1009 as before). Ordering is kept:
  splitting stops at the first other frame.
* :func:`fast_receiving` says when the split may be used: the protocol is
  open, has no extension (compression), is not inside a fragmented message
  and its parser waits at a frame boundary with nothing buffered.

UTF-8 is not checked here: each wing decodes the payloads it is handed;
the mock's connection hands a frame that is not valid UTF-8 back to the
protocol (:func:`masked_text_frame`), which closes with 1007 as it always did.
"""

from __future__ import annotations

from typing import Any, Final

from websockets.protocol import OPEN, Protocol

try:  # websockets' C speed-up (always built for CPython wheels); the pure-Python fallback otherwise
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - depends on the websockets build
    from websockets.utils import apply_mask

__all__ = ["FrameSplitter", "apply_mask", "fast_receiving", "masked_text_frame", "max_message_size", "text_head"]

_TEXT_FIN: Final = 0x81  # FIN, no reserved bits, opcode 1 (text)
_MASKED: Final = 0x80
_NO_MASK: Final = b"\x00\x00\x00\x00"


def _parser_at_frame_start(protocol: Protocol) -> bool:
    """Whether the protocol's parser is suspended before a new frame (in
    ``StreamReader.at_eof``), not inside one."""
    generator: Any = protocol.parser
    while True:
        inner = generator.gi_yieldfrom
        if inner is None:
            return bool(generator.__name__ == "at_eof")
        generator = inner


def fast_receiving(protocol: Protocol) -> bool:
    """Whether received bytes may go through a :class:`FrameSplitter` (see the module docstring)."""
    return (
        protocol.state is OPEN
        and not protocol.extensions
        and getattr(protocol, "current_size", getattr(protocol, "cur_size", None)) is None  # older websockets
        and not protocol.reader.buffer
        and _parser_at_frame_start(protocol)
    )


def max_message_size(protocol: Protocol) -> int | None:
    """The protocol's limit on a message (``max_size``; websockets before 15 named it so)."""
    found = getattr(protocol, "max_message_size", getattr(protocol, "max_size", None))
    return found if isinstance(found, int) else None


def text_head(length: int, *, masked: bool) -> bytes:
    """The header of a final text frame of ``length`` bytes (RFC 6455, section 5.2), without the key."""
    bit = _MASKED if masked else 0
    if length < 126:
        return bytes((_TEXT_FIN, bit | length))
    if length < 65536:
        return bytes((_TEXT_FIN, bit | 126)) + length.to_bytes(2, "big")
    return bytes((_TEXT_FIN, bit | 127)) + length.to_bytes(8, "big")


def masked_text_frame(payload: bytes) -> bytes:
    """A client's final text frame carrying ``payload``, masked with a zero key
    (what a :class:`FrameSplitter` cut out, for the protocol to parse after
    all: it gives the same frame, and the same errors)."""
    return text_head(len(payload), masked=True) + _NO_MASK + payload


class FrameSplitter:
    """Cuts a peer's byte stream into frames (see the module docstring):
    ``masked`` when the peer is a client (the mock's side), not when it is a
    server (the generator's).

    Bytes of an incomplete frame are kept until the rest arrives (at most
    one frame of ``max_size`` bytes plus its header).
    """

    __slots__ = ("_masked", "_need", "_pending", "_pending_size", "max_size")

    def __init__(self, max_size: int | None, *, masked: bool = False) -> None:
        self.max_size = max_size if max_size is not None else 2**63
        self._masked = _MASKED if masked else 0
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._need = 0  # bytes the pending frame needs in all (0: its header is incomplete)

    @property
    def buffered(self) -> int:
        """Bytes received and not handed out yet."""
        return self._pending_size

    def split(self, data: bytes) -> tuple[list[bytes], bytes | None]:
        """Add ``data``; return the payloads of the complete simple text
        frames, in order, up to the first other frame, and that frame's raw
        bytes (``None`` if there was none). What follows it stays buffered:
        call again with ``b""`` to go on."""
        pending = self._pending
        if pending:
            if data:
                pending.append(data)
                self._pending_size += len(data)
            if self._pending_size < self._need:
                return [], None
            data = b"".join(pending) if len(pending) > 1 else pending[0]
            pending.clear()
            self._pending_size = 0
            self._need = 0
        texts: list[bytes] = []
        position = 0
        end = len(data)
        max_size = self.max_size
        expected = self._masked
        while end - position >= 2:
            first = data[position]
            second = data[position + 1]
            length = second & 0x7F
            start = position + 2
            if length == 126:
                if end - position < 4:
                    break
                length = int.from_bytes(data[start : start + 2], "big")
                start += 2
            elif length == 127:
                if end - position < 10:
                    break
                length = int.from_bytes(data[start : start + 8], "big")
                start += 8
            masked = second & _MASKED
            if masked:
                start += 4
            if length > max_size:
                # as the protocol would have seen it: it fails the connection (1009) at the header
                texts_rest = data[position:]
                self._keep(b"", 0)
                return texts, texts_rest
            stop = start + length
            if stop > end:
                self._keep(data[position:], stop - position)
                return texts, None
            if first == _TEXT_FIN and masked == expected:
                if masked:
                    texts.append(apply_mask(data[start:stop], data[start - 4 : start]))
                else:
                    texts.append(data[start:stop])
                position = stop
                continue
            self._keep(data[stop:], 0)
            return texts, data[position:stop]
        self._keep(data[position:] if position < end else b"", 0)
        return texts, None

    def _keep(self, rest: bytes, need: int) -> None:
        if rest:
            self._pending.append(rest)
            self._pending_size = len(rest)
        self._need = need

    def take(self) -> bytes:
        """Everything buffered, raw (for the protocol, once the fast path no longer applies)."""
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        self._need = 0
        return data
