"""The fast path of the load generator's websocket framing, beside websockets' own.

websockets' sans-I/O :class:`~websockets.client.ClientProtocol` parses every
incoming frame through a chain of generator coroutines and builds every
outgoing one through a :class:`~websockets.frames.Frame`, a
:class:`io.BytesIO` and a :func:`secrets.token_bytes` call: about half the
transport's own cost of a chat frame. Nearly every frame the generator sees
is the simplest kind, one complete text frame, so this module handles that
kind itself and leaves every other one to the protocol, byte for byte:

* :class:`~simulator.wsframes.FrameSplitter` (shared with the mock's
  inbound path, :mod:`simulator.wsframes`) cuts the received bytes into
  frames: the payloads of unmasked, unfragmented text frames come out
  directly, any other frame as its complete raw bytes, for the protocol;
  :func:`~simulator.wsframes.fast_receiving` says when it may be used.
* :func:`text_frame` serializes a masked text frame (a client's) as
  ``Frame.serialize`` does, its mask drawn from a pool of
  :func:`os.urandom` bytes (as unpredictable; one system call per 1,024 frames).

The connection (:mod:`.transport`) feeds the protocol the other frames and
everything once the fast path no longer applies (a close frame received, a
protocol failure), so pings, pongs, the closing handshake and every protocol
error behave exactly as before.
"""

from __future__ import annotations

import os
from typing import Final

from websockets.client import ClientProtocol
from websockets.protocol import OPEN

from ..wsframes import FrameSplitter, apply_mask, fast_receiving, max_message_size, text_head

__all__ = ["FrameSplitter", "fast_receiving", "fast_sending", "max_message_size", "text_frame"]

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
    return text_head(len(payload), masked=True) + mask + apply_mask(payload, mask)


def fast_sending(protocol: ClientProtocol) -> bool:
    """Whether :func:`text_frame` may replace ``protocol.send_text`` (open, no extension, no fragmented message)."""
    return protocol.state is OPEN and not protocol.extensions and not protocol.expect_continuation_frame
