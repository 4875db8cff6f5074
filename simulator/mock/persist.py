"""Storage beside the websocket shell: ``serve --db PATH`` (I/O, not the engine).

:class:`Persister` connects three things: the engine's journal
(:mod:`.journal`: one small record per state change, appended by the
sans-I/O engine), the SQLite database (:mod:`.store`) and the server's
deliveries (:class:`~.server.WebchatServer`).

Durability, with group commit:

* after each call of the core, the server asks :meth:`Persister.holding`:
  when the call made records (or earlier deliveries still wait), its
  deliveries and closes are **held**, in order, instead of being sent;
* once per event-loop turn (``call_soon``), the records of every call of the
  turn become one batch of rows (:class:`.store.Rows`, in the loop's thread,
  reading the objects as they are) and go to the **writer thread**, which
  commits them (with any batch queued meanwhile) in one transaction;
* the commit done, the loop sends the held deliveries (and closes), in
  order. So a chat message's acknowledgement (the sender's own copy), and
  every other frame of the same turn, leaves only once its rows are
  committed: ``kill -9`` loses nothing a client saw. Frames of calls that
  changed nothing wait behind a pending commit only to keep their order.

A REST call that changed something answers once committed
(:meth:`committed`). SIGTERM: once the server has closed its connections,
:meth:`drain` waits for every pending commit (the disconnections start
reconnect graces, which are not stored: after a restart every participant
gets a new one), :meth:`close` stops the writer and checkpoints the file.

Restart: :func:`open_store` opens and migrates the file and restores the
engine (:meth:`.Engine.restore`) before the server starts: the open
conversations, queues, agents and statistics, what a participant needs to
resume. The latest closed conversations (up to ``closed_conversations_kept``)
follow once it serves, :data:`CLOSED_CHUNK` per event-loop turn
(``restored.closed_pending`` in ``/healthz`` counts down to 0). Retention
(``--retain``): every ``prune_interval`` the writer deletes up to
``prune_limit`` conversations closed longer ago than ``retain`` (bounded
work per pass); what the engine holds in memory is bounded apart
(``--retain-bytes``): evicting from memory deletes nothing stored.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from ..errors import StoreError
from .base import Close, Delivery
from .engine import Engine
from .store import Database, Rows

__all__ = ["Persister", "StoreOptions", "open_store"]

log = logging.getLogger("webchat_sim.store")

CLOSED_CHUNK = 500
"""Closed conversations restored per event-loop turn after a restart."""

Hold = tuple[list[Delivery], Sequence[Close]]
"""The deliveries and closes of one call of the core, waiting for a commit."""


@dataclass(frozen=True, kw_only=True)
class StoreOptions:
    """``serve --db PATH [--retain 7d]``."""

    path: str
    retain: float | None = None
    """Prune conversations closed longer ago than this (seconds; ``None``: keep all)."""
    prune_interval: float = 60.0
    prune_limit: int = 1000
    grace: float | None = None
    """Reconnect grace of the restored participants (``None``: the engine's ``reconnect_grace``)."""


class Persister:
    """The journal of ``engine`` into ``db``, with the deliveries held until committed."""

    def __init__(self, db: Database, engine: Engine, options: StoreOptions) -> None:
        self.db = db
        self.engine = engine
        self.options = options
        self.lock: IO[bytes] | None = None
        """The flock on the file that keeps a second server off it (:func:`open_store`)."""
        self.rows = Rows(engine._queues, engine._agents_by_name, engine._customers_by_uuid)
        self.restored: dict[str, int] = {}
        self.commits = 0
        self.records = 0
        self.failures = 0
        self.pruned = 0
        self._turn: list[Hold] = []
        self._scheduled = False
        self._inflight = 0
        self._flushed = 0  # batches handed to the writer
        self._released = 0  # batches committed and sent
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pruner: asyncio.Task[None] | None = None
        self._send: Any = None
        self.closed_pending: list[str] = []
        """Closed conversations still to restore (oldest first), in the background once serving."""
        self._loader: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------
    # Life cycle

    def start(self, send: Any) -> None:
        """Begin storing: ``send(deliveries, closes)`` carries out a released hold."""
        self._loop = asyncio.get_running_loop()
        self._send = send
        self.engine.journal = []
        self._thread = threading.Thread(target=self._writer, name="webchat-sim-store", daemon=True)
        self._thread.start()
        if self.options.retain is not None:
            self._pruner = self._loop.create_task(self._prune_periodically(self.options.retain))
        if self.closed_pending:
            self._loader = self._loop.create_task(self._load_closed())
        else:
            self.engine.restore_finished()

    async def drain(self) -> None:
        """Commit what is pending and send what it held (SIGTERM: after the
        server has closed its connections, so that what their last frames
        changed is stored too); stop pruning."""
        for task in (self._pruner, self._loader):
            if task is not None:
                task.cancel()
        self._pruner = self._loader = None
        await self.committed()

    def close(self) -> None:
        """Stop the writer thread (after what it has) and close the database."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None
        self.db.close()
        if self.lock is not None:
            self.lock.close()  # releases the flock: another server may open the file now
            self.lock = None

    # ------------------------------------------------------------------
    # The server's hooks

    def holding(self) -> bool:
        """Whether the call just made must wait for a commit (it made records, or others wait)."""
        return bool(self.engine.journal) or self._inflight > 0 or bool(self._turn)

    def hold(self, deliveries: Iterable[Delivery], closes: Sequence[Close]) -> None:
        """Keep one call's deliveries and closes until the turn's commit."""
        self._turn.append((deliveries if isinstance(deliveries, list) else list(deliveries), closes))
        if not self._scheduled:
            self._scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def committed(self) -> asyncio.Future[None]:
        """Done once everything held so far (not what comes later) is committed and sent."""
        assert self._loop is not None
        done: asyncio.Future[None] = self._loop.create_future()
        if self.engine.journal and not self._turn:  # records whose call held nothing yet: in the next batch too
            self.hold([], ())
        target = self._flushed + (1 if self._turn else 0)
        if self._released >= target:
            done.set_result(None)
        else:
            self._waiters.append((target, done))
        return done

    def status(self) -> dict[str, Any]:
        """The ``store`` section of ``/healthz``."""
        return {
            "path": str(self.db.path),
            "restored": self.restored,
            "commits": self.commits,
            "records": self.records,
            "failures": self.failures,
            "pruned_conversations": self.pruned,
            "pending_commits": self._inflight,
        }

    # ------------------------------------------------------------------
    # Group commit

    def _flush(self) -> None:
        """End of the turn: the turn's records become one batch for the writer."""
        self._scheduled = False
        journal = self.engine.journal
        records: list[Any] = []
        if journal:
            records, self.engine.journal = journal, []
        holds, self._turn = self._turn, []
        try:
            batch = self.rows.batch(records) if records else []
        except Exception:  # a bug here must not hold frames for ever
            log.exception("cannot turn %d records into rows; not stored", len(records))
            self.failures += 1
            batch = []
        self.records += len(records)
        self._inflight += 1
        self._flushed += 1
        self._queue.put(("write", batch, holds))

    def _writer(self) -> None:
        """The writer thread: commit each batch (with those queued behind it, in one transaction)."""
        loop = self._loop
        assert loop is not None
        stop = False
        while not stop:
            item = self._queue.get()
            if item is None:
                break
            items = [item]
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                items.append(more)
            writes = [it for it in items if it[0] == "write"]
            batch: list[Any] = [statement for it in writes for statement in it[1]]
            failed = False
            if batch:
                try:
                    self.db.write(batch)
                except Exception:
                    log.exception("cannot commit %d statements; their frames are sent uncommitted", len(batch))
                    failed = True
            for it in items:
                if it[0] == "prune":
                    self._prune(it[1])
            if writes:
                holds = [hold for it in writes for hold in it[2]]
                loop.call_soon_threadsafe(self._release, holds, len(writes), failed)

    def _release(self, holds: list[Hold], batches: int, failed: bool) -> None:
        """In the loop: a commit is done; send what it held, in order."""
        self.commits += 1
        self.failures += failed
        self._inflight -= batches
        send = self._send
        for deliveries, closes in holds:
            try:
                send(deliveries, closes)
            except Exception:
                log.exception("cannot send held deliveries")
        self._released += batches
        if self._waiters:
            waiting = []
            for target, waiter in self._waiters:
                if target > self._released:
                    waiting.append((target, waiter))
                elif not waiter.done():
                    waiter.set_result(None)
            self._waiters = waiting

    # ------------------------------------------------------------------
    # Restart: the closed conversations, in the background

    async def _load_closed(self, chunk: int = CLOSED_CHUNK) -> None:
        """Restore :attr:`closed_pending`, ``chunk`` conversations per loop turn
        (read on a connection of its own: the writer thread has the other)."""
        started = time.perf_counter()
        reader = Database(self.db.path)
        loaded = 0
        try:
            while self.closed_pending:
                part, self.closed_pending = self.closed_pending[:chunk], self.closed_pending[chunk:]
                collecting = gc.isenabled()
                gc.disable()
                try:
                    loaded += self.engine.restore_closed(reader.load_closed(part))
                finally:
                    if collecting:
                        gc.enable()
                self.restored["closed"] = loaded
                self.restored["closed_pending"] = len(self.closed_pending)
                await asyncio.sleep(0)  # the clients' frames go first
        except Exception:
            log.exception("cannot restore the closed conversations; %d left out", len(self.closed_pending))
        finally:
            reader.close(checkpoint=False)
            self.engine.restore_finished()
            self.restored["closed_milliseconds"] = round((time.perf_counter() - started) * 1000)

    # ------------------------------------------------------------------
    # Retention

    async def _prune_periodically(self, retain: float) -> None:
        interval = min(self.options.prune_interval, max(retain / 4, 0.05))
        while True:
            self._queue.put(("prune", round((time.time() - retain) * 1000)))
            await asyncio.sleep(interval)

    def _prune(self, before_ms: int) -> None:
        """In the writer thread: one bounded pass of retention."""
        try:
            self.pruned += self.db.prune(before_ms, self.options.prune_limit)
        except Exception:
            log.exception("cannot prune the database")


def open_store(options: StoreOptions, engine: Engine, *, now: float | None = None) -> Persister:
    """Open (create, migrate) the database and restore ``engine`` from it:
    what the participants need to resume (open conversations, queues, agents)
    now, the latest closed conversations once serving (:meth:`Persister.start`);
    :class:`~simulator.errors.StoreError` with one line if it cannot be used."""
    db = Database(options.path)
    lock = open(db.path, "rb")  # noqa: SIM115 - held until Persister.close
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # independent of SQLite's own (fcntl) locks
    except OSError:
        lock.close()
        db.close(checkpoint=False)
        raise StoreError(f"{options.path}: in use by another webchat-sim serve (one server per --db file)") from None
    collecting = gc.isenabled()
    gc.disable()  # hundreds of thousands of new objects, none garbage: no collection passes over them meanwhile
    try:
        started = time.perf_counter()
        snapshot = db.load_open()
        persister = Persister(db, engine, options)
        persister.lock = lock
        persister.restored = engine.restore(snapshot, time.time() if now is None else now, grace=options.grace)
        persister.restored["milliseconds"] = round((time.perf_counter() - started) * 1000)
        persister.closed_pending = db.closed_to_load(engine.config.closed_conversations_kept)
        persister.restored["closed_pending"] = len(persister.closed_pending)
    except BaseException:
        db.close()
        lock.close()
        raise
    finally:
        if collecting:
            gc.enable()
    log.info("restored from %s: %s", options.path, persister.restored)
    return persister
