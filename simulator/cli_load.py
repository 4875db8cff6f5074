"""``webchat-sim load``: building its options, and the options of the load
generator's own faults (``--chaos``) and of Locust's distributed mode
(``--master`` / ``--worker``). Imports nothing of the load wing until a
command runs (``simulator.cli`` must not pull gevent or Locust in)."""

from __future__ import annotations

import argparse

__all__ = ["add_load_extras", "cmd_load"]


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


def add_load_extras(load: argparse.ArgumentParser) -> None:
    load.add_argument(
        "--chaos",
        type=_chaos,
        default="",
        metavar="disconnect=P[,…]",
        help="customers' faults: before each verb mid-chat, drop the connection abruptly with probability P "
        "and resume the chat with its resume token (counted as `chaos drop`; none: no chaos)",
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


def cmd_load(args: argparse.Namespace) -> int:
    from .load.runner import LoadOptions, run_load

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
            locust_stats=args.locust_stats,
            progress=args.progress,
            auth=args.auth,
            api_key=args.api_key,
            rest_url=args.rest_url,
            chaos=args.chaos,
            role="master" if args.master else "worker" if args.worker else "local",
            expect_workers=args.expect_workers,
            master_bind_host=args.master_bind_host,
            master_bind_port=args.master_bind_port,
            master_host=args.master_host,
            master_port=args.master_port,
        )
    )
