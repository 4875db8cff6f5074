"""``webchat-sim load`` and ``capacity``: building their options, the options
of the load generator's own faults (``--chaos``) and of Locust's distributed
mode (``--master`` / ``--worker``), and ``capacity``'s parser (the run is
:mod:`simulator.load.capacity_run`). Imports nothing of the load wing until a
command runs (``simulator.cli`` must not pull gevent or Locust in)."""

from __future__ import annotations

import argparse
from typing import Any

from .pace import DEFAULT_LOAD_PACE

__all__ = ["add_capacity_parser", "add_load_extras", "cmd_load"]

_EPILOG = """\
Each step runs --step-time with its users and is judged on its own operations
only (not the run so far); the run stops at the first step that breaks an SLO.
An SLO: "KPI STAT<LIMIT" (KPI: a row of `load`'s summary, STAT: p50, p95,
p99, p99.9, mean or max, LIMIT: 800ms, 5s) or "failures<1%%".
Default SLOs: "queue wait p99<5s", "first reply p95<8s", "failures<1%%".
"""


def _chaos(text: str) -> str:
    from .load.chaos import parse_chaos

    try:
        parse_chaos(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'"{text}" is not a port number') from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535 (got {text})")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'"{text}" is not a whole number') from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 (got {text})")
    return value


def _mock_fault(text: str) -> tuple[str, str]:
    from .cli_types import _serve_fault

    return _serve_fault(text)


def add_load_extras(load: argparse.ArgumentParser) -> None:
    load.add_argument(
        "--fault",
        type=_mock_fault,
        action="append",
        metavar="NAME=VALUE",
        help="a fault of the embedded mock (as `serve --fault`: latency, drop, duplicate, disconnect, reorder, "
        "slow-agent), to see how the scenarios and KPIs cope; not with --host",
    )
    load.add_argument(
        "--chaos",
        type=_chaos,
        default="",
        metavar="disconnect=P[,…]",
        help="customers' faults: before each verb mid-chat, drop the connection abruptly with probability P "
        "and resume the chat with its resume token (counted as `chaos drop`; none: no chaos)",
    )
    load.add_argument(
        "--record",
        default=None,
        metavar="FILE.jsonl",
        help="write a transcript: every frame the simulated users send and receive, one JSON line each, "
        "tokens redacted (replay it with `webchat-sim replay`); one process only",
    )
    role = load.add_mutually_exclusive_group()
    role.add_argument(
        "--master",
        action="store_true",
        help="Locust master: waits for --expect-workers workers, runs the embedded mock (unless --host), "
        "aggregates their statistics and prints the summary",
    )
    role.add_argument(
        "--worker",
        action="store_true",
        help="Locust worker of the master at --master-host: runs the users it is given, no mock, no summary",
    )
    load.add_argument("--expect-workers", type=_workers, default=1, help="with --master: workers to wait for")
    load.add_argument(
        "--master-bind-host", default="*", help="with --master: the interface workers connect to (*: all)"
    )
    load.add_argument("--master-bind-port", type=_port, default=5557, help="with --master: the port workers connect to")
    load.add_argument("--master-host", default="127.0.0.1", help="with --worker: the master's address")
    load.add_argument("--master-port", type=_port, default=5557, help="with --worker: the master's --master-bind-port")


def _check_record(path: str | None, processes: int, master: bool) -> None:
    """``--record``: one process (one file), in a folder that exists; not
    on a master (it runs no users: each worker records its own)."""
    import os

    from .errors import UsageError

    if path is None:
        return
    if master:
        raise UsageError("--record on the master records nothing: give each --worker its own --record FILE")
    if processes != 1:
        raise UsageError("--record writes one transcript: run it with one process (no --processes)")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"--record: no folder {folder} for {path}")
    if os.path.isdir(path):
        raise UsageError(f"--record: {path} is a folder, not a file")


def cmd_load(args: argparse.Namespace) -> int:
    from .load.runner import LoadOptions, run_load

    _check_record(args.record, args.processes, args.master)
    return run_load(
        LoadOptions(
            host=args.host,
            mock_args=[arg for name, value in (args.fault or []) for arg in ("--fault", f"{name}={value}")],
            users=args.users,
            spawn_rate=args.spawn_rate,
            run_time=args.run_time,
            scenario=args.scenario,
            agents=args.agents,
            agent_users=args.agent_users,
            processes=args.processes,
            csv=args.csv,
            html=args.html,
            report=args.report,
            seed=args.seed,
            pace=args.pace,
            queues=args.queues,
            routing=args.routing,
            timeout=args.timeout,
            summary_json=args.summary_json,
            locust_args=list(args.locust_args or []),
            locust_stats=args.locust_stats,
            progress=args.progress,
            auth=args.auth,
            api_key=args.api_key,
            rest_url=args.rest_url,
            chaos=args.chaos,
            record=args.record,
            role="master" if args.master else "worker" if args.worker else "local",
            expect_workers=args.expect_workers,
            master_bind_host=args.master_bind_host,
            master_bind_port=args.master_bind_port,
            master_host=args.master_host,
            master_port=args.master_port,
        )
    )


def _cmd_capacity(args: argparse.Namespace) -> int:
    from .load.capacity import DEFAULT_SLOS
    from .load.capacity_run import CapacityOptions, run_capacity
    from .load.runner import LoadOptions, parse_duration

    return run_capacity(
        CapacityOptions(
            load=LoadOptions(
                host=args.host,
                scenario=args.scenario,
                agents=args.agents,
                csv=args.csv,
                seed=args.seed,
                pace=args.pace,
                queues=args.queues,
                timeout=args.timeout,
                progress=args.progress,
                mock_args=[arg for name, value in (args.fault or []) for arg in ("--fault", f"{name}={value}")],
            ),
            slos=list(args.slo or DEFAULT_SLOS),
            start=args.start,
            step=args.step,
            step_time=parse_duration(args.step_time),
            max_users=args.max_users,
            json_path=args.json,
        )
    )


def add_capacity_parser(sub: Any, types: dict[str, Any]) -> None:
    """Add ``capacity`` to the subparsers ``sub``; ``types``: cli's argparse types by name."""
    cap = sub.add_parser(
        "capacity",
        help="step users up until an SLO breaks (against the embedded mock unless --host)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    cap.add_argument("--host", default=None, help="websocket URL of the backend (none: the embedded mock)")
    cap.add_argument("--slo", action="append", metavar="SLO", help='an SLO (repeatable), e.g. "queue wait p99<5s"')
    cap.add_argument("--start", type=types["positive_int"], default=10, help="users of the first step (10)")
    cap.add_argument("--step", type=types["positive_int"], default=10, help="users added at each step (10)")
    cap.add_argument("--step-time", type=types["run_time"], default="30s", help="how long each step runs (30s)")
    cap.add_argument("--max-users", type=types["positive_int"], default=5000, help="the last step at most (5000)")
    cap.add_argument("--json", default=None, metavar="FILE", help="also write the steps and the answer as JSON")
    cap.add_argument("--scenario", default="happy_path", help="weighted scenario mix (happy_path)")
    cap.add_argument(
        "--pace", choices=["human", "fast", "none"], default=DEFAULT_LOAD_PACE.value, help="customers' pace"
    )
    cap.add_argument(
        "--agents",
        type=types["non_negative_int"],
        default=0,
        help="autopilot agents of the embedded mock (0: enough for --max-users)",
    )
    cap.add_argument("--seed", type=int, default=0, help="base seed of the fake data")
    cap.add_argument("--queues", default="support", help="comma-separated queue names")
    cap.add_argument("--timeout", type=types["positive_float"], default=None, help="seconds one wait may take")
    cap.add_argument("--csv", default=None, help="keep Locust's CSV statistics (and its log) with this prefix")
    cap.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a status line every few seconds (none: only when stdout is a terminal)",
    )
    cap.add_argument(
        "--fault",
        type=types["fault"],
        action="append",
        metavar="NAME=VALUE",
        help="a fault of the embedded mock (as `serve --fault`), e.g. slow-agent=2s-3s",
    )
    cap.set_defaults(func=_cmd_capacity)
