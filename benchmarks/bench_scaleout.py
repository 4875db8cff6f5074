"""Generator scale-out: Locust with ``--processes 2`` vs 1, same users, same echo server.

    python benchmarks/bench_scaleout.py [--quick] [--users 200] [--repeat 3] [--json PATH]

Locust runs headless (``python -m locust -f benchmarks/locust_echo.py``) in
its own process tree against the echo server of bench_generator.py (asyncio,
uvloop if available, its own process, counting what it echoes), with every
user spawned at once. Each ``EchoUser`` does chat-message echo round trips
over :class:`simulator.load.transport.Connection` back to back and fires one
Locust request per round trip.

Two figures per run: Locust's own ``Requests/s`` from its CSV (the whole run,
ramp-up included), and the echo server's count over a steady window in which
every user is connected (round trips per wall second), with the CPU-seconds
the generator's processes (master and workers) and the server used in that
window, sampled with psutil. Nothing is pinned: on a machine with two CPUs the
server competes with the workers, which caps the ratio. The ratio is 2
processes vs 1, median of the paired runs. Results go to
benchmarks/results/bench_scaleout.json.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import (
    HERE,
    RESULTS_DIR,
    ROOT,
    EchoServer,
    Target,
    Verdict,
    child_env,
    paired_ratios,
    print_header,
    print_targets,
    report_head,
    save_results,
    target_keys,
    tree_cpu,
)

RESULTS = RESULTS_DIR / "bench_scaleout.json"
LOCUSTFILE = HERE / "locust_echo.py"
PROCESSES = (1, 2)

# Bounds
ALL_CONNECTED_TIMEOUT = 60.0
LOCUST_GRACE = 60.0  # beyond --run-time: start-up, stopping, CSV


def read_aggregated(prefix: str) -> dict[str, float]:
    with open(f"{prefix}_stats.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["Name"] == "Aggregated":
                return {
                    "requests": int(row["Request Count"]),
                    "failures": int(row["Failure Count"]),
                    "requests_per_s": float(row["Requests/s"]),
                    "median_ms": float(row["Median Response Time"]),
                }
    raise RuntimeError(f"no Aggregated row in {prefix}_stats.csv")


def run_locust(
    server: EchoServer, processes: int, users: int, warmup: float, window: float, folder: Path
) -> dict[str, Any]:
    import psutil  # type: ignore[import-untyped, unused-ignore]

    prefix = str(folder / f"p{processes}")
    run_time = math.ceil(warmup + window + 2)  # spawning takes well under a second
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary"]
    command += ["--users", str(users), "--spawn-rate", str(users), "--run-time", f"{run_time}s"]
    command += ["--host", f"ws://127.0.0.1:{server.port}/", "--csv", prefix, "--stop-timeout", "3"]
    command += ["--processes", str(processes), "--loglevel", "WARNING"]
    env = child_env(proxies=False)
    log_path = folder / f"locust-p{processes}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        try:
            locust = psutil.Process(proc.pid)
            server_process = psutil.Process(server.proc.pid)
            connections = server.wait_connected(users, proc, ALL_CONNECTED_TIMEOUT)
            if connections < users:
                raise RuntimeError(f"locust connected {connections} of {users} users; see {log_path}")
            time.sleep(warmup)
            _, echoes0 = server.stats()
            cpu0, server0, wall0 = tree_cpu(locust), tree_cpu(server_process), time.perf_counter()
            time.sleep(window)
            connected, echoes1 = server.stats()
            cpu, server_cpu = tree_cpu(locust) - cpu0, tree_cpu(server_process) - server0
            wall = time.perf_counter() - wall0
            proc.wait(timeout=run_time + LOCUST_GRACE)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    aggregated = read_aggregated(prefix)
    done = echoes1 - echoes0
    return {
        "processes": processes,
        "users": users,
        "locust_exit_code": proc.returncode,
        **{f"locust_{key}": value for key, value in aggregated.items()},
        "window_round_trips": done,
        "window_per_wall_s": round(done / wall, 1),
        "generator_cpu_s": round(cpu, 3),
        "generator_cores": round(cpu / wall, 2),
        "generator_per_cpu_s": round(done / cpu, 1) if cpu > 0 else None,
        "server_cores": round(server_cpu / wall, 2),
        "connected_at_end": connected,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short run per process count")
    parser.add_argument("--users", type=int, help="Locust users (default 200; --quick: 100)")
    parser.add_argument("--warmup", type=float, help="seconds between all connected and the window")
    parser.add_argument("--window", type=float, help="measured seconds per run")
    parser.add_argument("--repeat", type=int, help="runs per process count; the median is reported")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    users = args.users or (100 if args.quick else 200)
    warmup = args.warmup or (0.5 if args.quick else 1.0)
    window = args.window or (1.5 if args.quick else 6.0)
    repeat = args.repeat or (1 if args.quick else 3)

    runs: list[dict[str, Any]] = []
    server = EchoServer(HERE / "bench_generator.py")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as folder:
            for number in range(repeat):
                for processes in PROCESSES:
                    run = run_locust(server, processes, users, warmup, window, Path(folder))
                    run["repeat"] = number
                    runs.append(run)
                    print(
                        f"  --processes {processes} #{number + 1}: Locust {run['locust_requests_per_s']:>8,.0f} req/s"
                        f" ({run['locust_failures']} failed); window {run['window_per_wall_s']:>8,.0f} round trips/s,"
                        f" generator {run['generator_cores']:.2f} cores, server {run['server_cores']:.2f} cores",
                        flush=True,
                    )
    finally:
        server.stop()

    def median(processes: int, key: str) -> float:
        return float(statistics.median(r[key] for r in runs if r["processes"] == processes))

    print()
    print(f"Locust --processes 2 vs 1, {users} users, echo round trips (median of {repeat})")
    header = (
        f"{'processes':>9} | {'Locust req/s':>12} | {'window rt/s':>11} | {'gen. cores':>10} | {'rt/CPU-s':>9}"
        f" | {'server cores':>12}"
    )
    print_header(header)
    for processes in PROCESSES:
        print(
            f"{processes:>9} | {median(processes, 'locust_requests_per_s'):>12,.0f} |"
            f" {median(processes, 'window_per_wall_s'):>11,.0f} | {median(processes, 'generator_cores'):>10.2f} |"
            f" {median(processes, 'generator_per_cpu_s'):>9,.0f} | {median(processes, 'server_cores'):>12.2f}"
        )
    csv_ratio, window_ratio = (
        paired_ratios(runs, key, field="processes", variant=2, baseline=1).median(2)
        for key in ("locust_requests_per_s", "window_per_wall_s")
    )
    print(f"ratio 2-vs-1: Locust req/s {csv_ratio or 0:.2f}x, window round trips/s {window_ratio or 0:.2f}x")
    cpus = os.cpu_count() or 1
    targets = [
        Target(
            f"scale-out: 2 processes give {window_ratio or 0:.2f}x the round trips/s of 1"
            f" on {cpus} CPUs shared with the server",
            Verdict.REPORT,
        )
    ]
    print_targets(targets)

    document = {
        **report_head(
            "bench_scaleout",
            "echo round trips per second of the Locust generator (wall)",
            python=True,
            cpus=cpus,
            quick=args.quick,
        ),
        "settings": {"users": users, "warmup_s": warmup, "window_s": window, "repeat": repeat},
        **target_keys(targets),
        "ratio_locust_requests_per_s": csv_ratio,
        "ratio_window_round_trips_per_s": window_ratio,
        "runs": runs,
    }
    save_results(args.json, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
