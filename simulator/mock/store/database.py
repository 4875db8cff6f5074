"""The SQLite database of ``serve --db`` and ``webchat-sim db`` (part of :mod:`.store`).

:class:`Database` owns one ``sqlite3`` connection (WAL mode,
``synchronous=NORMAL``: a commit survives the process being killed, it is
in the WAL file when ``COMMIT`` returns; only a power loss before the next
checkpoint could lose the latest ones). It opens or creates the file and
migrates it (:mod:`.migrations`), writes batches of rows in one transaction
each (:meth:`Database.write`), reads it back as a
:class:`~simulator.mock.restore.Snapshot` (:meth:`Database.load`), prunes
closed conversations (:meth:`Database.prune`) and answers ``db info``,
``vacuum`` and ``export``. Every failure the user can cause (a path that is
not a writable file, a file that is not a database, one written by a newer
version) is a :class:`~simulator.errors.StoreError` with one line.

One thread uses a :class:`Database` at a time (the shell's writer thread
while serving; ``check_same_thread`` is off so that it can be opened in one
thread and handed over).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from ...errors import StoreError
from ...protocol import ConversationEventWebchatContext, ConversationWebchatQueueStatusQueueEntry, decode
from ..restore import ConversationRow, MemberRow, ParticipantRow, Snapshot, StatsRow
from .migrations import MIGRATIONS, SCHEMA_VERSION

__all__ = ["Batch", "Database"]

Batch = Sequence[tuple[str, Sequence[Sequence[Any]]]]
"""``(sql, [params, …])`` pairs, executed in order in one transaction."""

_TABLES = ("participants", "conversations", "members", "messages", "rrweb_frames", "queue_stats")


class Database:
    """One SQLite file, migrated to :data:`.SCHEMA_VERSION` when opened."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a directory, not a database file")
        if not create and not self.path.is_file():
            raise StoreError(f"{self.path}: no such database file")
        if not create and self.path.stat().st_size == 0:
            raise StoreError(f"{self.path}: an empty file, not a webchat-sim database")
        if not self.path.parent.is_dir():
            raise StoreError(f"{self.path}: the directory {self.path.parent} does not exist")
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open: {exc}") from exc
        try:
            self.conn.execute("PRAGMA busy_timeout = 5000")
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{self.path}: cannot use WAL mode (got {mode})")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.migrated_from = self._migrate()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StoreError(f"{self.path}: not a webchat-sim database, or unreadable: {exc}") from exc
        except StoreError:
            self.conn.close()
            raise

    # ------------------------------------------------------------------
    # Schema

    @property
    def version(self) -> int:
        """The schema version of the file (``PRAGMA user_version``)."""
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> int:
        """Apply the migrations the file lacks, each in its own transaction; the version it had."""
        found = self.version
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {found} was written by a newer webchat-sim (this one reads up to "
                f"{SCHEMA_VERSION})"
            )
        if found == 0 and self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StoreError(f"{self.path}: a SQLite database, but not one of webchat-sim (no schema version)")
        for version in range(found + 1, SCHEMA_VERSION + 1):
            self.migrate_to(version)
        return found

    def migrate_to(self, version: int) -> None:
        """Apply migration ``version`` (the file must be at ``version - 1``)."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------
    # Writing

    def write(self, batch: Batch) -> None:
        """Execute ``batch`` in one transaction (all of it or, on an error, none)."""
        conn = self.conn
        conn.execute("BEGIN")
        try:
            for sql, rows in batch:
                conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def prune(self, before_ms: int, limit: int) -> int:
        """Delete at most ``limit`` conversations closed before ``before_ms``
        (oldest first) with their members, messages and recording, and the
        customers (and unnamed agents) left in no conversation; how many went."""
        conn = self.conn
        conn.execute("BEGIN")
        try:
            doomed = [
                (uuid,)
                for (uuid,) in conn.execute(
                    "SELECT uuid FROM conversations WHERE closed_ms IS NOT NULL AND closed_ms < ? "
                    "ORDER BY closed_ms LIMIT ?",
                    (before_ms, limit),
                )
            ]
            if doomed:
                query = "SELECT participant_uuid FROM members WHERE conversation_uuid = ?"
                people = {(p,) for (uuid,) in doomed for (p,) in conn.execute(query, (uuid,))}
                for table in ("messages", "members", "rrweb_frames"):
                    conn.executemany(f"DELETE FROM {table} WHERE conversation_uuid = ?", doomed)
                conn.executemany("DELETE FROM conversations WHERE uuid = ?", doomed)
                conn.executemany(
                    "DELETE FROM participants WHERE uuid = ? AND (role = 'customer' OR flags & 1 = 0) "
                    "AND NOT EXISTS (SELECT 1 FROM members WHERE participant_uuid = participants.uuid)",
                    sorted(people),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(doomed)

    def close(self, *, checkpoint: bool = True) -> None:
        """Checkpoint the WAL into the file (unless told not to: another connection writes) and close."""
        if checkpoint:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()

    # ------------------------------------------------------------------
    # Reading

    def load(self, *, closed_limit: int) -> Snapshot:
        """What a restart restores, at once: :meth:`load_open` and the latest
        ``closed_limit`` closed conversations (:meth:`closed_to_load`)."""
        return self._load([], closed_limit=closed_limit)

    def load_open(self) -> Snapshot:
        """What a restart restores first: the open conversations, their
        members, messages and recordings, the participants in them and every
        agent known by name, the queue statistics."""
        return self._load([], closed_limit=0)

    def closed_to_load(self, limit: int) -> list[str]:
        """The uuids of the latest ``limit`` closed conversations, oldest first."""
        rows = self.conn.execute(
            "SELECT uuid FROM conversations WHERE state = 'closed' ORDER BY closed_ms DESC, seq DESC LIMIT ?", (limit,)
        ).fetchall()
        return [uuid for (uuid,) in reversed(rows)]

    def load_closed(self, uuids: Sequence[str]) -> Snapshot:
        """The conversations ``uuids`` (closed ones, restored after :meth:`load_open`) and their participants."""
        return self._load(uuids, closed_limit=0, agents=False)

    def _load(self, uuids: Sequence[str], *, closed_limit: int, agents: bool = True) -> Snapshot:
        """The conversations ``uuids``, or (none given) the open ones and the
        latest ``closed_limit`` closed ones, with everything in them."""
        conn = self.conn
        conn.execute("DROP TABLE IF EXISTS temp.chosen")
        conn.execute("CREATE TEMP TABLE chosen (uuid TEXT PRIMARY KEY) WITHOUT ROWID")
        if uuids:
            conn.executemany("INSERT OR IGNORE INTO chosen VALUES (?)", [(uuid,) for uuid in uuids])
        else:
            conn.execute("INSERT INTO chosen SELECT uuid FROM conversations WHERE state != 'closed'")
            conn.execute(
                "INSERT OR IGNORE INTO chosen SELECT uuid FROM conversations WHERE state = 'closed' "
                "ORDER BY closed_ms DESC, seq DESC LIMIT ?",
                (closed_limit,),
            )
        loads = orjson.loads
        known_agents = "(role = 'agent' AND flags & 1) OR " if agents else ""
        participants = [
            ParticipantRow(uuid, role, arn, name, email, language, token, tuple(loads(queues)), ring_key, flags)
            for uuid, role, arn, name, email, language, token, queues, ring_key, flags in conn.execute(
                "SELECT uuid, role, arn, name, email, language, resume_token, queues, ring_key, flags "
                f"FROM participants WHERE {known_agents}uuid IN "
                "(SELECT participant_uuid FROM members JOIN chosen ON chosen.uuid = members.conversation_uuid)"
            )
        ]
        entry_of = ConversationWebchatQueueStatusQueueEntry.model_validate_json
        context_of = ConversationEventWebchatContext.model_validate_json
        conversations = [
            ConversationRow._make(
                (*row[:8], entry_of(row[8]), row[9], row[10], context_of(row[11]) if row[11] else None, row[12])
            )
            for row in conn.execute(
                "SELECT c.uuid, arn, queue_name, queue_uuid, seq, start_ms, joined_at, customer_uuid, entry, state, "
                "engaged_at, context, closed_ms FROM conversations c JOIN chosen ON chosen.uuid = c.uuid ORDER BY seq"
            )
        ]
        members = [
            MemberRow(*row)
            for row in conn.execute(
                "SELECT conversation_uuid, participant_uuid, joined_ms, left_ms, language, last_read_seq "
                "FROM members JOIN chosen ON chosen.uuid = members.conversation_uuid"
            )
        ]
        messages = conn.execute(
            "SELECT conversation_uuid, seq, m.uuid, author_uuid, author_name, epoch, body, client_message_id, "
            "media_urls, language, statuses, readers, status_epoch FROM chosen JOIN messages m "
            "ON m.conversation_uuid = chosen.uuid ORDER BY conversation_uuid, seq"
        ).fetchall()  # plain tuples in MessageRow's order: decoded by the restore, once
        rrweb: dict[str, list[Any]] = {}
        for conv_uuid, frame in conn.execute(
            "SELECT conversation_uuid, frame FROM chosen JOIN rrweb_frames r ON r.conversation_uuid = chosen.uuid "
            "ORDER BY conversation_uuid, n"
        ):
            rrweb.setdefault(conv_uuid, []).append(decode(frame))
        stats = [StatsRow(*row) for row in conn.execute("SELECT * FROM queue_stats")]
        closed_total = int(conn.execute("SELECT count(*) FROM conversations WHERE state = 'closed'").fetchone()[0])
        conn.execute("DROP TABLE temp.chosen")
        return Snapshot(
            participants=participants,
            conversations=conversations,
            members=members,
            messages=messages,
            stats=stats,
            rrweb=rrweb,
            closed_total=closed_total,
        )

    def info(self) -> dict[str, Any]:
        """``webchat-sim db info``: schema version, counts, sizes."""
        conn = self.conn
        counts = {table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) for table in _TABLES}
        states = dict(conn.execute("SELECT state, count(*) FROM conversations GROUP BY state").fetchall())
        wal = Path(f"{self.path}-wal")
        return {
            "path": str(self.path),
            "schema_version": self.version,
            "file_bytes": self.path.stat().st_size,
            "wal_bytes": wal.stat().st_size if wal.exists() else 0,
            "counts": counts,
            "conversations_by_state": {state: states.get(state, 0) for state in ("queued", "engaged", "closed")},
        }

    def vacuum(self) -> tuple[int, int]:
        """Checkpoint and ``VACUUM``; the file's size before and after (bytes, WAL included before)."""
        wal = Path(f"{self.path}-wal")
        before = self.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.execute("VACUUM")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return before, self.path.stat().st_size

    def conversations(self) -> Iterator[dict[str, Any]]:
        """Every stored conversation as JSON-able data, in start order (``db export``)."""
        conn = self.conn
        people = {
            uuid: {"uuid": uuid, "role": role, "arn": arn, "name": name, "email": email}
            for uuid, role, arn, name, email in conn.execute("SELECT uuid, role, arn, name, email FROM participants")
        }
        for row in conn.execute(
            "SELECT uuid, arn, queue_name, state, start_ms, engaged_at, closed_ms, customer_uuid, entry, context "
            "FROM conversations ORDER BY seq"
        ).fetchall():
            uuid, arn, queue, state, start_ms, engaged_at, closed_ms, customer, entry, context = row
            members = [
                {
                    **people.get(p, {"uuid": p}),
                    "joined_ms": joined,
                    "left_ms": left,
                    "language": language,
                    "last_read_seq": read,
                }
                for p, joined, left, language, read in conn.execute(
                    "SELECT participant_uuid, joined_ms, left_ms, language, last_read_seq FROM members "
                    "WHERE conversation_uuid = ? ORDER BY joined_ms",
                    (uuid,),
                )
            ]
            messages = [
                {
                    "seq": seq,
                    "conversation_message_uuid": m_uuid,
                    "author_uuid": author,
                    "author_name": name,
                    "message_epoch": epoch,
                    "body": body,
                    "client_message_id": client_id,
                    "media_urls": orjson.loads(media) if media else None,
                    "language_iso_code": language,
                    "transport_statuses": [
                        {"conversation_participant_arn": a, "status": s} for a, s in orjson.loads(statuses)
                    ],
                }
                for seq, m_uuid, author, name, epoch, body, client_id, media, language, statuses in conn.execute(
                    "SELECT seq, uuid, author_uuid, author_name, epoch, body, client_message_id, media_urls, "
                    "language, statuses FROM messages WHERE conversation_uuid = ? ORDER BY seq",
                    (uuid,),
                )
            ]
            frames = conn.execute("SELECT count(*) FROM rrweb_frames WHERE conversation_uuid = ?", (uuid,)).fetchone()
            yield {
                "conversation_uuid": uuid,
                "conversation_arn": arn,
                "queue_name": queue,
                "state": state,
                "start_ms": start_ms,
                "engaged_at": engaged_at,
                "closed_ms": closed_ms,
                "customer_uuid": customer,
                "queue_entry": orjson.loads(entry),
                "webchat_context": orjson.loads(context) if context else None,
                "rrweb_frames_held": frames[0],
                "participants": members,
                "messages": messages,
            }

    def export(self, out: IO[bytes]) -> int:
        """Write every conversation as one JSON line to ``out``; how many."""
        count = 0
        for conversation in self.conversations():
            out.write(orjson.dumps(conversation, option=orjson.OPT_APPEND_NEWLINE))
            count += 1
        return count
