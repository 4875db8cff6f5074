"""Queue churn: engine cost per join / engage / abandon with 100, 1,000 and 10,000 customers waiting.

    python benchmarks/bench_churn.py [--quick] [--waiting 100 1000 10000] [--json PATH]

The sans-I/O :class:`simulator.mock.engine.Engine` is driven directly (no sockets,
no encoding): frames are decoded before the clock starts, and each measured
event is one ``Engine.receive`` call. Five agents are logged in to the one
queue. The queue length stays constant during a phase:

* ``join`` — a connected customer sends ``webchat start conversation`` (with
  a question); paired with ``abandon`` — a customer at a random place in the
  line closes its conversation while queued (manual routing);
* ``engage`` — manual routing: an agent sends ``engage customer`` for the
  oldest entry (everyone behind moves up); the agent then closes that chat and
  a new customer joins (both untimed);
* ``assign`` — round-robin routing, every agent at its chat limit: an agent
  closes its chat, which frees capacity and assigns the oldest waiting
  customer to it (close + routing, one event); a new customer joins (untimed).

Simulated time advances 1 ms per event (1,000 events per second) and
:meth:`Engine.tick` runs whenever :meth:`Engine.next_deadline` has passed, so
``queue position`` pushes and ``queue status update`` broadcasts are coalesced
as in the server (at most one flush per queue per second). For each phase the
table shows the engine's µs per event (best of the rounds' means), the frames
emitted at once (deliveries, and deliveries × recipients, i.e. socket writes)
and those emitted by the coalesced flushes (per event, and per flush with the
flush's cost). The ratios compare each queue length with the shortest one,
measured in the same run; the target is a cost ratio 10,000-vs-100 <= 2 per
event type. Results go to benchmarks/results/bench_churn.json.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from _common import RESULTS_DIR, Target, judge, print_header, print_targets, report_head, save_results, target_keys

from simulator.mock.engine import Delivery, Engine, EngineConfig, Identity, Role, Routing
from simulator.protocol import EventType, Frame, decode

RESULTS = RESULTS_DIR / "bench_churn.json"
EVENTS = ("join", "abandon", "engage", "assign")
TARGET_RATIO = 2.0

# Workload
T0 = 1_795_615_525.0  # 2026-11-25T14:05:25Z
STEP = 0.001  # simulated seconds between events
AGENTS = 5
AGENT_BASE = 1  # agent connections are 1..AGENTS
CUSTOMER_BASE = 1_000
QUESTION = "Hi! I ordered the blue running shoes last Tuesday; has the parcel shipped yet?"


def _frame(wire: dict[str, Any]) -> Frame:
    return decode(orjson.dumps(wire))


START = _frame(
    {
        "type": "event",
        "event_type": "webchat start conversation",
        "event_engage_customer": {"conversation_participant_name": "Jordan Example", "question": QUESTION},
    }
)


def close_frame(conversation_uuid: str) -> Frame:
    return _frame({"type": "event", "event_type": "conversation closed", "conversation_uuid": conversation_uuid})


def engage_frame(queue_uuid: str) -> Frame:
    return _frame(
        {
            "type": "event",
            "event_type": "engage customer",
            "event_engage_customer": {"conversation_webchat_queue_uuid": queue_uuid},
        }
    )


@dataclass
class Tally:
    """What one kind of event cost and emitted, over the measured rounds."""

    round_us: list[float] = field(default_factory=list)
    """Mean µs per event of each round."""
    events: int = 0
    deliveries: int = 0
    frames: int = 0
    max_frames: int = 0
    tick_flushes: int = 0
    tick_frames: int = 0
    tick_ns: int = 0
    # current round
    _ns: int = 0
    _count: int = 0

    def add(self, elapsed_ns: int, out: list[Delivery]) -> None:
        self._ns += elapsed_ns
        self._count += 1
        self.events += 1
        frames = sum(len(d.recipients) for d in out)
        self.deliveries += len(out)
        self.frames += frames
        self.max_frames = max(self.max_frames, frames)

    def end_round(self) -> None:
        if self._count:
            self.round_us.append(self._ns / self._count / 1000)
        self._ns = self._count = 0

    def summary(self) -> dict[str, Any]:
        flushes = self.tick_flushes
        return {
            "us_per_event": round(min(self.round_us), 3),
            "us_per_event_median": round(statistics.median(self.round_us), 3),
            "events": self.events,
            "deliveries_per_event": round(self.deliveries / self.events, 3),
            "frames_per_event": round(self.frames / self.events, 3),
            "max_frames_per_event": self.max_frames,
            "tick_flushes": flushes,
            "tick_frames_per_event": round(self.tick_frames / self.events, 3),
            "tick_frames_per_flush": round(self.tick_frames / flushes, 1) if flushes else 0.0,
            "tick_us_per_flush": round(self.tick_ns / flushes / 1000, 1) if flushes else 0.0,
            "tick_us_per_frame": round(self.tick_ns / self.tick_frames / 1000, 3) if self.tick_frames else None,
        }


class Churn:
    """An engine with ``waiting`` customers in line, and the bookkeeping to pick
    who acts next (outside the timed calls)."""

    def __init__(self, waiting: int, routing: Routing, *, seed: int) -> None:
        max_chats = 1 if routing is Routing.ROUND_ROBIN else 1_000_000
        config = EngineConfig(routing=routing, max_chats_per_agent=max_chats)
        self.engine = Engine(config, rng=random.Random(seed))
        self.rng = random.Random(seed + 1)
        self.now = T0
        self.next_conn = CUSTOMER_BASE
        # customer conn -> (conversation uuid, queue uuid), oldest first
        self.line: dict[int, tuple[str, str]] = {}
        self.picks: list[int] = []  # the same conns, for O(1) random picks
        self.pick_index: dict[int, int] = {}
        self.chat_of: dict[int, tuple[int, str]] = {}  # agent conn -> (customer conn, conversation uuid)
        self.tally: Tally | None = None  # where tick figures go
        for agent in range(AGENT_BASE, AGENT_BASE + AGENTS):
            self.engine.connect(agent, Identity(role=Role.AGENT, name=f"agent-{agent}"), self.now)
        busy = AGENTS if routing is Routing.ROUND_ROBIN else 0
        for _ in range(waiting + busy):
            self.join(None)
        assert len(self.line) == waiting, (len(self.line), waiting)
        self.advance(2.0)  # flush the set-up's pushes

    # Bookkeeping (untimed)

    @staticmethod
    def assigned(out: list[Delivery]) -> tuple[int, str] | None:
        """``(agent conn, conversation uuid)`` if the deliveries assign a chat to an agent."""
        for recipients, frame in out:
            if frame.event_type is EventType.NEW_CONVERSATION and recipients[0] < CUSTOMER_BASE:
                assert frame.conversation_uuid is not None
                return recipients[0], frame.conversation_uuid
        return None

    def _list(self, conn: int, conversation_uuid: str, queue_uuid: str) -> None:
        self.line[conn] = (conversation_uuid, queue_uuid)
        self.pick_index[conn] = len(self.picks)
        self.picks.append(conn)

    def _unlist(self, conn: int) -> None:
        del self.line[conn]
        index = self.pick_index.pop(conn)
        last = self.picks.pop()
        if last != conn:
            self.picks[index] = last
            self.pick_index[last] = index

    def advance(self, seconds: float = STEP) -> None:
        """Move simulated time on; run the coalesced flush when it is due."""
        self.now += seconds
        engine = self.engine
        deadline = engine.next_deadline()
        if deadline is not None and deadline <= self.now:
            start = time.perf_counter_ns()
            out = engine.tick(self.now)
            elapsed = time.perf_counter_ns() - start
            tally = self.tally
            if tally is not None:
                tally.tick_flushes += 1
                tally.tick_ns += elapsed
                tally.tick_frames += sum(len(d.recipients) for d in out)

    def timed(self, tally: Tally | None, conn: int, frame: Frame) -> list[Delivery]:
        engine, now = self.engine, self.now
        start = time.perf_counter_ns()
        out = engine.receive(conn, frame, now)
        elapsed = time.perf_counter_ns() - start
        if tally is not None:
            tally.add(elapsed, out)
        return out

    # Events

    def join(self, tally: Tally | None) -> None:
        conn = self.next_conn
        self.next_conn += 1
        self.engine.connect(conn, Identity(role=Role.CUSTOMER, name="Jordan Example"), self.now)
        out = self.timed(tally, conn, START)
        got = self.assigned(out)
        if got is not None:  # round-robin with a free agent: engaged at once
            self.chat_of[got[0]] = (conn, got[1])
        else:
            conversation_uuid = queue_uuid = None
            for _, frame in out:
                if frame.event_type is EventType.NEW_CONVERSATION:
                    conversation_uuid = frame.conversation_uuid
                elif frame.event_type is EventType.QUEUE_NEW_MEMBER and frame.event_queue_new_member is not None:
                    queue_uuid = frame.event_queue_new_member.conversation_webchat_queue_uuid
            assert conversation_uuid is not None and queue_uuid is not None, "join refused"
            self._list(conn, conversation_uuid, queue_uuid)
        self.advance()

    def abandon(self, tally: Tally | None) -> None:
        conn = self.picks[self.rng.randrange(len(self.picks))]
        conversation_uuid, _ = self.line[conn]
        frame = close_frame(conversation_uuid)
        self.timed(tally, conn, frame)
        self._unlist(conn)
        self.engine.disconnect(conn, self.now)
        self.advance()

    def engage(self, tally: Tally | None, agent: int) -> None:
        conn, (conversation_uuid, queue_uuid) = next(iter(self.line.items()))
        out = self.timed(tally, agent, engage_frame(queue_uuid))
        assert any(f.event_type is EventType.PARTICIPANT_JOIN for _, f in out), "engage refused"
        self._unlist(conn)
        self.advance()
        self.engine.receive(agent, close_frame(conversation_uuid), self.now)  # the chat ends
        self.engine.disconnect(conn, self.now)
        self.advance()
        self.join(None)

    def assign(self, tally: Tally | None, agent: int) -> None:
        customer, conversation_uuid = self.chat_of.pop(agent)
        head = next(iter(self.line))
        out = self.timed(tally, agent, close_frame(conversation_uuid))
        got = self.assigned(out)
        assert got is not None and got[0] == agent, "the freed agent was not assigned a chat"
        assert got[1] == self.line[head][0], "the freed agent did not get the oldest customer"
        self.chat_of[agent] = (head, got[1])
        self._unlist(head)
        self.engine.disconnect(customer, self.now)
        self.advance()
        self.join(None)


# ---------------------------------------------------------------------------
# Running the phases


def run_phase(
    churn: Churn,
    step: Callable[[dict[str, Tally] | None, int], None],
    names: Sequence[str],
    per_round: int,
    rounds: int,
) -> dict[str, Tally]:
    """Warm up, then ``rounds`` rounds of ``per_round`` iterations; flushes are counted in the first tally."""
    for index in range(max(10, per_round // 5)):
        step(None, index)
    tallies = {name: Tally() for name in names}
    churn.tally = tallies[names[0]]
    for _ in range(rounds):
        for index in range(per_round):
            step(tallies, index)
        for tally in tallies.values():
            tally.end_round()
    churn.tally = None
    return tallies


def measure(waiting: int, per_round: int, rounds: int, seed: int) -> dict[str, dict[str, Any]]:
    """Every event type with ``waiting`` customers in line."""
    manual = Churn(waiting, Routing.MANUAL, seed=seed)

    def join_abandon(t: dict[str, Tally] | None, _: int) -> None:
        manual.join(t["join"] if t else None)
        manual.abandon(t["abandon"] if t else None)

    def engage(t: dict[str, Tally] | None, index: int) -> None:
        manual.engage(t["engage"] if t else None, AGENT_BASE + index % AGENTS)

    robin = Churn(waiting, Routing.ROUND_ROBIN, seed=seed)

    def assign(t: dict[str, Tally] | None, index: int) -> None:
        robin.assign(t["assign"] if t else None, AGENT_BASE + index % AGENTS)

    tallies = run_phase(manual, join_abandon, ("join", "abandon"), per_round, rounds)
    tallies |= run_phase(manual, engage, ("engage",), per_round, rounds)
    tallies |= run_phase(robin, assign, ("assign",), per_round, rounds)
    for churn in (manual, robin):
        assert len(churn.line) == waiting, "the line length drifted"
    results = {name: tally.summary() for name, tally in tallies.items()}
    # join and abandon share one phase: its flushes are reported per event of the phase, on both rows
    shared = tallies["join"]
    phase_events = shared.events + tallies["abandon"].events
    for name in ("join", "abandon"):
        row = results[name]
        row["tick_flushes"] = shared.tick_flushes
        row["tick_frames_per_event"] = round(shared.tick_frames / phase_events, 3)
        for key in ("tick_frames_per_flush", "tick_us_per_flush", "tick_us_per_frame"):
            row[key] = results["join"][key]
        row["tick_shared_with"] = "abandon" if name == "join" else "join"
    return results


def report(
    sizes: Sequence[int], results: dict[int, dict[str, dict[str, Any]]], per_round: int, rounds: int
) -> list[Target]:
    base = sizes[0]
    print()
    print(f"engine cost per event (best of {rounds} rounds of {per_round}), frames = deliveries × recipients")
    print("at once: emitted by the event itself; flush: emitted by the coalesced tick() (join+abandon share one phase)")
    header = (
        f"{'event':8} {'waiting':>7} | {'µs/event':>8} {'ratio':>6} | {'deliv':>5} {'frames':>6} {'max':>4} |"
        f" {'flush fr/ev':>11} {'flushes':>7} {'fr/flush':>8} {'µs/flush':>9} {'µs/frame':>8}"
    )
    print_header(header)
    targets = []
    for name in EVENTS:
        for size in sizes:
            row = results[size][name]
            ratio = row["us_per_event"] / results[base][name]["us_per_event"]
            row["ratio_vs_smallest"] = round(ratio, 2)
            per_frame = row["tick_us_per_frame"]
            print(
                f"{name:8} {size:>7,} | {row['us_per_event']:8.2f} {ratio:5.2f}x |"
                f" {row['deliveries_per_event']:5.2f} {row['frames_per_event']:6.2f} {row['max_frames_per_event']:4d} |"
                f" {row['tick_frames_per_event']:11.2f} {row['tick_flushes']:7d} {row['tick_frames_per_flush']:8.0f}"
                f" {row['tick_us_per_flush']:9.0f} {per_frame if per_frame is not None else 0:8.2f}"
            )
        largest = sizes[-1]
        ratio = results[largest][name]["ratio_vs_smallest"]
        targets.append(
            Target(
                f"{name} cost ratio {largest:,}-vs-{base:,} waiting <= {TARGET_RATIO:g}",
                judge(ratio, TARGET_RATIO, higher_is_better=False),
                f"({ratio:.2f}x)",
            )
        )
    # Coalescing: a flush runs at most once per interval per queue, never per event.
    simulated = max(
        results[size][name]["events"] * (2 if name in ("join", "abandon") else 3) * STEP
        for size in sizes
        for name in EVENTS
    )
    worst = max(results[size][name]["tick_flushes"] for size in sizes for name in EVENTS)
    per_event = worst / min(results[size][name]["events"] for size in sizes for name in EVENTS)
    targets.append(
        Target(
            "flushes coalesced (not per event)",
            judge(per_event, 0.01, higher_is_better=False, strict=True),
            f"(at most {worst} flushes in ~{simulated:.0f} simulated s; {per_event:.4f} per event)",
        )
    )
    print()
    print_targets(targets)
    return targets


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--waiting", type=int, nargs="+", help="queue lengths (default 100 1000 10000)")
    parser.add_argument("--events", type=int, help="events per round")
    parser.add_argument("--rounds", type=int, help="rounds per cell; the best round's mean is reported")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes = sorted(args.waiting or [100, 1_000, 10_000])
    per_round = args.events or (300 if args.quick else 2_000)
    rounds = args.rounds or (3 if args.quick else 7)

    results: dict[int, dict[str, dict[str, Any]]] = {}
    for size in sizes:
        started = time.perf_counter()
        results[size] = measure(size, per_round, rounds, args.seed)
        cells = ", ".join(f"{name} {results[size][name]['us_per_event']:.1f}" for name in EVENTS)
        print(f"  {size:>6,} waiting: {cells} µs/event  ({time.perf_counter() - started:.1f} s)", flush=True)
    targets = report(sizes, results, per_round, rounds)

    document = {
        **report_head(
            "bench_churn",
            "µs of Engine.receive per event; frames = deliveries × recipients",
            python=True,
            quick=args.quick,
        ),
        "settings": {"waiting": sizes, "events_per_round": per_round, "rounds": rounds, "agents": AGENTS},
        **target_keys(targets),
        "results": {str(size): rows for size, rows in results.items()},
    }
    save_results(args.json, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
