"""Embedded SQLite storage of the mock server (``serve --db``, ``webchat-sim db``).

* :mod:`.migrations` — the schema, as numbered migrations.
* :mod:`.database` — :class:`Database`: open and migrate a file, write
  batches, read a :class:`~simulator.mock.restore.Snapshot` back, prune,
  ``info``, ``vacuum``, ``export``.
* :mod:`.rows` — the engine's journal records (:mod:`simulator.mock.journal`)
  as the SQL the database executes.

The shell that serves with storage is :mod:`simulator.mock.persist`; the
engine's side is :mod:`simulator.mock.journal` (what changed) and
:mod:`simulator.mock.restore` (state back from rows).
"""

from __future__ import annotations

from .database import Batch, Database
from .migrations import MIGRATIONS, SCHEMA_VERSION
from .rows import Rows

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Batch", "Database", "Rows"]
