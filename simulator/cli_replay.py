"""``webchat-sim replay`` and ``webchat-sim import-har``: their parsers and
commands (the work is :mod:`simulator.load.replay_run` and
:mod:`simulator.har`). Imports nothing of the load wing until a command runs."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_replay_parsers"]

_REPLAY_EPILOG = """\
A transcript comes from `serve --record`, `load --record` or `import-har`.
Each frame a participant sent is sent again with the recorded pauses (divided
by --speed), once the server frames recorded before it have come; those are
checked by kind (frame type, event type, error code, acknowledgement or not)
and must come within their recorded delay plus --tolerance. Typing, read
receipts, queue position pushes and status updates are never required.
Conversation and message uuids, participant ARNs and resume tokens are the
new server's. Every difference names its transcript line; exit status 1.
"""


def _cmd_replay(args: argparse.Namespace) -> int:
    from .load.replay_run import ReplayOptions, run_replay

    return run_replay(
        ReplayOptions(
            file=args.file,
            host=args.host,
            speed=args.speed,
            users=args.users,
            spawn_rate=args.spawn_rate,
            agents=args.agents,
            tolerance=args.tolerance,
            json_path=args.json,
            record=args.record,
            mock_args=[arg for name, value in (args.fault or []) for arg in ("--fault", f"{name}={value}")],
        )
    )


def _cmd_import_har(args: argparse.Namespace) -> int:
    from .har import import_har

    summary = import_har(args.file, args.output)
    print(summary)
    return 0


def add_replay_parsers(sub: Any, types: dict[str, Any]) -> None:
    """Add ``replay`` and ``import-har`` to ``sub``; ``types``: cli's argparse types by name."""
    replay = sub.add_parser(
        "replay",
        help="replay a transcript (serve/load --record, import-har) against a backend, checking every answer",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_REPLAY_EPILOG,
    )
    replay.add_argument("file", metavar="FILE.jsonl", help="the transcript")
    replay.add_argument("--host", default=None, help="websocket URL of the backend (none: the embedded mock)")
    replay.add_argument(
        "--speed", type=types["positive_float"], default=1.0, help="pace: 2.0 halves the recorded pauses (1.0)"
    )
    replay.add_argument("--users", type=types["positive_int"], default=1, help="copies replayed at once (1)")
    replay.add_argument(
        "--spawn-rate", type=types["positive_float"], default=20.0, help="copies started per second (20)"
    )
    replay.add_argument(
        "--agents",
        action="store_true",
        help="replay the agent side too (the embedded mock then runs no autopilot agents)",
    )
    replay.add_argument(
        "--tolerance",
        type=types["positive_float"],
        default=2.0,
        metavar="SECONDS",
        help="how much later than recorded an expected frame may come (2)",
    )
    replay.add_argument("--json", default=None, metavar="FILE", help="also write the result as JSON")
    replay.add_argument(
        "--record", default=None, metavar="FILE.jsonl", help="write the replay's own transcript to this file"
    )
    replay.add_argument(
        "--fault",
        type=types["fault"],
        action="append",
        metavar="NAME=VALUE",
        help="a fault of the embedded mock (as `serve --fault`), e.g. drop=0.5; not with --host",
    )
    replay.set_defaults(func=_cmd_replay)

    har = sub.add_parser(
        "import-har",
        help="turn a browser's HAR file (Chrome DevTools, with websocket messages) into a transcript",
    )
    har.add_argument("file", metavar="FILE.har", help="the HAR file (DevTools: Network, Save all as HAR)")
    har.add_argument("-o", "--output", required=True, metavar="FILE.jsonl", help="the transcript to write")
    har.set_defaults(func=_cmd_import_har)
