"""The ``webchat-sim`` command line: ``serve``, ``load``, ``capacity``, ``check``, ``demo``, ``db``,
``schema``, ``scenarios``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import textwrap
from collections.abc import Sequence
from typing import NoReturn, TypeVar

import orjson

from . import __version__
from .cli_db import add_db_parser, default_demo_db, demo_store, store_options
from .cli_load import add_capacity_parser, add_load_extras
from .cli_types import (
    _languages,
    _non_negative_int,
    _positive_float,
    _positive_int,
    _processes,
    _run_time,
    _serve_api_key,
    _serve_exchanges,
    _serve_fault,
    _serve_fault_profile,
    _serve_float,
    _serve_int,
    _serve_keys_file,
    _serve_queues,
    _serve_retain,
    _serve_size,
    parse_size,
)
from .errors import MockStartError, UsageError
from .pace import (
    DEFAULT_COUPON_PROBABILITY,
    DEFAULT_EXCHANGES,
    DEFAULT_ITEM_PROBABILITY,
    DEFAULT_LOAD_PACE,
    DEFAULT_MAX_CHATS,
    DEFAULT_PACE,
)

_T = TypeVar("_T")

__all__ = ["build_parser", "main", "parse_size"]


def _cmd_schema(args: argparse.Namespace) -> int:
    """The JSON Schema of a frame or (``--asyncapi``) the AsyncAPI document of
    the websocket, on stdout or in ``--output FILE``."""
    if args.asyncapi:
        from .protocol.asyncapi import asyncapi_document

        document = asyncapi_document()
    else:
        from .protocol import json_schema

        document = json_schema()
    option = orjson.OPT_INDENT_2 if args.indent else 0
    data = orjson.dumps(document, option=option | orjson.OPT_APPEND_NEWLINE)
    if args.output is None:
        sys.stdout.write(data.decode())
        return 0
    try:
        with open(args.output, "wb") as out:
            out.write(data)
    except OSError as exc:
        print(f"webchat-sim schema: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


# ``serve`` argument types: a wrong value is one argparse error line (exit 2),
# before anything binds.


def _cmd_serve(args: argparse.Namespace) -> int:
    from .mock.app import MockOptions, run
    from .mock.engine import EngineConfig, Routing
    from .mock.faults import FaultConfig
    from .mock.server import ServerConfig
    from .pace import Pace

    logging.basicConfig(level=getattr(logging, args.log_level.upper()), format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("faker").setLevel(max(logging.INFO, logging.root.level))  # 600 lines of locale loading
    queues: tuple[str, ...] = args.queues  # validated by _serve_queues, as every number by its type
    options = MockOptions(
        server=ServerConfig(
            host=args.host,
            port=args.port,
            max_frame_bytes=args.max_frame_bytes,
            frames_per_second=args.rate,
            burst=args.burst,
            idle_timeout=args.idle_timeout or None,
            ping_interval=args.ping_interval or None,
            ping_timeout=args.ping_interval or None,
            compression=args.compression,
            debug=args.log_level == "debug",
            faults=FaultConfig().updated([*(args.fault_profile or ()), *(args.fault or ())]),  # checked by their types
            fault_seed=args.seed,
        ),
        engine=EngineConfig(
            queues=queues,
            routing=Routing(args.routing),
            max_chats_per_agent=args.max_chats_per_agent,
            position_interval=args.position_interval,
            status_interval=args.status_interval,
            reconnect_grace=args.reconnect_grace,
            retain_bytes=args.retain_bytes,
            merchant_id=args.merchant_id,
        ),
        agents=args.agents,
        pace=Pace(args.pace),
        seed=args.seed,
        coupon_probability=args.coupon_probability,
        item_probability=args.item_probability,
        exchanges=args.exchanges,
        http_port=args.http_port,
        api_keys=dict([*(args.api_keys_file or ()), *(args.api_key or ())]),
        rest_rate=args.rest_rate,
        auth_required=args.auth == "required",
        jwt_secret=args.jwt_secret,
        token_ttl=args.token_ttl,
        store=store_options(args.db, args.retain),
    )
    return run(options)


def _cmd_load(args: argparse.Namespace) -> int:
    from .cli_load import cmd_load

    return cmd_load(args)


def _cmd_check(args: argparse.Namespace) -> int:
    from .load.check import CheckOptions, run_check

    return run_check(
        CheckOptions(
            host=args.host,
            probe_timeout=args.probe_timeout,
            junit=args.junit,
            routing=args.routing,
            queue=args.queue,
            seed=args.seed,
            probes=[n.strip() for text in args.probe or () for n in text.split(",") if n.strip()],
        )
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import DemoOptions, run_demo
    from .load.runner import parse_duration
    from .mock.app import MockOptions
    from .mock.engine import EngineConfig
    from .mock.server import ServerConfig
    from .pace import Pace

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    options = DemoOptions(
        mock=MockOptions(
            server=ServerConfig(host=args.host, port=args.port),
            engine=EngineConfig(queues=args.queues),
            agents=args.agents,
            pace=Pace(args.pace),
            seed=args.seed,
            http_port=args.http_port,
            store=demo_store(args.db, no_db=args.no_db),
        ),
        arrival_rate=args.arrival_rate,
        languages=args.languages,
        run_time=parse_duration(args.run_time) if args.run_time else None,
        open_browser=args.open,
    )
    return run_demo(options)


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from .load.scenario import available_scenarios, load_scenario

    width = max(40, shutil.get_terminal_size((100, 24)).columns - 1)
    for name in available_scenarios():
        first = load_scenario(name).doc.split("\n\n")[0]
        text = " ".join(first.replace("``", "").replace("`", "").split())
        print(textwrap.fill(text, width=width, initial_indent=f"{name:16} ", subsequent_indent=" " * 17))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (and where to read more)
    instead of the usage block followed by the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


_LOAD_EPILOG = """\
Inside Locust (plain `locust -f locustfile.py`, which lists only Locust's own
options in its --help) the same choices are the "webchat-sim" options:
--scenario, --pace, --chars-per-second, --seed, --queues, --chat-timeout,
--manual-routing, --agent-users, --agent-max-chats, --auth, --api-key,
--rest-url, --chaos (or WEBCHAT_SCENARIO, WEBCHAT_PACE, WEBCHAT_CPS, WEBCHAT_SEED,
WEBCHAT_QUEUES, WEBCHAT_TIMEOUT, WEBCHAT_MANUAL_ROUTING, WEBCHAT_AGENT_USERS,
WEBCHAT_AGENT_MAX_CHATS, WEBCHAT_AUTH, WEBCHAT_API_KEY, WEBCHAT_REST_URL,
WEBCHAT_CHAOS)."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="webchat-sim",
        description="Mock UltraCart webchat server and Locust load generator.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the mock webchat server (with autopilot agents)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind")
    serve.add_argument(
        "--port", type=_serve_int(0, 65535), default=8765, help="port to bind, 0 to 65535 (0: any free port)"
    )
    serve.add_argument(
        "--http-port",
        type=_serve_int(0, 65535),
        default=None,
        help="port of the HTTP side (REST, web, healthz); default: --port + 1 (0 when --port is 0)",
    )
    serve.add_argument(
        "--api-key",
        type=_serve_api_key,
        action="append",
        metavar="KEY[=AGENT NAME]",
        help="an API key the REST side accepts, for that agent (repeatable); none: development mode, any key",
    )
    serve.add_argument(
        "--api-keys-file",
        type=_serve_keys_file,
        metavar="PATH",
        help="API keys from a file, one KEY or KEY=AGENT NAME per line (# comments); with --api-key: both",
    )
    serve.add_argument(
        "--rest-rate",
        type=_serve_float(0.0),
        default=50.0,
        help="REST calls a second per caller, bursts of twice that (0: no limit); over it: 429",
    )
    serve.add_argument(
        "--auth",
        choices=["auto", "required"],
        default="auto",
        help="auto: query-string identities allowed unless --api-key is given; required: tokens only",
    )
    serve.add_argument("--jwt-secret", default=None, help="HS256 secret of the tokens (default: a fresh one per run)")
    serve.add_argument(
        "--token-ttl", type=_serve_float(1.0), default=3600.0, help="seconds an issued token stays valid"
    )
    serve.add_argument("--agents", type=_serve_int(0), default=2, help="autopilot agents per server (0: none)")
    serve.add_argument("--queues", type=_serve_queues, default="support", help="comma-separated queue names")
    serve.add_argument(
        "--routing",
        choices=["round-robin", "manual"],
        default="round-robin",
        help="round-robin: the server assigns waiting customers; manual: agents engage them",
    )
    serve.add_argument("--pace", choices=["human", "fast"], default=DEFAULT_PACE.value, help="autopilot agents' pace")
    serve.add_argument(
        "--seed", type=int, default=None, help="seed for uuids and autopilot behaviour (none: differs per run)"
    )
    serve.add_argument(
        "--max-chats-per-agent", type=_serve_int(1), default=DEFAULT_MAX_CHATS, help="chats an agent holds at once"
    )
    serve.add_argument(
        "--exchanges",
        type=_serve_exchanges,
        default=f"{DEFAULT_EXCHANGES[0]}-{DEFAULT_EXCHANGES[1]}",
        help="autopilot closes after this many exchanges (N or LOW-HIGH)",
    )
    probability = _serve_float(0.0, 1.0)
    serve.add_argument(
        "--coupon-probability",
        type=probability,
        default=DEFAULT_COUPON_PROBABILITY,
        help="autopilot pushes a coupon (coupon topics)",
    )
    serve.add_argument(
        "--item-probability",
        type=probability,
        default=DEFAULT_ITEM_PROBABILITY,
        help="autopilot pushes items (product topics)",
    )
    seconds = _serve_float(0.0)
    serve.add_argument("--position-interval", type=seconds, default=1.0, help="seconds between queue position pushes")
    serve.add_argument("--status-interval", type=seconds, default=1.0, help="seconds between queue status updates")
    serve.add_argument("--reconnect-grace", type=seconds, default=10.0, help="seconds a dropped participant may resume")
    serve.add_argument(
        "--idle-timeout", type=seconds, default=600.0, help="close connections silent this long (0: never)"
    )
    serve.add_argument(
        "--retain-bytes",
        type=_serve_size(2**20, "1MiB"),
        default=256 * 2**20,
        metavar="SIZE",
        help="memory budget of the conversations held (messages, recordings): the oldest closed ones are "
        "forgotten first, then old messages of idle open ones (e.g. 64MB, 1GiB; powers of 1024; default 256MiB)",
    )
    serve.add_argument(
        "--db",
        metavar="PATH",
        default=None,
        help="store conversations, queues and sessions in this SQLite file and restore them at start "
        "(default: memory only)",
    )
    serve.add_argument(
        "--retain",
        type=_serve_retain,
        default=None,
        metavar="DURATION",
        help="with --db: delete conversations closed longer ago than this, e.g. 7d, 12h (default: keep all)",
    )
    serve.add_argument("--ping-interval", type=seconds, default=20.0, help="websocket keepalive pings (0: off)")
    serve.add_argument("--max-frame-bytes", type=_serve_int(1), default=64 * 1024, help="larger frames close with 1009")
    serve.add_argument(
        "--rate", type=_serve_float(0.0, low_included=False), default=30.0, help="frames per second per connection"
    )
    serve.add_argument("--burst", type=_serve_int(1), default=60, help="frames allowed in a burst above --rate")
    serve.add_argument("--compression", action="store_true", help="offer permessage-deflate (costs memory)")
    serve.add_argument("--merchant-id", default="DEMO", help="merchant id in ARNs and summaries")
    serve.add_argument(
        "--fault",
        type=_serve_fault,
        action="append",
        metavar="NAME=VALUE",
        help="inject a fault (repeatable): latency=50ms-400ms, drop=0.01, duplicate=0.01, disconnect=0.001, "
        "reorder=0.01, slow-agent=2s-10s, seed=N (default: --seed); PUT /admin/faults changes them at run time",
    )
    serve.add_argument(
        "--fault-profile", type=_serve_fault_profile, metavar="FILE", help="faults, one NAME=VALUE a line (# comments)"
    )
    serve.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default="warning", help="server log on stderr"
    )
    serve.set_defaults(func=_cmd_serve)

    load = sub.add_parser(
        "load",
        help="run a headless load test (against the embedded mock unless --host)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog=_LOAD_EPILOG,
    )
    load.add_argument(
        "--host", default=None, help="websocket URL of the backend, e.g. ws://127.0.0.1:8765/ws (none: embedded mock)"
    )
    load.add_argument(
        "--users", type=_positive_int, default=50, help="concurrent simulated customers (and agent users)"
    )
    load.add_argument("--spawn-rate", type=_positive_float, default=10.0, help="users started per second")
    load.add_argument("--run-time", type=_run_time, default="30s", help="how long to run, e.g. 30s, 5m, 1h30m")
    load.add_argument(
        "--scenario",
        default="happy_path",
        help="weighted scenario mix, e.g. happy_path:3,abandon:1 (see `webchat-sim scenarios`)",
    )
    load.add_argument(
        "--agents",
        type=_non_negative_int,
        default=0,
        help="autopilot agents of the embedded mock (0: ceil(users/3), enough for every user; none with --agent-users)",
    )
    load.add_argument("--agent-users", type=_non_negative_int, default=0, help="simulated agents driven by Locust")
    load.add_argument("--processes", type=_processes, default=1, help="Locust worker processes (-1: one per core)")
    load.add_argument("--csv", default=None, help="keep Locust's CSV statistics (and its log) with this prefix")
    load.add_argument("--html", default=None, help="write Locust's HTML report to this file")
    load.add_argument("--report", default=None, metavar="FILE.html", help="write a self-contained HTML page: "
                      "the KPI table and plots over time (needs matplotlib: webchat-sim[report])")
    load.add_argument("--seed", type=int, default=0, help="base seed of the fake data")
    load.add_argument(
        "--pace",
        choices=["human", "fast", "none"],
        default=DEFAULT_LOAD_PACE.value,
        help="customers' and autopilot agents' pace: human (seconds), fast (milliseconds), none",
    )
    load.add_argument("--queues", default="support", help="comma-separated queue names")
    load.add_argument(
        "--routing", choices=["round-robin", "manual"], default="round-robin", help="how chats reach agents"
    )
    load.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        help="seconds one wait (ack, agent, reply) may take before it fails (none: 30, or 120 at human pace)",
    )
    load.add_argument("--summary-json", default=None, help="also write the KPI summary as JSON")
    load.add_argument(
        "--locust-stats", action="store_true", help="also print Locust's own statistics tables at the end"
    )
    load.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a status line every few seconds (none: only when stdout is a terminal)",
    )
    load.add_argument(
        "--auth",
        choices=["query", "rest"],
        default="query",
        help="query: identities in the websocket query string (the mock's development mode); "
        "rest: UltraCart's REST auth (timed as `auth`), then the websocket it names with the JWT",
    )
    load.add_argument(
        "--api-key",
        default=None,
        metavar="KEY[,KEY…]",
        help="API key(s) for --auth rest; agent users take them in turn "
        "(none: the embedded mock gets a made-up one, and one per agent user)",
    )
    load.add_argument(
        "--rest-url",
        default=None,
        help="REST base URL for --auth rest (none: what the embedded mock or --host's /healthz reports, "
        "else ws://H:P/ws -> http://H:P+1/rest/v2)",
    )
    add_load_extras(load)
    load.add_argument("locust_args", nargs="*", help="extra Locust arguments after --")
    load.set_defaults(func=_cmd_load)
    add_capacity_parser(
        sub,
        {
            "positive_int": _positive_int,
            "non_negative_int": _non_negative_int,
            "positive_float": _positive_float,
            "run_time": _run_time,
            "fault": _serve_fault,
        },
    )

    check = sub.add_parser(
        "check",
        help="run the protocol conformance suite against a backend (the embedded mock unless --host)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    check.add_argument(
        "--host", default=None, help="websocket URL of the backend, e.g. ws://127.0.0.1:8765/ws (none: embedded mock)"
    )
    check.add_argument(
        "--probe-timeout", type=_positive_float, default=10.0, help="seconds one probe may take before it fails"
    )
    check.add_argument("--junit", default=None, metavar="FILE", help="also write the results as JUnit XML")
    check.add_argument(
        "--routing",
        choices=["round-robin", "manual"],
        default="round-robin",
        help="how the backend routes chats (manual: the checker's agent engages its customers)",
    )
    check.add_argument("--queue", default="support", help="the queue the probes use")
    check.add_argument("--seed", type=int, default=0, help="seed of the fake data")
    check.add_argument(
        "--probe", action="append", metavar="NAME[,NAME…]", help="run only these probes (repeatable; default: all)"
    )
    check.set_defaults(func=_cmd_check)

    demo = sub.add_parser(
        "demo",
        help="show the product: the mock with autopilot agents and a live population of customers, in the browser",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to bind")
    demo.add_argument("--port", type=_serve_int(0, 65535), default=8765, help="websocket port (0: any free port)")
    demo.add_argument(
        "--http-port", type=_serve_int(0, 65535), default=None, help="pages, REST and /metrics; default: --port + 1"
    )
    demo.add_argument("--arrival-rate", type=_positive_float, default=0.07, help="new chats a second, on average")
    demo.add_argument("--agents", type=_serve_int(0), default=3, help="autopilot agents")
    demo.add_argument("--seed", type=int, default=0, help="seed of the agents and the customers")
    demo.add_argument(
        "--languages", type=_languages, default=("en", "fr", "de", "es"), help="comma-separated: en, fr, de, es"
    )
    demo.add_argument("--pace", choices=["human", "fast"], default="human", help="agents' and customers' pace")
    demo.add_argument("--queues", type=_serve_queues, default=("support",), help="comma-separated queue names")
    demo.add_argument(
        "--run-time", type=_run_time, default=None, help="stop after this long, e.g. 10m (default: Ctrl-C)"
    )
    demo.add_argument("--open", action="store_true", help="open the dashboard in a web browser")
    demo.add_argument(
        "--db",
        metavar="PATH",
        default=None,
        help=f"keep the demo's conversations in this SQLite file across restarts (default: {default_demo_db()})",
    )
    demo.add_argument("--no-db", action="store_true", help="keep nothing: memory only, a fresh desk each run")
    demo.set_defaults(func=_cmd_demo)

    add_db_parser(sub)

    scen = sub.add_parser("scenarios", help="list the scenario scripts")
    scen.set_defaults(func=_cmd_scenarios)

    schema = sub.add_parser(
        "schema",
        help="print the JSON Schema (draft 2020-12) of a websocket frame, or the websocket's AsyncAPI 3.0 document",
    )
    schema.add_argument("--compact", dest="indent", action="store_false", help="one line instead of indented")
    schema.add_argument(
        "--asyncapi",
        action="store_true",
        help="the AsyncAPI 3.0 document of /ws (messages per frame kind and direction) instead",
    )
    schema.add_argument("--output", metavar="FILE", default=None, help="write to FILE instead of stdout")
    schema.set_defaults(func=_cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; a mistake the user can make is one line on
    stderr (exit status 2 for usage, 1 when the run could not start)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        result: int = args.func(args)
    except UsageError as exc:
        print(f"webchat-sim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except MockStartError as exc:
        print(f"webchat-sim {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `webchat-sim … | head`: the reader left; say nothing more
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
