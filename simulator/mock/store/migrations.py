"""The database schema, as numbered migrations (part of :mod:`.store`).

``MIGRATIONS[n - 1]`` takes a database from schema version ``n - 1`` to
``n``; the version is SQLite's ``PRAGMA user_version`` (0: an empty file).
A migration is applied in one transaction with its version bump, so a
database is always at one version or the next, never half-way. Never edit a
released migration: add the next one.

* **1** — the initial schema: participants, conversations, members,
  messages, queue statistics.
* **2** — what a restart and retention needed beyond it: the held rrweb
  recording (``rrweb_frames``), when a conversation closed (``closed_ms``)
  and indexes on it and on members by participant, so that ``--retain`` finds
  what to prune without a scan.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

_V1 = """
CREATE TABLE participants (
    uuid TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    arn TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT,
    language TEXT,
    resume_token TEXT,
    queues TEXT NOT NULL DEFAULT '[]',
    ring_key INTEGER NOT NULL DEFAULT 0,
    flags INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE conversations (
    uuid TEXT PRIMARY KEY,
    arn TEXT NOT NULL,
    queue_name TEXT NOT NULL,
    queue_uuid TEXT NOT NULL,
    seq INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    joined_at REAL NOT NULL,
    customer_uuid TEXT NOT NULL,
    entry TEXT NOT NULL,
    state TEXT NOT NULL,
    engaged_at REAL,
    context TEXT
);
CREATE TABLE members (
    conversation_uuid TEXT NOT NULL,
    participant_uuid TEXT NOT NULL,
    joined_ms INTEGER NOT NULL,
    left_ms INTEGER,
    language TEXT,
    last_read_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_uuid, participant_uuid)
) WITHOUT ROWID;
CREATE TABLE messages (
    conversation_uuid TEXT NOT NULL,
    seq INTEGER NOT NULL,
    uuid TEXT NOT NULL,
    author_uuid TEXT NOT NULL,
    author_name TEXT,
    epoch INTEGER NOT NULL,
    body TEXT,
    client_message_id TEXT,
    media_urls TEXT,
    language TEXT,
    statuses TEXT NOT NULL,
    readers TEXT,
    status_epoch INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_uuid, seq)
);
CREATE TABLE queue_stats (
    queue_name TEXT PRIMARY KEY,
    engaged INTEGER NOT NULL,
    active INTEGER NOT NULL,
    abandoned INTEGER NOT NULL,
    chats_ended INTEGER NOT NULL,
    hold_seconds REAL NOT NULL,
    chat_seconds REAL NOT NULL,
    abandon_seconds REAL NOT NULL
);
"""

_V2 = """
ALTER TABLE conversations ADD COLUMN closed_ms INTEGER;
CREATE INDEX conversations_closed ON conversations (closed_ms) WHERE closed_ms IS NOT NULL;
CREATE INDEX members_by_participant ON members (participant_uuid);
CREATE TABLE rrweb_frames (
    conversation_uuid TEXT NOT NULL,
    n INTEGER NOT NULL,
    frame TEXT NOT NULL,
    PRIMARY KEY (conversation_uuid, n)
);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2)
"""The SQL of each migration, in order (see the module documentation)."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The version this code writes and reads."""
