"""The fast path of the load generator's websocket framing, beside websockets' own.

websockets' sans-I/O :class:`~websockets.client.ClientProtocol` parses every
incoming frame through a chain of generator coroutines and builds every
outgoing one through a :class:`~websockets.frames.Frame`, a
:class:`io.BytesIO` and a :func:`secrets.token_bytes` call: about half the
transport's own cost of a chat frame. Nearly every frame the generator sees
is the simplest kind, one complete text frame, so this module handles that
kind itself and leaves every other one to the protocol, byte for byte:

* :class:`FrameSplitter` cuts the received bytes into frames: the payloads
  of unmasked, unfragmented text frames without reserved bits, at most
  ``max_size`` long, come out directly; any other frame (control frames,
  fragments, binary, anything malformed) comes out as its complete raw bytes,
  for the protocol to parse as it always did (a frame longer than
  ``max_size``: everything from its start, so the protocol fails it with
  1009 as before). Ordering is kept: splitting stops at the first other frame.
* :func:`text_frame` serializes a masked text frame (a client's) as
  ``Frame.serialize`` does, its mask drawn from a pool of
  :func:`os.urandom` bytes (as unpredictable; one system call per 1,024 frames).
* :func:`fast_receiving` says when the split may be used: the protocol is
  open, has no extension (compression), is not inside a fragmented message
  and its parser waits at a frame boundary with nothing buffered.

The connection (:mod:`.transport`) feeds the protocol the other frames and
everything once the fast path no longer applies (a close frame received, a
protocol failure), so pings, pongs, the closing handshake and every protocol
error behave exactly as before.
"""

from __future__ import annotations

import os
from typing import Any, Final

from websockets.client import ClientProtocol
from websockets.protocol import OPEN

try:  # websockets' C speed-up (always built for CPython wheels); the pure-Python fallback otherwise
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - depends on the websockets build
    from websockets.utils import apply_mask

__all__ = ["FrameSplitter", "fast_receiving", "fast_sending", "max_message_size", "text_frame"]

_TEXT_FIN: Final = 0x81  # FIN, no reserved bits, opcode 1 (text)
_MASKED: Final = 0x80
_MASK_POOL_SIZE: Final = 4096


class _Masks:
    """Masking keys: 4-byte slices of an :func:`os.urandom` pool, refilled when used up."""

    __slots__ = ("pool", "position")

    def __init__(self) -> None:
        self.pool = b""
        self.position = _MASK_POOL_SIZE

    def next(self) -> bytes:
        position = self.position
        if position >= _MASK_POOL_SIZE:
            self.pool = os.urandom(_MASK_POOL_SIZE)
            position = 0
        self.position = position + 4
        return self.pool[position : position + 4]


_masks = _Masks()


def text_frame(payload: bytes) -> bytes:
    """The bytes of one masked, final text frame carrying ``payload`` (what a client sends)."""
    mask = _masks.next()
    length = len(payload)
    if length < 126:
        head = bytes((_TEXT_FIN, _MASKED | length))
    elif length < 65536:
        head = bytes((_TEXT_FIN, _MASKED | 126)) + length.to_bytes(2, "big")
    else:
        head = bytes((_TEXT_FIN, _MASKED | 127)) + length.to_bytes(8, "big")
    return head + mask + apply_mask(payload, mask)


def _parser_at_frame_start(protocol: ClientProtocol) -> bool:
    """Whether the protocol's parser is suspended before a new frame (in
    ``StreamReader.at_eof``), not inside one."""
    generator: Any = protocol.parser
    while True:
        inner = generator.gi_yieldfrom
        if inner is None:
            return bool(generator.__name__ == "at_eof")
        generator = inner


def fast_receiving(protocol: ClientProtocol) -> bool:
    """Whether received bytes may go through a :class:`FrameSplitter` (see the module docstring)."""
    return (
        protocol.state is OPEN
        and not protocol.extensions
        and getattr(protocol, "current_size", getattr(protocol, "cur_size", None)) is None  # older websockets
        and not protocol.reader.buffer
        and _parser_at_frame_start(protocol)
    )


def fast_sending(protocol: ClientProtocol) -> bool:
    """Whether :func:`text_frame` may replace ``protocol.send_text`` (open, no extension, no fragmented message)."""
    return protocol.state is OPEN and not protocol.extensions and not protocol.expect_continuation_frame


def max_message_size(protocol: ClientProtocol) -> int | None:
    """The protocol's limit on a message (``max_size``; websockets before 15 named it so)."""
    found = getattr(protocol, "max_message_size", getattr(protocol, "max_size", None))
    return found if isinstance(found, int) else None


class FrameSplitter:
    """Cuts a server's byte stream into frames (see the module docstring).

    Bytes of an incomplete frame are kept until the rest arrives (at most
    one frame of ``max_size`` bytes plus its header).
    """

    __slots__ = ("_need", "_pending", "_pending_size", "max_size")

    def __init__(self, max_size: int | None) -> None:
        self.max_size = max_size if max_size is not None else 2**63
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
            if second & _MASKED:
                start += 4  # a masked frame from a server: the protocol refuses it
            if length > max_size:
                # as the protocol would have seen it: it fails the connection (1009) at the header
                texts_rest = data[position:]
                self._keep(b"", 0)
                return texts, texts_rest
            stop = start + length
            if stop > end:
                self._keep(data[position:], stop - position)
                return texts, None
            if first == _TEXT_FIN and not second & _MASKED:
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
