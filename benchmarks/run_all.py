"""Run every benchmark, each in its own process, and summarize their results.

    python benchmarks/run_all.py [--quick] [--only NAME ...] [--timeout SECONDS]

Runs each ``benchmarks/bench_*.py`` in turn (sorted by name; ``--quick`` is
passed through), bounded in time, then reads the JSON each one writes to
benchmarks/results/NAME.json (only if it was written during that run),
collects them into benchmarks/results/summary.json and prints one line per
benchmark with its exit status, duration and target verdicts (the typed
``verdicts`` of its JSON, see ``_common.Target``).
Benchmarks run one after another: they measure CPU time, and running them
side by side would skew every figure. ``--quick`` is the CI smoke run (about a
minute); the exit status is 1 if a benchmark failed to run, not if a target
was missed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import HERE, RESULTS_DIR, ROOT, Target, Verdict, child_env, machine, save_results, utc_now

SUMMARY = RESULTS_DIR / "summary.json"

# Bounds (seconds per benchmark)
QUICK_TIMEOUT = 120.0
FULL_TIMEOUT = 3600.0


def targets_of(document: dict[str, Any] | None) -> list[Target]:
    """The typed target verdicts of a results document (none if it has none, or there is none)."""
    if document is None:
        return []
    return [Target.from_json(found) for found in document.get("verdicts", [])]


def run_one(path: Path, *, quick: bool, timeout: float) -> dict[str, Any]:
    name = path.stem
    result_file = RESULTS_DIR / f"{name}.json"
    command = [sys.executable, str(path), *(["--quick"] if quick else [])]
    env = child_env()
    started_at = time.time()
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
        code: int | None = done.returncode
        stderr = done.stderr
    except subprocess.TimeoutExpired:  # run() kills the child
        code = None
        stderr = f"timed out after {timeout:g} s"
    seconds = time.perf_counter() - start
    document: dict[str, Any] | None = None
    if result_file.exists() and result_file.stat().st_mtime >= started_at - 1:
        try:
            document = json.loads(result_file.read_text())
        except ValueError as exc:
            stderr += f"\nunreadable {result_file.name}: {exc}"
    targets = targets_of(document)
    return {
        "benchmark": name,
        "command": " ".join(command[1:]),
        "exit_code": code,
        "ok": code == 0,
        "seconds": round(seconds, 1),
        "targets": [target.line() for target in targets],
        "missed": sum(target.verdict is Verdict.MISSED for target in targets),
        "result_file": str(result_file.relative_to(ROOT)) if document is not None else None,
        "result": document,
        "stderr_tail": stderr[-2000:] if code != 0 else "",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark (CI smoke run)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these (e.g. bench_churn)")
    parser.add_argument("--timeout", type=float, help="seconds per benchmark (default 120 with --quick, else 3600)")
    parser.add_argument("--json", type=Path, default=SUMMARY)
    args = parser.parse_args(argv)
    timeout = args.timeout or (QUICK_TIMEOUT if args.quick else FULL_TIMEOUT)
    paths = sorted(HERE.glob("bench_*.py"))
    if args.only:
        wanted = {name.removesuffix(".py") for name in args.only}
        paths = [p for p in paths if p.stem in wanted]
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)

    runs = []
    start = time.perf_counter()
    for path in paths:
        print(f"{path.stem} ...", end=" ", flush=True)
        run = run_one(path, quick=args.quick, timeout=timeout)
        runs.append(run)
        status = "ok" if run["ok"] else ("TIMEOUT" if run["exit_code"] is None else f"FAILED ({run['exit_code']})")
        print(f"{status} in {run['seconds']:.1f} s", flush=True)
        if not run["ok"]:
            print("    " + run["stderr_tail"].strip().replace("\n", "\n    ")[-1500:], flush=True)
    total = time.perf_counter() - start

    print()
    print(f"{'benchmark':18} {'status':>8} {'seconds':>8}  targets")
    print("-" * 100)
    for run in runs:
        status = "ok" if run["ok"] else "FAILED"
        lines = [line.removeprefix("target: ") for line in run["targets"]] or ["(no target)"]
        print(f"{run['benchmark']:18} {status:>8} {run['seconds']:>8.1f}  {lines[0]}")
        for line in lines[1:]:
            print(f"{'':37}{line}")
    failed = [r["benchmark"] for r in runs if not r["ok"]]
    missed = sum(r["missed"] for r in runs)
    print(f"\n{len(runs)} benchmarks in {total:.0f} s; {len(failed)} failed to run; {missed} target(s) missed")

    summary = {
        "quick": args.quick,
        "when": utc_now(),
        "machine": machine(python=True),
        "seconds": round(total, 1),
        "failed": failed,
        "targets_missed": missed,
        "benchmarks": runs,
    }
    save_results(args.json, summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
