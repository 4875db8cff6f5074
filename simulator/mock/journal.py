"""What the engine tells its storage: small records beside its deliveries.

The engine stays sans-I/O: when storage is on (``Engine.journal`` is a list,
set by the shell; ``None``, the default, costs one attribute test per
change), each state change appends one tuple here, ``(op, object, …)``,
naming the live objects that changed. The shell
(:mod:`simulator.mock.persist`) drains the list after each call, turns the
records into rows when it writes them (the same event-loop turn: the objects
are read as they are then, so writes are idempotent upserts), and holds the
call's deliveries until they are committed.

=========== =============================== ==========================================
op          fields                          written as
=========== =============================== ==========================================
``CLIENT``  ``(op, client)``                the participant (name, token, queues, …)
``GONE``    ``(op, client)``                it expired: its resume token is void
``CONV``    ``(op, conv)``                  a new conversation, its customer and member
``STATE``   ``(op, conv, now)``             engaged or closed (plus the queue statistics)
``MEMBER``  ``(op, conv, member)``          joined, left, changed language
``MSG``     ``(op, stored)``                a new message
``READ``    ``(op, conv, stored, member)``  a read receipt: statuses, readers, read state
``CONTEXT`` ``(op, conv)``                  the held ``webchat context``
``RRWEB``   ``(op, conv, frame)``           an rrweb frame relayed (held or not)
=========== =============================== ==========================================
"""

from __future__ import annotations

from typing import Any

__all__ = ["CLIENT", "CONTEXT", "CONV", "GONE", "MEMBER", "MSG", "READ", "RRWEB", "STATE", "Journal", "Record"]

CLIENT = 1
GONE = 2
CONV = 3
STATE = 4
MEMBER = 5
MSG = 6
READ = 7
CONTEXT = 8
RRWEB = 9

Record = tuple[Any, ...]
"""``(op, object, …)``: see the table in the module documentation."""

Journal = list[Record]
