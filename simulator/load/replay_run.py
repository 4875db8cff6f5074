"""``webchat-sim replay FILE``: a transcript's customer side (and with
``--agents`` its agent side) replayed against ``--host`` or, without it,
the embedded mock (started as ``load`` starts it, with the recorded run's
seed and queues; no autopilot agents with ``--agents``: the replayed agents
answer). ``--users N`` plays N copies, ``--spawn-rate`` a second, each with
its own ids; with ``--agents`` on the embedded mock each copy has queues of
its own (``support#2``…), so no copy's agent takes another copy's customer
(against ``--host`` the backend routes: a copy's agent may get another's
customer, which the per-connection ids allow, but an agent given more chats
than it recorded leaves one unanswered).

Prints each failure (naming the transcript line), a summary, the verdict;
exit status 0 when nothing differed, 1 on any failure or when the backend
cannot be reached, 2 for usage errors (one line).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import IO
from urllib.parse import parse_qsl, urlsplit

import gevent

from ..errors import UsageError
from ..transcript import Transcript, TranscriptWriter, read_transcript
from .check import reachable
from .mockproc import MockProcess
from .replay import Failure, Plan, Replayer

__all__ = ["ReplayOptions", "run_replay"]

_SHOWN = 20
"""Failures printed one a line; the rest are counted."""


@dataclass(kw_only=True)
class ReplayOptions:
    file: str
    host: str | None = None
    speed: float = 1.0
    users: int = 1
    spawn_rate: float = 20.0
    agents: bool = False
    tolerance: float = 2.0
    json_path: str | None = None
    record: str | None = None
    mock_args: list[str] = field(default_factory=list)


def check_options(opts: ReplayOptions) -> None:
    if not opts.speed > 0 or not math.isfinite(opts.speed):
        raise UsageError(f"--speed must be more than 0 (got {opts.speed:g})")
    if not opts.spawn_rate > 0:
        raise UsageError(f"--spawn-rate must be more than 0 (got {opts.spawn_rate:g})")
    if opts.users < 1:
        raise UsageError(f"--users must be at least 1 (got {opts.users})")
    if not opts.tolerance >= 0 or not math.isfinite(opts.tolerance):
        raise UsageError(f"--tolerance must be 0 seconds or more (got {opts.tolerance:g})")
    if opts.host is not None and not re.match(r"^wss?://[^/\s]+", opts.host):
        raise UsageError(f'--host must be a websocket URL such as ws://127.0.0.1:8765/ws (got "{opts.host}")')
    if opts.mock_args and opts.host:
        raise UsageError("--fault is a fault of the embedded mock: not with --host (run `webchat-sim serve --fault`)")
    for name, path in (("--json", opts.json_path), ("--record", opts.record)):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise UsageError(f"{name}: no folder {os.path.dirname(os.path.abspath(path))} for {path}")
        if path and os.path.isdir(path):
            raise UsageError(f"{name}: {path} is a folder, not a file")


def recorded_queues(transcript: Transcript) -> list[str]:
    """The queues the transcript names: the header's (a load run), those of
    ``webchat start conversation`` frames and of agents' URLs; else support."""
    found: dict[str, None] = {}
    header = transcript.header.get("queues")
    for name in header.split(",") if isinstance(header, str) else ():
        found[name.strip()] = None
    for entry in transcript.entries:
        if entry.dir == "send" and isinstance(start := (entry.frame or {}).get("event_engage_customer"), dict):
            if isinstance(queue := start.get("queue_name"), str):
                found[queue] = None
        elif entry.dir == "open" and entry.url and entry.role == "agent":
            for name in dict(parse_qsl(urlsplit(entry.url).query)).get("queues", "").split(","):
                found[name] = None
    return [q for q in found if q] or ["support"]


def isolated(opts: ReplayOptions) -> bool:
    """Whether each copy gets queues of its own (both sides replayed, several
    users, the embedded mock): no copy's agent takes another copy's customer."""
    return opts.agents and opts.users > 1 and opts.host is None


def mock_args(opts: ReplayOptions, transcript: Transcript) -> list[str]:
    """The embedded mock's ``serve`` arguments: the recorded run's seed, queues and pace."""
    header = transcript.header
    names = recorded_queues(transcript)
    copies = [f"#{n + 1}" if n else "" for n in range(opts.users)] if isolated(opts) else [""]
    queues = ",".join(q + suffix for suffix in copies for q in names)
    pace = "human" if header.get("pace") == "human" else "fast"
    agents = 0 if opts.agents else max(1, math.ceil(opts.users / 3))
    return [
        "--agents",
        str(agents),
        "--pace",
        pace,
        "--seed",
        str(header.get("seed") if isinstance(header.get("seed"), int) else 0),
        "--queues",
        queues,
        "--rate",
        "1000",
        "--burst",
        "2000",
        *opts.mock_args,
    ]


def run_replay(opts: ReplayOptions, out: IO[str] = sys.stdout) -> int:
    check_options(opts)
    transcript = read_transcript(opts.file)
    roles = frozenset({"customer", "agent"} if opts.agents else {"customer"})
    plan = Plan(transcript, roles)
    if not plan.conns:
        sides = "customer or agent" if opts.agents else "customer (add --agents for the agent side)"
        raise UsageError(f"{opts.file}: no {sides} connection to replay")
    if opts.agents and opts.host is None and not any(c.role == "agent" for c in plan.conns):
        raise UsageError(
            f"{opts.file}: no agent connection to replay with --agents (the embedded mock would have no agents "
            "to answer); replay without --agents for its autopilot agents"
        )
    writer = TranscriptWriter(opts.record, source="replay", meta={"replayed": opts.file}) if opts.record else None
    mock: MockProcess | None = None
    host = opts.host
    started = time.monotonic()
    failures: list[Failure] = []
    try:
        if host is None:
            mock = MockProcess(mock_args(opts, transcript))
            host = mock.url
            out.write(f"embedded mock server at {host}\n")
        elif (why := reachable(host, 5.0)) is not None:
            out.write(f"webchat-sim replay: cannot reach the backend: {why}\n")
            return 1
        out.write(
            f"replaying {opts.file} ({len(plan.conns)} connection(s), {plan.expected} expected frame(s) each) "
            f"as {opts.users} user(s) ({opts.spawn_rate:g} a second) against {host} at speed {opts.speed:g}\n"
        )
        out.flush()
        replayers = [
            Replayer(
                plan,
                host,
                user=user + 1,
                speed=opts.speed,
                tolerance=opts.tolerance,
                agent_suffix=f" #{user + 1}" if user and opts.agents else "",
                delay=user / opts.spawn_rate,
                queue_suffix=f"#{user + 1}" if user and isolated(opts) else "",
                writer=writer,
            )
            for user in range(opts.users)
        ]
        gevent.joinall([gevent.spawn(r.run) for r in replayers])
    finally:
        if mock is not None:
            mock.stop()
        if writer is not None:
            writer.close()
    seconds = time.monotonic() - started
    for replayer in replayers:
        failures += replayer.result.failures
    failures.sort(key=lambda f: (f.user, f.line))
    for failure in failures[:_SHOWN]:
        out.write(f"FAIL {failure}\n")
    if len(failures) > _SHOWN:
        out.write(f"… and {len(failures) - _SHOWN} more failure(s)\n")
    sent = sum(r.result.sent for r in replayers)
    skipped = sum(r.result.skipped for r in replayers)
    cut = sum(r.result.cut_short for r in replayers)
    raced = sum(r.result.raced for r in replayers)
    matched = sum(r.result.matched for r in replayers)
    latencies = sorted(x for r in replayers for x in r.result.latencies)
    p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))] * 1000 if latencies else 0.0
    out.write(
        f"{opts.users} user(s): {sent} frame(s) sent, {matched} of {plan.expected * opts.users} expected frame(s) "
        f"matched (p95 {p95:.0f} ms after the step began), {len(failures)} failure(s), in {seconds:.1f} s\n"
    )
    if skipped or cut:
        out.write(
            f"not replayed: {skipped} frame(s) the live agents did not send, {cut} chat(s) they closed earlier "
            "than recorded (replay the agents too with --agents)\n"
        )
    if raced:
        out.write(
            f"raced a close: {raced} frame(s) sent or received just before a chat's close when "
            "recorded, after it this time (timing, not required)\n"
        )
    if opts.json_path:
        report = {
            "file": opts.file,
            "host": host,
            "users": opts.users,
            "speed": opts.speed,
            "tolerance": opts.tolerance,
            "sent": sent,
            "expected": plan.expected * opts.users,
            "matched": matched,
            "skipped": skipped,
            "cut_short": cut,
            "raced": raced,
            "seconds": round(seconds, 3),
            "failures": [
                {"line": f.line, "user": f.user, "conn": f.conn, "role": f.role, "reason": f.reason} for f in failures
            ],
        }
        with open(opts.json_path, "w") as handle:
            json.dump(report, handle, indent=2)
    out.write(f"result: {'FAIL' if failures else 'PASS'} ({len(failures)} failure(s))\n")
    return 1 if failures else 0
