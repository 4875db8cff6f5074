"""Restart time with storage: ``serve --db`` restoring 10,000 stored conversations.

    python benchmarks/bench_restart.py [--quick] [--conversations 10000] [--messages 6] [--repeat 3] [--json PATH]

A database is filled the way the server fills it: an
:class:`simulator.mock.engine.Engine` (50 agents, 5 chats each, round-robin)
with its journal written by :class:`simulator.mock.store.Rows` into a
:class:`simulator.mock.store.Database` (one transaction per 100
conversations). Each conversation is a customer's question and
``--messages`` more messages, customer and agent in turn; all but the last
10 % are then closed (their customers gone), and of the open ones 250 are
chatting and the rest waiting in the queue. Then, ``--repeat`` times:

* **restore** — in this process: open and migrate the file, read it, rebuild
  a new engine (:func:`simulator.mock.persist.open_store`: the open
  conversations, queues and agents, before the server listens), then the
  closed conversations (as the server restores them once serving);
* **restart** — a real ``webchat-sim serve --db FILE`` process, from its start
  to its first ``/healthz`` answer (and until its closed conversations are
  back), against the same command without ``--db`` (Python's start-up and
  imports): the difference is what storage adds.

Target: the restart with 10,000 stored conversations answers within 5 s
(``--quick``: 1,000 conversations, one run; reported, the target only applies
at 10,000). Results go to benchmarks/results/bench_restart.json.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from _common import RESULTS_DIR, Target, Verdict, judge, print_targets, report_head, save_results, target_keys

from simulator.load.mockproc import MockProcess
from simulator.mock.engine import Engine, EngineConfig, Identity, Role
from simulator.mock.persist import CLOSED_CHUNK, StoreOptions, open_store
from simulator.mock.store import Database, Rows
from simulator.protocol import decode

RESULTS = RESULTS_DIR / "bench_restart.json"
TARGET_SECONDS = 5.0
TARGET_AT = 10_000
AGENTS = 50
MAX_CHATS = 5
T0 = 1_795_615_525.0


def _message(conv: str, body: str) -> Any:
    return decode(orjson.dumps({"type": "message", "conversation_uuid": conv, "message": {"body": body}}))


def populate(path: Path, conversations: int, messages: int) -> dict[str, Any]:
    """Fill ``path`` as a server with storage would; what it holds."""
    config = EngineConfig(max_chats_per_agent=MAX_CHATS, closed_conversations_kept=100, reconnect_grace=0.0)
    engine = Engine(config, rng=random.Random(7))
    engine.journal = []
    rows = Rows(engine._queues, engine._agents_by_name, engine._customers_by_uuid)
    db = Database(path)
    now = T0
    for k in range(AGENTS):
        engine.connect(k + 1, Identity(role=Role.AGENT, name=f"Agent {k}"), now)
    start = decode(
        orjson.dumps(
            {
                "type": "event",
                "event_type": "webchat start conversation",
                "event_engage_customer": {"conversation_participant_name": "Customer", "question": "Where is it?"},
            }
        )
    )
    keep_open = conversations // 10
    started = time.perf_counter()
    for i in range(conversations):
        conn = 10_000 + i
        now += 0.01
        engine.connect(conn, Identity(role=Role.CUSTOMER, name=f"Customer {i}"), now)
        engine.receive(conn, start, now)
        conv = next(iter(engine._conns[conn].conversations.values()))
        agent = next((m.client for m in conv.members.values() if m.client.role is Role.AGENT), None)
        if agent is not None and agent.conn is not None:
            for n in range(messages):
                sender = conn if n % 2 == 0 else agent.conn
                text = f"message {n} of a chat about an order, a parcel, a date"
                engine.receive(sender, _message(conv.uuid, text), now)
        if i < conversations - keep_open:
            close = {"type": "event", "event_type": "conversation closed", "conversation_uuid": conv.uuid}
            engine.receive(conn, decode(orjson.dumps(close)), now)
            engine.disconnect(conn, now)
        if i % 100 == 99 or i == conversations - 1:
            records, engine.journal = engine.journal, []
            db.write(rows.batch(records))
            engine.take_closes()
    info = db.info()
    db.close()
    info["fill_seconds"] = round(time.perf_counter() - started, 2)
    return info


def restore_once(path: Path) -> dict[str, Any]:
    """Open the store and restore a new engine (what happens before the server
    listens), then the closed conversations as the server does once it serves."""
    engine = Engine(EngineConfig(max_chats_per_agent=MAX_CHATS), rng=random.Random(8))
    started = time.perf_counter()
    store = open_store(StoreOptions(path=str(path)), engine)
    seconds = time.perf_counter() - started
    restored = dict(store.restored)
    gc.disable()
    closed = 0
    pending = store.closed_pending
    for i in range(0, len(pending), CLOSED_CHUNK):
        closed += engine.restore_closed(store.db.load_closed(pending[i : i + CLOSED_CHUNK]))
    gc.enable()
    total = time.perf_counter() - started
    store.db.close()
    return {"seconds": round(seconds, 3), "with_closed_seconds": round(total, 3), "closed": closed, **restored}


def restart_once(args: list[str]) -> tuple[float, float]:
    """Seconds from the start of ``serve`` to its first /healthz answer, and to
    the end of the restore of its closed conversations."""
    started = time.perf_counter()
    mock = MockProcess(["--agents", "0", *args], startup_timeout=120)
    seconds = time.perf_counter() - started
    try:
        deadline = time.monotonic() + 120
        while (mock.wait_healthy(30).get("store") or {}).get("restored", {}).get("closed_pending"):
            if time.monotonic() > deadline:
                raise RuntimeError("the closed conversations were not restored within 120 s")
            time.sleep(0.02)  # another process: polled
        done = time.perf_counter() - started
    finally:
        mock.stop()
    return round(seconds, 3), round(done, 3)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 conversations, one run (CI smoke)")
    parser.add_argument("--conversations", type=int, help=f"stored conversations (default {TARGET_AT:,})")
    parser.add_argument("--messages", type=int, default=6, help="messages per conversation besides the question")
    parser.add_argument("--repeat", type=int, help="runs of each measure (default 3; --quick: 1)")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    count = args.conversations or (1_000 if args.quick else TARGET_AT)
    repeat = args.repeat or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as scratch:
        path = Path(scratch) / "restart.db"
        filled = populate(path, count, args.messages)
        counts = filled["counts"]
        print(
            f"  filled {path.name}: {counts['conversations']:,} conversations, {counts['messages']:,} messages, "
            f"{counts['participants']:,} participants, {filled['file_bytes'] + filled['wal_bytes']:,} bytes "
            f"({filled['fill_seconds']} s)",
            flush=True,
        )
        restores = [restore_once(path) for _ in range(repeat)]
        for r in restores:
            print(f"  restore in process: {r['seconds']:.3f} s before serving ({r['open']:,} open conversations, "
                  f"{r['messages']:,} messages), {r['with_closed_seconds']:.3f} s with the {r['closed']:,} "
                  "closed ones", flush=True)  # fmt: skip
        runs = [restart_once(["--db", str(path)]) for _ in range(repeat)]
        baselines = [restart_once([])[0] for _ in range(repeat)]
    restarts = [healthy for healthy, _ in runs]
    restart = statistics.median(restarts)
    complete = statistics.median(done for _, done in runs)
    baseline = statistics.median(baselines)
    restore = statistics.median(r["seconds"] for r in restores)
    print(f"  serve --db: start to healthy {restart:.2f} s (runs {', '.join(map(str, restarts))}), closed "
          f"conversations restored by {complete:.2f} s; without --db healthy in {baseline:.2f} s: "
          f"storage adds {restart - baseline:.2f} s")  # fmt: skip
    if count >= TARGET_AT:
        verdict = judge(restart, TARGET_SECONDS, higher_is_better=False)
    else:
        verdict = Verdict.REPORT
    targets = [
        Target(
            f"serve --db with {TARGET_AT:,} stored conversations healthy within {TARGET_SECONDS:g} s"
            if verdict is not Verdict.REPORT
            else f"serve --db with {count:,} stored conversations: healthy in {restart:.2f} s",
            verdict,
            f"({restart:.2f} s, of which restore {restore:.2f} s; {baseline:.2f} s without --db; "
            f"closed conversations back by {complete:.2f} s)",
        )
    ]
    print_targets(targets)
    document = {
        **report_head("bench_restart", "seconds", python=True, quick=args.quick),
        "settings": {"conversations": count, "messages": args.messages, "repeat": repeat, "agents": AGENTS},
        **target_keys(targets),
        "database": filled,
        "restore_runs": restores,
        "restore_seconds": restore,
        "restart_runs_s": restarts,
        "restart_complete_runs_s": [done for _, done in runs],
        "restart_complete_seconds": complete,
        "baseline_runs_s": baselines,
        "restart_seconds": restart,
        "baseline_seconds": baseline,
    }
    save_results(args.json, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
