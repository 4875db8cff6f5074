"""The byte account of what the engine holds (part of the engine).

:class:`Held` is one number every conversation keeps up to date
(:mod:`.conversation`), an estimate of the memory of:

* each stored message: :func:`text_bytes` of its body, uuid,
  ``client_message_id`` and media urls, plus :data:`MESSAGE_BYTES` and
  :data:`STATUS_BYTES` per transport status (one per other participant);
* each held rrweb frame: its ``data`` plus :data:`RRWEB_FRAME_BYTES`;
* each conversation itself: :data:`CONVERSATION_BYTES`, plus 8 bytes per
  message ever written (its author's sequence number, kept for unread counts),
  plus :data:`WIRE_BYTES` while it is open and chatting (the chat path's
  encoded parts, dropped when it closes).

:mod:`.retention` keeps it within the budget. The constants were measured
with ``tracemalloc`` (CPython 3.11, pydantic 2; messages re-measured 2026-12-01): for ASCII chats the account
is within 20 % of what Python really holds (tests/test_retention.py checks a
factor); non-ASCII text is counted at its largest.
"""

from __future__ import annotations

import sys

__all__ = [
    "CONVERSATION_BYTES",
    "MESSAGE_BYTES",
    "RRWEB_FRAME_BYTES",
    "SEQ_BYTES",
    "STATUS_BYTES",
    "WIRE_BYTES",
    "Held",
    "text_bytes",
]

MESSAGE_BYTES = 544
"""A stored message without its strings: its slotted record (no model since
issue 12: 1,856 bytes then), its indexes and its author's sequence number."""
STATUS_BYTES = 48
"""One transport status of a stored message (one per other participant: an
(ARN, status) pair; 672 bytes as a model)."""
CONVERSATION_BYTES = 4_096
"""A conversation without its messages: its record, members, queue entry, summary fields and indexes."""
RRWEB_FRAME_BYTES = 1_024
"""A held rrweb frame without its ``data``."""
SEQ_BYTES = 8
WIRE_BYTES = 5_120
"""The encoded parts :mod:`.wire` keeps for an open conversation with a
customer and an agent (its ids, the participants' identities and heads)."""
"""What a message costs its conversation for good, even once dropped (its author's sequence number)."""


def text_bytes(text: str) -> int:
    """The memory of ``text``: the ``str`` itself, plus, unless it is ASCII,
    the UTF-8 copy that encoding a frame caches in it (orjson asks CPython for
    it), counted at its largest, 4 bytes per character. O(1)."""
    size = sys.getsizeof(text)
    return size if text.isascii() else size + 4 * len(text)


class Held:
    """The byte account of everything the engine holds, shared by its
    conversations (each adds and removes its own share)."""

    __slots__ = ("bytes", "messages")

    def __init__(self) -> None:
        self.bytes = 0
        """The estimated bytes held (see the module documentation)."""
        self.messages = 0
        """Messages held in memory."""
