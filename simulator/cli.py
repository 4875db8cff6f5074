"""The ``webchat-sim`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import orjson

from . import __version__

__all__ = ["build_parser", "main"]


def _cmd_schema(args: argparse.Namespace) -> int:
    from .protocol import json_schema

    option = orjson.OPT_INDENT_2 if args.indent else 0
    sys.stdout.write(orjson.dumps(json_schema(), option=option | orjson.OPT_APPEND_NEWLINE).decode())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="webchat-sim",
        description="Mock UltraCart webchat server and Locust load generator.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    schema = sub.add_parser("schema", help="print the JSON Schema (draft 2020-12) of a websocket frame")
    schema.add_argument("--compact", dest="indent", action="store_false", help="one line instead of indented")
    schema.set_defaults(func=_cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
