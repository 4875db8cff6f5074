"""The ``webchat-sim`` command line: ``serve``, ``load``, ``schema``, ``scenarios``."""

from __future__ import annotations

import argparse
import logging
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


def _cmd_serve(args: argparse.Namespace) -> int:
    from .app import MockOptions, run
    from .autopilot import Pace
    from .engine import EngineConfig, Routing
    from .server import ServerConfig

    logging.basicConfig(level=getattr(logging, args.log_level.upper()), format="%(asctime)s %(name)s %(message)s")
    queues = tuple(q for q in args.queues.split(",") if q)
    if not queues:
        raise SystemExit("webchat-sim serve: --queues needs at least one queue name")
    low, _, high = args.exchanges.partition("-")
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
        ),
        engine=EngineConfig(
            queues=queues,
            routing=Routing(args.routing),
            max_chats_per_agent=args.max_chats_per_agent,
            position_interval=args.position_interval,
            status_interval=args.status_interval,
            reconnect_grace=args.reconnect_grace,
            merchant_id=args.merchant_id,
        ),
        agents=args.agents,
        pace=Pace(args.pace),
        seed=args.seed,
        coupon_probability=args.coupon_probability,
        item_probability=args.item_probability,
        exchanges=(int(low), int(high or low)),
    )
    return run(options)


def _cmd_load(args: argparse.Namespace) -> int:
    from .load import LoadOptions, run_load

    return run_load(
        LoadOptions(
            host=args.host,
            users=args.users,
            spawn_rate=args.spawn_rate,
            run_time=args.run_time,
            scenario=args.scenario,
            agents=args.agents,
            agent_users=args.agent_users,
            processes=args.processes,
            csv=args.csv,
            html=args.html,
            seed=args.seed,
            pace=args.pace,
            queues=args.queues,
            routing=args.routing,
            timeout=args.timeout,
            summary_json=args.summary_json,
            locust_args=list(args.locust_args or []),
        )
    )


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from .scenario import available_scenarios, load_scenario

    for name in available_scenarios():
        doc = load_scenario(name).doc.split("\n\n")[0].replace("\n", " ")
        print(f"{name:16} {doc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    serve.add_argument("--port", type=int, default=8765, help="port to bind (0: any free port)")
    serve.add_argument("--agents", type=int, default=2, help="autopilot agents per server (0: none)")
    serve.add_argument("--queues", default="support", help="comma-separated queue names")
    serve.add_argument("--routing", choices=["round-robin", "manual"], default="round-robin")
    serve.add_argument("--pace", choices=["human", "fast"], default="human", help="autopilot agents' pace")
    serve.add_argument("--seed", type=int, default=None, help="seed for uuids and autopilot behaviour")
    serve.add_argument("--max-chats-per-agent", type=int, default=3)
    serve.add_argument("--exchanges", default="3-6", help="autopilot closes after this many exchanges (N or LOW-HIGH)")
    serve.add_argument(
        "--coupon-probability", type=float, default=0.3, help="autopilot pushes a coupon (coupon topics)"
    )
    serve.add_argument("--item-probability", type=float, default=0.3, help="autopilot pushes items (product topics)")
    serve.add_argument("--position-interval", type=float, default=1.0, help="seconds between queue position pushes")
    serve.add_argument("--status-interval", type=float, default=1.0, help="seconds between queue status updates")
    serve.add_argument("--reconnect-grace", type=float, default=10.0, help="seconds a dropped participant may resume")
    serve.add_argument(
        "--idle-timeout", type=float, default=600.0, help="close connections silent this long (0: never)"
    )
    serve.add_argument("--ping-interval", type=float, default=20.0, help="websocket keepalive pings (0: off)")
    serve.add_argument("--max-frame-bytes", type=int, default=64 * 1024, help="larger frames close with 1009")
    serve.add_argument("--rate", type=float, default=30.0, help="frames per second per connection")
    serve.add_argument("--burst", type=int, default=60, help="frames allowed in a burst above --rate")
    serve.add_argument("--compression", action="store_true", help="offer permessage-deflate (costs memory)")
    serve.add_argument("--merchant-id", default="DEMO")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="warning")
    serve.set_defaults(func=_cmd_serve)

    load = sub.add_parser(
        "load",
        help="run a headless load test (against the embedded mock unless --host)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    load.add_argument("--host", default=None, help="websocket URL of the backend, e.g. ws://127.0.0.1:8765/ws")
    load.add_argument("--users", type=int, default=50, help="concurrent simulated customers (and agent users)")
    load.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second")
    load.add_argument("--run-time", default="30s", help="e.g. 30s, 5m, 1h")
    load.add_argument(
        "--scenario",
        default="happy_path",
        help="weighted scenario mix, e.g. happy_path:3,abandon:1 (see `webchat-sim scenarios`)",
    )
    load.add_argument(
        "--agents",
        type=int,
        default=0,
        help="autopilot agents of the embedded server (0: users/3, or none with --agent-users)",
    )
    load.add_argument("--agent-users", type=int, default=0, help="simulated agents driven by Locust")
    load.add_argument("--processes", type=int, default=1, help="Locust worker processes (-1: one per core)")
    load.add_argument("--csv", default=None, help="write Locust's CSV statistics with this prefix")
    load.add_argument("--html", default=None, help="write Locust's HTML report to this file")
    load.add_argument("--seed", type=int, default=0, help="base seed of the fake data")
    load.add_argument("--pace", choices=["human", "fast", "none"], default="fast")
    load.add_argument("--queues", default="support", help="comma-separated queue names")
    load.add_argument("--routing", choices=["round-robin", "manual"], default="round-robin")
    load.add_argument("--timeout", type=float, default=30.0, help="seconds one wait may take before it fails")
    load.add_argument("--summary-json", default=None, help="also write the KPI summary as JSON")
    load.add_argument("locust_args", nargs="*", help="extra Locust arguments after --")
    load.set_defaults(func=_cmd_load)

    scen = sub.add_parser("scenarios", help="list the scenario scripts")
    scen.set_defaults(func=_cmd_scenarios)

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
