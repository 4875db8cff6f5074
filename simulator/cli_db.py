"""``webchat-sim db info|vacuum|export`` and the storage options of ``serve``
and ``demo`` (``--db``, ``--retain``, ``--no-db``): part of :mod:`.cli`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from .errors import StoreError, UsageError

if TYPE_CHECKING:
    from .mock.persist import StoreOptions

__all__ = ["add_db_parser", "default_demo_db", "demo_store", "store_options"]


def default_demo_db() -> Path:
    """Where ``demo`` keeps its database unless told (``--db``, ``--no-db``):
    ``$XDG_DATA_HOME/webchat-sim/demo.db``, by default
    ``~/.local/share/webchat-sim/demo.db`` (``%LOCALAPPDATA%`` on Windows)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "webchat-sim" / "demo.db"


def store_options(db: str | None, retain: float | None) -> StoreOptions | None:
    """``--db`` and ``--retain`` as the mock's storage options (``None``: memory only)."""
    from .mock.persist import StoreOptions

    if db is None:
        if retain is not None:
            raise UsageError("--retain needs --db PATH (without a database nothing is stored to prune)")
        return None
    if not db.strip():
        raise UsageError("--db: an empty path")
    return StoreOptions(path=db, retain=retain)


def demo_store(db: str | None, *, no_db: bool) -> StoreOptions | None:
    """``demo --db PATH`` / ``--no-db``; by default :func:`default_demo_db` (its directory created)."""
    if no_db:
        if db is not None:
            raise UsageError("--db and --no-db: choose one")
        return None
    if db is None:
        default = default_demo_db()
        try:
            default.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = f"cannot create {default.parent} for the demo's database ({exc.strerror or exc})"
            raise UsageError(f"{reason}; give --db or --no-db") from None
        db = str(default)
    return store_options(db, None)


def _open(path: str) -> Any:
    from .mock.store import Database

    return Database(path, create=False)


def _cmd_info(args: argparse.Namespace) -> int:
    db = _open(args.path)
    try:
        info = db.info()
    finally:
        db.close()
    if args.json:
        sys.stdout.write(orjson.dumps(info, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE).decode())
        return 0
    states = info["conversations_by_state"]
    counts = info["counts"]
    print(f"{info['path']}: schema version {info['schema_version']}, {info['file_bytes']:,} bytes "
          f"(+ {info['wal_bytes']:,} in the WAL)")  # fmt: skip
    print(f"conversations: {counts['conversations']:,} ({states['queued']:,} waiting, {states['engaged']:,} "
          f"chatting, {states['closed']:,} closed)")  # fmt: skip
    print(f"participants: {counts['participants']:,}, messages: {counts['messages']:,}, "
          f"rrweb frames held: {counts['rrweb_frames']:,}, queue statistics: {counts['queue_stats']:,}")  # fmt: skip
    return 0


def _cmd_vacuum(args: argparse.Namespace) -> int:
    import fcntl

    db = _open(args.path)
    try:
        with open(args.path, "rb") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the lock serve --db holds
            except OSError:
                raise StoreError(f"{args.path}: in use by a running webchat-sim serve; stop it first") from None
            before, after = db.vacuum()
    finally:
        db.close()
    print(f"{args.path}: {before:,} bytes -> {after:,} bytes")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    db = _open(args.path)
    try:
        if args.output in (None, "-"):
            count = db.export(sys.stdout.buffer)
            sys.stdout.flush()
        else:
            try:
                out: IO[bytes] = open(args.output, "wb")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise StoreError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
            with out:
                count = db.export(out)
    finally:
        db.close()
    if args.output not in (None, "-"):
        print(f"{args.path}: {count:,} conversations -> {args.output}")
    return 0


def _run(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            result: int = command(args)
        except StoreError as exc:
            print(f"webchat-sim db {args.db_command}: error: {exc}", file=sys.stderr)
            return 2
        return result

    return run


def add_db_parser(sub: Any) -> None:
    """``webchat-sim db info|vacuum|export PATH``."""
    db = sub.add_parser("db", help="look after a database of serve --db: info, vacuum, export")
    commands = db.add_subparsers(dest="db_command", metavar="DB_COMMAND", required=True)
    info = commands.add_parser("info", help="schema version, counts and sizes")
    info.add_argument("path", metavar="PATH", help="the SQLite file of serve --db")
    info.add_argument("--json", action="store_true", help="as JSON")
    info.set_defaults(func=_run(_cmd_info))
    vacuum = commands.add_parser("vacuum", help="checkpoint the WAL and give free pages back (stop the server first)")
    vacuum.add_argument("path", metavar="PATH", help="the SQLite file of serve --db")
    vacuum.set_defaults(func=_run(_cmd_vacuum))
    export = commands.add_parser("export", help="every stored conversation as one JSON line (with its messages)")
    export.add_argument("path", metavar="PATH", help="the SQLite file of serve --db")
    export.add_argument("--output", "-o", metavar="FILE", default=None, help="write to FILE (default: stdout)")
    export.set_defaults(func=_run(_cmd_export))
