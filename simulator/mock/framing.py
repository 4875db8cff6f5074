"""The websocket framing of the server's text frames, done once per frame.

``websockets`` frames every ``send_text`` call anew (a ``Frame`` object, its
header written field by field): for a frame the shell sends to several
connections, and for every chat message (its ``message`` to the sender and
the agent, the agent's ``new message``), that was a share of the server's
CPU per message. A server's frame is never masked (RFC 6455, section 5.1);
without extensions (no compression) it is the header and the payload, the
same bytes for every recipient: :func:`text_frame` writes them, and
:func:`queue_text` puts them on a connection's protocol where
``send_text`` would (its output buffer, in order with the protocol's own
frames), or calls ``send_text`` when an extension has to transform them.
"""

from __future__ import annotations

import struct

from websockets.protocol import Protocol

__all__ = ["queue_text", "text_frame"]

_FIN_TEXT = 0x81  # FIN, opcode 1 (text), no RSV bits
_HEAD_16 = struct.Struct("!BBH").pack  # one concatenation per frame, not two (a chat's frames are 126 B to 64 KiB)
_HEAD_64 = struct.Struct("!BBQ").pack


def text_frame(data: bytes) -> bytes:
    """The unmasked, unfragmented text frame carrying ``data`` (RFC 6455, section 5.2)."""
    length = len(data)
    if length < 126:
        return bytes((_FIN_TEXT, length)) + data
    if length < 65536:
        return _HEAD_16(_FIN_TEXT, 126, length) + data
    return _HEAD_64(_FIN_TEXT, 127, length) + data


def queue_text(protocol: Protocol, data: bytes, framed: bytes | None) -> bytes | None:
    """Queue ``data`` as a text frame on ``protocol`` (open, no fragmented
    message in progress: the caller checked); ``framed`` is its
    :func:`text_frame` if already made. Returns the frame made, for the next
    recipient (``None`` when the protocol's extensions framed it instead)."""
    if protocol.extensions or protocol.expect_continuation_frame or protocol.debug:
        protocol.send_text(data)  # compression (or a debug log) needs websockets' own framing
        return framed
    if framed is None:
        framed = text_frame(data)
    protocol.writes.append(framed)
    return framed
