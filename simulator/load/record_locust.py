"""``load --record FILE.jsonl`` inside Locust: the ``--record`` option (or
``WEBCHAT_RECORD``), the transcript opened when the test starts and written
out when Locust quits (:mod:`.record`). Imported by :mod:`.users`."""

from __future__ import annotations

import sys
from typing import Any

from locust import events
from locust.env import Environment

from ..errors import TranscriptError
from . import record

__all__: list[str] = []


def _add_option(parser: Any) -> None:
    group = parser.add_argument_group("webchat-sim recording")
    group.add_argument(
        "--record",
        type=str,
        env_var="WEBCHAT_RECORD",
        default="",
        help="write a transcript of every frame sent and received (JSON Lines, tokens redacted) to this file",
    )


def _on_init(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    path = str(getattr(options, "record", "") or "") if options is not None else ""
    if not path:
        return
    meta = {
        "host": environment.host,
        **{key: getattr(options, key, None) for key in ("scenario", "seed", "pace", "queues")},
    }
    try:
        record.start(path, meta)
    except TranscriptError as exc:
        sys.stderr.write(f"webchat-sim: --record: {exc}\n")
        sys.stderr.flush()
        raise SystemExit(2) from None


def _on_quitting(environment: Environment, **_: Any) -> None:
    record.stop()


events.init_command_line_parser.add_listener(_add_option)  # type: ignore[no-untyped-call]
events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_on_quitting)  # type: ignore[no-untyped-call]
