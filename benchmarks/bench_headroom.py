"""Generator headroom: how many human-paced chat customers one Locust process drives.

    python benchmarks/bench_headroom.py [--quick] [--users 1000 2500 4000 5000 7500] [--repeat 1] [--json PATH]

One step per user count, each against a fresh mock server (``webchat-sim
serve --pace human`` with enough autopilot agents, in its own process: asyncio
and gevent never share one; with ``--mocks N`` several, the users spread over
them), on 127.0.0.1. The generator is one gevent process running
``CustomerUser`` through Locust's own machinery (an ``Environment`` with a
local runner, as in bench_generator.py), the ``happy_path`` scenario at pace
``human`` (seconds of typing and thinking), spawned at ``--spawn-rate``.
After the spawn and a warm-up it measures a steady window:

* CPU: the generator process's user + system seconds over the window's wall
  seconds (100% = one core);
* loop lag: its own :class:`~simulator.load.looplag.LoopLagMonitor` (a
  greenlet sleeping 50 ms, the overshoot recorded), p50 / p99 / max;
* what it drove: frames sent and received per second, chats started,
  Locust requests and failures (a mock that cannot keep up shows as
  failures and fewer frames per customer: the figures then flatter the
  generator, and the table says so).

* the garbage collector in the window, per generation (collections, wall and
  CPU milliseconds, objects freed), what it still tracks at the end, and a
  leak check: ``gc_frozen_garbage``, what a full collection of everything,
  frozen objects included, finds unreachable after the window;
* ``wait``: how long the generator's main thread was runnable but waiting for
  its CPU (``/proc/PID/schedstat``): the machine's other work, which no
  generator can help.

Diagnostics (environment variables of the generator process): ``HEADROOM_GC``
``off`` or three thresholds ``a,b,c``, applied after the spawn;
``HEADROOM_STALLS=FILE``: :mod:`_stalls` samples the main thread's stack while
the loop is late (biased toward calls that release the GIL);
``HEADROOM_GCPROBE=1``: what the young generations hold at a middle collection.

A step holds when CPU < 80% and the generator's own lag p99 < 10 ms: its lag
p99 beyond the floor's, an idle gevent process on the same CPU measured in
the same window (on a shared machine the floor alone can exceed 10 ms); the
headroom is the largest step that held ("strict": the lag p99 itself < 10
ms). Target: >= 5,000 customers per process. Generator and mock
are pinned to different CPUs when there are two. Results go to
benchmarks/results/bench_headroom.json. ``--quick`` (the CI smoke run): 200
users, a short window; its figure is not the headroom.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import (
    RESULTS_DIR,
    Target,
    Verdict,
    cpu_seconds,
    judge,
    pin,
    print_header,
    print_targets,
    process_cpu,
    report_head,
    run_json,
    save_results,
    target_keys,
)
from _common import versions as package_versions

RESULTS = RESULTS_DIR / "bench_headroom.json"

TARGET_USERS = 5000
CPU_LIMIT = 80.0  # percent of one core
LAG_LIMIT_MS = 10.0
CHAT_TIMEOUT = 120.0  # human pace: an agent may take a while
MAX_USERS = 20_000  # bounds: file descriptors, memory
SPAWN_GRACE = 60.0  # beyond users / spawn rate: how long the spawn may take
CLIENT_GRACE = 120.0


# ---------------------------------------------------------------------------
# The generator (gevent, monkey-patched; its own process)


def tracked_objects(top: int = 12) -> dict[str, int]:
    """How many objects the collector tracks (what a full collection scans, frozen ones aside), by type."""
    import gc
    from collections import Counter

    objects = gc.get_objects()
    counts = Counter(type(o).__qualname__ for o in objects)
    frozen = gc.get_freeze_count()
    return {"total": len(objects), "frozen": frozen, **dict(counts.most_common(top))}


def current_rss_mb() -> float:
    """This process's resident memory now, in MB (Linux: /proc/self/statm; else the peak)."""
    try:
        with open("/proc/self/statm") as statm:
            return round(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def gc_pauses() -> list[tuple[int, float, int, float]]:
    """Every garbage collection of this process from now on: ``(generation, wall milliseconds, objects
    collected, CPU milliseconds)`` (the CPU time leaves out what the machine's other work took meanwhile)."""
    pauses: list[tuple[int, float, int, float]] = []
    began = [0.0, 0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            began[0], began[1] = time.perf_counter(), time.thread_time()
        elif len(pauses) < 100_000:
            wall, cpu = (time.perf_counter() - began[0]) * 1000.0, (time.thread_time() - began[1]) * 1000.0
            pauses.append((int(info["generation"]), wall, int(info.get("collected", 0)), cpu))

    gc.callbacks.append(callback)
    return pauses


def gc_summary(pauses: list[tuple[int, float, int, float]]) -> dict[str, Any]:
    """One generation's collections in the window: how many, their wall milliseconds (total, p50, p99, max),
    their CPU milliseconds (total, max) and the objects they freed."""
    times = sorted(p[1] for p in pauses)
    if not times:
        return {"count": 0}

    def at(q: float) -> float:
        return round(times[min(len(times) - 1, int(q * len(times)))], 2)

    return {
        "count": len(times),
        "ms_total": round(sum(times), 1),
        "ms_p50": at(0.5),
        "ms_p99": at(0.99),
        "ms_max": round(times[-1], 2),
        "cpu_ms_total": round(sum(p[3] for p in pauses), 1),
        "cpu_ms_max": round(max(p[3] for p in pauses), 2),
        "collected": sum(p[2] for p in pauses),
    }


def schedstat() -> tuple[float, float]:
    """This process's main thread: seconds on a CPU, seconds runnable but waiting for one (Linux
    /proc/PID/schedstat; zeros elsewhere). The wait is the machine's other work taking the CPU."""
    try:
        with open(f"/proc/{os.getpid()}/schedstat") as stat:
            oncpu, waiting = stat.read().split()[:2]
        return int(oncpu) / 1e9, int(waiting) / 1e9
    except (OSError, ValueError):
        return 0.0, 0.0


def run_generator(
    hosts: list[str], users: int, spawn_rate: float, warmup: float, window: float, seed: int
) -> dict[str, Any]:
    from gevent import monkey

    monkey.patch_all()
    pinned = pin("client")

    import gevent
    from bench_generator import count_frames
    from locust import events
    from locust.env import Environment

    from simulator.load.locustfile import CustomerUser
    from simulator.load.looplag import LoopLagMonitor

    class SpreadCustomer(CustomerUser):  # the users spread over the mocks, in turn
        abstract = True
        _next = 0

        def __init__(self, environment: Any) -> None:
            super().__init__(environment)
            self.host = hosts[SpreadCustomer._next % len(hosts)]
            SpreadCustomer._next += 1

    class HeadroomCustomer(SpreadCustomer):
        pass

    counts = count_frames()
    pauses = gc_pauses()
    options = argparse.Namespace(
        scenario="happy_path",
        pace="human",
        chars_per_second=0.0,
        seed=seed,
        queues="support",
        chat_timeout=CHAT_TIMEOUT,
        manual_routing=False,
        agent_users=0,
        agent_max_chats=3,
    )
    environment = Environment(user_classes=[HeadroomCustomer], events=events, host=hosts[0], parsed_options=options)
    runner = environment.create_local_runner()
    stats = environment.stats
    monitor = LoopLagMonitor()
    monitor.start()
    runner.start(users, spawn_rate=spawn_rate)
    started = time.perf_counter()
    spawn_deadline = started + users / spawn_rate + SPAWN_GRACE
    while runner.user_count < users and time.perf_counter() < spawn_deadline:
        gevent.sleep(0.5)
    spawned_in = time.perf_counter() - started
    experiment = os.environ.get("HEADROOM_GC")  # diagnostics only: "off", or three thresholds "a,b,c"
    if experiment == "off":
        gc.disable()
    elif experiment:
        gc.set_threshold(*(int(n) for n in experiment.split(",")))
    gevent.sleep(warmup)
    sampler = None
    if os.environ.get("HEADROOM_STALLS"):  # diagnostics only: what the main thread runs while the loop is late
        from _stalls import StallSampler

        sampler = StallSampler()
        sampler.start()
    probe: list[dict[str, Any]] = []
    if os.environ.get("HEADROOM_GCPROBE"):  # diagnostics only: what the young generations hold at a middle collection
        from collections import Counter

        def look(phase: str, info: dict[str, Any]) -> None:
            if phase != "start" or info["generation"] != 1 or len(probe) >= 5:
                return
            young = gc.get_objects(0) + gc.get_objects(1)
            sizes = sorted(((len(gc.get_referents(o)), type(o).__qualname__) for o in young), reverse=True)
            probe.append(
                {
                    "objects": len(young),
                    "referents": sum(n for n, _ in sizes),
                    "types": Counter(type(o).__qualname__ for o in young).most_common(15),
                    "largest": sizes[:10],
                }
            )

        gc.callbacks.insert(0, look)
    monitor.take_unreported()  # the spawn and warm-up are not the window
    pauses.clear()
    requests0, failures0 = stats.total.num_requests, stats.total.num_failures
    chats0 = stats.get("start chat", "WS").num_requests
    frames0 = list(counts)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_start = current_rss_mb()
    # the floor, in the same window: an idle gevent process on the same CPU (the machine's other work alone)
    floor = subprocess.Popen(
        [sys.executable, __file__, "--idle", "--window", str(window)], stdout=subprocess.PIPE, text=True
    )
    cpu0, wall0, sched0 = cpu_seconds(), time.perf_counter(), schedstat()
    gevent.sleep(window)
    cpu, wall, sched = cpu_seconds() - cpu0, time.perf_counter() - wall0, schedstat()
    lag = monitor.take_unreported().summary()
    if sampler is not None:
        sampler.stop()
        Path(os.environ["HEADROOM_STALLS"]).write_text(json.dumps(sampler.report(), indent=1))
    try:
        idle = json.loads(floor.communicate(timeout=60)[0].strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        floor.kill()
        idle = {"lag_p50_ms": None, "lag_p99_ms": None, "lag_max_ms": None}
    gc_window = list(pauses)
    sent, received = counts[0] - frames0[0], counts[1] - frames0[1]
    requests, failures = stats.total.num_requests - requests0, stats.total.num_failures - failures0
    chats = stats.get("start chat", "WS").num_requests - chats0
    errors = [f"{e.name}: {e.error} ({e.occurrences})" for e in list(stats.errors.values())[:5]]
    connected = runner.user_count
    census = tracked_objects()
    rss_end = current_rss_mb()
    # the leak check: what a full collection of everything, the frozen objects included, finds unreachable
    # (reference cycles that died after they were frozen, or are still waiting for a full collection)
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    garbage_began = time.perf_counter()
    garbage = gc.collect()
    garbage_ms = (time.perf_counter() - garbage_began) * 1000.0
    monitor.stop()
    runner.quit()
    cpu_percent = 100.0 * cpu / wall if wall > 0 else None
    return {
        "users": users,
        "spawned": connected,
        "spawned_in_s": round(spawned_in, 1),
        "cpu_percent": round(cpu_percent, 1) if cpu_percent is not None else None,
        "cpu_s": round(cpu, 3),
        "runqueue_wait_s": round(sched[1] - sched0[1], 3),
        "wall_s": round(wall, 3),
        "lag_p50_ms": lag["p50_ms"],
        "lag_p99_ms": lag["p99_ms"],
        "lag_max_ms": lag["max_ms"],
        "lag_samples": lag["samples"],
        "floor_lag_p99_ms": idle["lag_p99_ms"],
        "floor_lag_max_ms": idle["lag_max_ms"],
        "frames_sent_per_s": round(sent / wall, 1),
        "frames_received_per_s": round(received / wall, 1),
        "frames_per_user_per_min": round((sent + received) / wall * 60 / max(users, 1), 2),
        "cpu_us_per_frame": round(cpu / (sent + received) * 1e6, 1) if sent + received else None,
        "gc_collections": len(gc_window),
        "gc_ms_total": round(sum(p[1] for p in gc_window), 1),
        "gc_ms_max": round(max((p[1] for p in gc_window), default=0.0), 1),
        "gc_cpu_ms_total": round(sum(p[3] for p in gc_window), 1),
        "gc_full_collections": sum(1 for p in gc_window if p[0] == 2),
        "gc_by_generation": [gc_summary([p for p in gc_window if p[0] == generation]) for generation in range(3)],
        "gc_ms_max_by_generation": [
            round(max((p[1] for p in gc_window if p[0] == generation), default=0.0), 1) for generation in range(3)
        ],
        "gc_threshold": list(gc.get_threshold()),
        "gc_tracked_objects": census,
        "gc_probe": probe,
        "gc_frozen_at_end": frozen,
        "gc_frozen_garbage": garbage,
        "gc_unfrozen_full_collection_ms": round(garbage_ms, 1),
        "rss_window_start_mb": rss_start,
        "rss_window_end_mb": rss_end,
        "chats_started": chats,
        "locust_requests": requests,
        "locust_failures": failures,
        "errors": errors,
        "max_rss_mb": round(max(rss0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024, 1),
        "pinned": pinned,
    }


def run_idle(window: float) -> dict[str, Any]:
    """The floor: the loop lag of a gevent process doing nothing else, pinned as the generator is (what the
    machine's other work alone costs a loop)."""
    pinned = pin("client")
    import gevent

    from simulator.load.looplag import LoopLagMonitor

    monitor = LoopLagMonitor()
    monitor.start()
    gevent.sleep(window)
    monitor.stop()
    lag = monitor.total.summary()
    return {"lag_p50_ms": lag["p50_ms"], "lag_p99_ms": lag["p99_ms"], "lag_max_ms": lag["max_ms"], "pinned": pinned}


# ---------------------------------------------------------------------------
# Orchestration (no gevent, no asyncio here)


def start_mocks(users: int, count: int, seed: int) -> list[Any]:
    from simulator.load.runner import MAX_CHATS_PER_AGENT, MockProcess

    agents = max(2, -(-users // (MAX_CHATS_PER_AGENT * count)) + 2)
    mocks: list[Any] = []
    try:
        for number in range(count):
            args = ["--agents", str(agents), "--pace", "human", "--seed", str(seed + number)]
            args += ["--rate", "1000", "--burst", "2000"]
            mocks.append(MockProcess(args))
            if hasattr(os, "sched_setaffinity"):
                import psutil  # type: ignore[import-untyped, unused-ignore]

                cpus = sorted(os.sched_getaffinity(0))
                if len(cpus) >= 2:
                    for thread in psutil.Process(mocks[-1].proc.pid).threads():
                        os.sched_setaffinity(thread.id, {cpus[0]})
    except BaseException:
        for mock in mocks:
            mock.stop()
        raise
    return mocks


def own_lag(step: dict[str, Any]) -> float | None:
    """The generator's own lag p99: beyond the floor's in the same window (what the machine's other work costs
    any loop on that CPU); the lag p99 itself if the floor was not measured."""
    lag, floor = step.get("lag_p99_ms"), step.get("floor_lag_p99_ms")
    if lag is None:
        return None
    return max(0.0, float(lag) - float(floor)) if floor is not None else float(lag)


def holds(step: dict[str, Any], *, strict: bool = False) -> bool:
    """CPU < 80% and the own lag p99 (``strict``: the lag p99 itself) < 10 ms."""
    cpu, lag = step.get("cpu_percent"), step.get("lag_p99_ms") if strict else own_lag(step)
    return cpu is not None and lag is not None and cpu < CPU_LIMIT and lag < LAG_LIMIT_MS


def show(step: dict[str, Any]) -> None:
    print(
        f"{step['users']:>7,} | {step['spawned']:>7,} | {step['cpu_percent'] or 0:>5.1f}% | "
        f"{100.0 * step.get('runqueue_wait_s', 0.0) / max(step['wall_s'], 1e-9):>5.0f}% | "
        f"{step['lag_p50_ms'] or 0:>6.1f} | {step['lag_p99_ms'] or 0:>6.1f} | {step['lag_max_ms'] or 0:>7.1f} | "
        f"{step['floor_lag_p99_ms'] or 0:>7.1f} | "
        f"{step['frames_sent_per_s'] + step['frames_received_per_s']:>9,.0f} | {step['cpu_us_per_frame'] or 0:>6.0f} | "
        f"{step['mock_cpu_percent']:>5.0f}% | {step['locust_failures']:>5} | {'yes' if holds(step) else 'no':>5} | "
        f"{'yes' if holds(step, strict=True) else 'no':>6}",
        flush=True,
    )


def orchestrate(
    user_counts: Sequence[int],
    *,
    spawn_rate: float,
    warmup: float,
    window: float,
    repeat: int,
    mocks: int,
    quick: bool,
    path: Path,
) -> None:
    steps: list[dict[str, Any]] = []
    print(f"generator headroom: happy_path at pace human, one Locust process, {mocks} mock process(es)")
    header = (
        f"{'users':>7} | {'spawned':>7} | {'CPU':>6} | {'wait':>6} | {'lag50':>6} | {'lag99':>6} | {'lagmax':>7} | "
        f"{'floor99':>7} | "
        f"{'frames/s':>9} | {'µs/fr':>6} | {'mock':>6} | {'fails':>5} | {'holds':>5} | {'strict':>6}"
    )
    print("wait: of the window, how long the generator was runnable but waited for its CPU (others' work);")
    print("floor99: in the same window, the lag p99 of an idle gevent process on the generator's CPU;")
    print(f"holds: CPU < {CPU_LIMIT:g}% and the own lag p99 (lag99 - floor99) < {LAG_LIMIT_MS:g} ms;", end=" ")
    print("strict: lag99 itself")
    print_header(header)
    for users in user_counts:
        for number in range(repeat):
            servers = start_mocks(users, mocks, seed=number + 1)
            try:
                pids = [m.proc.pid for m in servers]
                mock_cpu0 = sum(process_cpu(pid) for pid in pids)
                began = time.monotonic()
                command = [sys.executable, __file__, "--client", "--hosts", *[m.url for m in servers]]
                command += ["--users", str(users), "--spawn-rate", str(spawn_rate), "--warmup", str(warmup)]
                command += ["--window", str(window), "--seed", str(number)]
                timeout = users / spawn_rate + SPAWN_GRACE + warmup + window + CLIENT_GRACE
                step = run_json(command, timeout=timeout, what=f"generator with {users} users", proxies=False)
                mock_cpu = sum(process_cpu(pid) for pid in pids) - mock_cpu0
                # the mock's CPU over the whole step (spawn included): a saturated mock flatters the generator
                step["mock_cpu_percent"] = round(100.0 * mock_cpu / max(time.monotonic() - began, 1e-9), 1)
            finally:
                for mock in servers:
                    mock.stop()
            step["repeat"] = number
            step["own_lag_p99_ms"] = own_lag(step)
            step["holds"] = holds(step)
            step["holds_strict"] = holds(step, strict=True)
            steps.append(step)
            show(step)
    held = [s["users"] for s in steps if s["holds"]]
    strict = [s["users"] for s in steps if s["holds_strict"]]
    print(f"strict (lag p99 itself < {LAG_LIMIT_MS:g} ms, the machine's lag included): ", end="")
    print(f"held up to {max(strict, default=0):,}")
    failed_below = [s["users"] for s in steps if not s["holds"] and (not held or s["users"] <= max(held))]
    headroom = max(held) if held else None
    print()
    if failed_below:
        print(f"(steps that did not hold at or below the headroom: {failed_below}; repeats disagree)")
    largest = max(user_counts)
    if quick:
        targets = [Target(f"headroom >= {TARGET_USERS:,} customers per process", Verdict.REPORT)]
    elif headroom is None:
        targets = [Target(f"headroom >= {TARGET_USERS:,} customers per process", Verdict.MISSED, "(no step held)")]
    else:
        detail = f"({headroom:,} held" + (f"; the largest step tried was {largest:,})" if headroom == largest else ")")
        targets = [
            Target(
                f"headroom >= {TARGET_USERS:,} customers per process",
                judge(headroom, TARGET_USERS, higher_is_better=True),
                detail,
            )
        ]
    print_targets(targets)
    report = {
        **report_head(
            "bench_headroom",
            "human-paced chat customers one Locust process drives with CPU < 80% and loop lag p99 < 10 ms",
            versions=package_versions(("gevent", "locust", "websockets", "pydantic", "orjson")),
            quick=quick,
        ),
        "settings": {
            "users": list(user_counts),
            "spawn_rate": spawn_rate,
            "warmup_s": warmup,
            "window_s": window,
            "repeat": repeat,
            "mocks": mocks,
            "cpu_limit_percent": CPU_LIMIT,
            "lag_limit_ms": LAG_LIMIT_MS,
        },
        **target_keys(targets),
        "headroom": headroom,
        "headroom_strict": max(strict) if strict else None,
        "steps": steps,
    }
    save_results(path, report)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="200 users, a short window (CI smoke run)")
    parser.add_argument(
        "--users", type=int, nargs="+", help="user counts, one step each (default 1000 2500 4000 5000 7500)"
    )
    parser.add_argument("--spawn-rate", type=float, help="users started per second (default 150; --quick 200)")
    parser.add_argument("--warmup", type=float, help="seconds between the spawn's end and the window (default 15)")
    parser.add_argument("--window", type=float, help="measured seconds per step (default 20)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per step")
    parser.add_argument("--mocks", type=int, default=2, help="mock server processes the users spread over")
    parser.add_argument("--json", type=Path, default=RESULTS)
    # Internal mode
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--idle", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hosts", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    spawn_rate = args.spawn_rate or (200.0 if args.quick else 150.0)
    warmup = args.warmup if args.warmup is not None else (2.0 if args.quick else 15.0)
    window = args.window or (3.0 if args.quick else 20.0)
    if args.idle:
        print(json.dumps(run_idle(window)))
        return
    if args.client:
        users = args.users[0] if args.users else 100
        print(json.dumps(run_generator(args.hosts, users, spawn_rate, warmup, window, args.seed)))
        return
    user_counts = args.users or ([200] if args.quick else [1000, 2500, 4000, 5000, 7500])
    for users in user_counts:
        if not 1 <= users <= MAX_USERS:
            parser.error(f"--users: from 1 to {MAX_USERS:,}, got {users}")
    if not 1 <= args.mocks <= 8 or not 1 <= args.repeat <= 10:
        parser.error("--mocks: 1 to 8; --repeat: 1 to 10")
    orchestrate(
        user_counts,
        spawn_rate=spawn_rate,
        warmup=warmup,
        window=window,
        repeat=args.repeat,
        mocks=args.mocks,
        quick=args.quick,
        path=args.json,
    )


if __name__ == "__main__":
    main()
