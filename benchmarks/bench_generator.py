"""Load-generator efficiency: messages per CPU-second of the generator process, ours next to Artillery.

    python benchmarks/bench_generator.py [--quick] [--users 10 100 1000] [--repeat 3] [--json PATH]

(a) Echo loop. A bare websockets echo server (asyncio, uvloop if available, no
compression) runs in its own process on 127.0.0.1, random port, and counts
what it echoes. Every virtual user sends the same ~600-byte chat ``message``
frame, waits for its echo and repeats:

* ``ours`` — :class:`simulator.load.transport.Connection` in a gevent
  monkey-patched process (as in Locust): encode the frame, ``send``,
  ``wait_for`` the echo by ``client_message_id`` (decoded and validated);
* ``artillery`` — Artillery's built-in ``ws`` engine (npm package
  ``artillery``, installed by this benchmark into benchmarks/.artillery with
  ``PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1``, telemetry disabled): ``send`` with a
  ``match`` on ``$.message.client_message_id``, in a ``loop``; its VUs all
  arrive within the first second or two.

A message is one round trip (one frame sent, its echo received). The figure
is messages per CPU-second of the generator process (user + system, threads
and child processes included) over a steady window in which every virtual
user is connected; connects, start-up and shutdown are excluded. Ours reads
its own ``getrusage`` and counts its round trips; Artillery (a Node process
we cannot instrument) is sampled from outside: its CPU through psutil, the
round trips through the echo server's counter, at the start and end of the
window. Generator and server are pinned to different CPUs when there are two.

(b) Chat scenario. ``CustomerUser`` runs the ``happy_path`` scenario with pace
``none`` through Locust's own machinery (an ``Environment`` with a local
runner: users, tasks and request statistics, in-process, no web UI) against
the mock server (``webchat-sim serve --agents N --pace fast`` in another
process). Its cost per frame (sent + received, connects included) is
compared with the echo loop's cost per frame at the same user count,
measured in the same run: the difference is the chat-scenario bookkeeping
(sessions, pending maps, waiters, predicates, Locust statistics, fake data)
plus the protocol's larger frames.

Targets (issue 12): ours >= 2x Artillery at 1,000 VUs and >= 1.5x at 10
and 100; chat bookkeeping overhead <= 30% over the echo loop. Results go to
benchmarks/results/bench_generator.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import (
    HERE,
    RESULTS_DIR,
    ROOT,
    EchoServer,
    Target,
    Verdict,
    chat_frame,
    child_env,
    cpu_seconds,
    error_note,
    format_ratio,
    judge,
    paired_ratios,
    pin,
    print_header,
    print_targets,
    report_head,
    run_json,
    save_results,
    serve_echo,
    target_keys,
    tree_cpu,
)
from _common import versions as package_versions

RESULTS = RESULTS_DIR / "bench_generator.json"
ARTILLERY_DIR = HERE / ".artillery"
ARTILLERY_VERSION = "2"  # npm range: latest 2.x

# Bounds
CONNECT_TIMEOUT = 30.0
ROUND_TRIP_TIMEOUT = 30.0
CONNECT_CONCURRENCY = 100
ALL_CONNECTED_TIMEOUT = 90.0
CLIENT_GRACE = 120.0  # beyond warm-up + window: start-up, connects, closing
INSTALL_TIMEOUT = 900.0
MAX_ROUND_TRIPS_PER_USER = 10_000_000  # loops are bounded by time first; this bounds them by count too
CAPTURE_LIMIT = 20_000  # frames of the chat scenario kept for the echo of the same frames

TARGET_VS_ARTILLERY = {10: 1.5, 100: 1.5, 1000: 2.0}  # issue 12: >= 2x at 1,000 VUs, >= 1.5x at 10 and 100
TARGET_OVERHEAD = 0.30


def target_vs_artillery(users: int) -> float:
    """The target ratio at ``users`` VUs (2x from 1,000 VUs, else 1.5x)."""
    return TARGET_VS_ARTILLERY.get(users, 2.0 if users >= 1000 else 1.5)


def system_seconds() -> float:
    """The kernel's share of :func:`cpu_seconds` (system calls: sockets, connects)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


# ---------------------------------------------------------------------------
# Our generator (gevent, monkey-patched; its own process)


def count_frames(capture: list[bytes] | None = None) -> list[int]:
    """Count frames sent and received by every :class:`Connection` of this process: ``[sent, received]``;
    keep the received ones in ``capture`` (up to ``CAPTURE_LIMIT``) if given."""
    from simulator.load.transport import Connection

    counts = [0, 0]
    send, deliver = Connection.send, Connection._deliver

    def counting_send(self: Connection, frame: Any) -> None:
        counts[0] += 1
        send(self, frame)

    def counting_deliver(self: Connection, data: bytes, arrived: float) -> None:
        counts[1] += 1
        if capture is not None and len(capture) < CAPTURE_LIMIT:
            capture.append(data)
        deliver(self, data, arrived)

    Connection.send = counting_send  # type: ignore[method-assign]
    Connection._deliver = counting_deliver  # type: ignore[method-assign]
    return counts


def run_echo(port: int, users: int, warmup: float, window: float, mix: Path | None = None) -> dict[str, Any]:
    """Round trips of the chat message frame, or (``mix``) of the frames a chat scenario received, as they were."""
    from gevent import monkey

    monkey.patch_all()
    pinned = pin("client")

    import gevent
    import gevent.pool

    from simulator.load.transport import Connection
    from simulator.protocol import encode

    url = f"ws://127.0.0.1:{port}/"
    counts = count_frames()
    payloads = mix.read_bytes().splitlines() if mix is not None else []
    errors: list[str] = []
    connections: list[Connection | None] = [None] * users

    def open_one(user: int) -> None:
        try:
            connections[user] = Connection.connect(url, timeout=CONNECT_TIMEOUT, close_timeout=5)
        except Exception as exc:
            errors.append(f"connect: {exc!r}")

    gevent.pool.Pool(CONNECT_CONCURRENCY).map(open_one, range(users))
    live = [(user, conn) for user, conn in enumerate(connections) if conn is not None]
    round_trips = [0]
    deadline = time.perf_counter() + warmup + window + 5.0

    def loop(user: int, conn: Connection) -> None:
        frame = chat_frame(user)
        message = frame.message
        assert message is not None
        try:
            for number in range(MAX_ROUND_TRIPS_PER_USER):
                if time.perf_counter() >= deadline:
                    break
                if payloads:  # one round trip at a time: the next frame is the echo
                    conn.send(payloads[(user * 7919 + number) % len(payloads)])
                    conn.wait_for(lambda f: True, ROUND_TRIP_TIMEOUT, description="echo")
                else:
                    cid = f"{user}-{number}"
                    message.client_message_id = cid
                    conn.send(frame)
                    conn.wait_for(
                        lambda f, cid=cid: f.message is not None and f.message.client_message_id == cid,  # type: ignore[misc]
                        ROUND_TRIP_TIMEOUT,
                        description="echo",
                    )
                round_trips[0] += 1
        except Exception as exc:
            errors.append(f"round trip: {exc!r}")

    greenlets = [gevent.spawn(loop, user, conn) for user, conn in live]
    gevent.sleep(warmup)
    cpu0, wall0, done0, frames0 = cpu_seconds(), time.perf_counter(), round_trips[0], sum(counts)
    sys0 = system_seconds()
    gevent.sleep(window)
    cpu, wall, sys_cpu = cpu_seconds() - cpu0, time.perf_counter() - wall0, system_seconds() - sys0
    done, framed = round_trips[0] - done0, sum(counts) - frames0
    gevent.killall(greenlets, block=True, timeout=10)
    gevent.pool.Pool(CONNECT_CONCURRENCY).map(lambda c: c[1].close(timeout=5), live)
    return {
        "variant": "ours" if mix is None else "mix-echo",
        "users": users,
        "connected": len(live),
        "payload_bytes": round(statistics.mean(map(len, payloads)) if payloads else len(encode(chat_frame(0))), 1),
        "messages": done,
        "frames": framed,
        "cpu_s": round(cpu, 4),
        "system_cpu_s": round(sys_cpu, 4),
        "wall_s": round(wall, 4),
        "per_cpu_s": round(done / cpu, 1) if cpu > 0 else None,
        "frames_per_cpu_s": round(framed / cpu, 1) if cpu > 0 else None,
        "per_wall_s": round(done / wall, 1) if wall > 0 else None,
        "errors": errors[:5],
        "error_count": len(errors),
        "pinned": pinned,
    }


def run_chat(url: str, users: int, warmup: float, window: float, seed: int, capture: Path | None) -> dict[str, Any]:
    """The happy path through Locust's machinery; the frames received in the window go to ``capture``."""
    from gevent import monkey

    monkey.patch_all()
    pinned = pin("client")

    import gevent
    from locust import events
    from locust.env import Environment

    from simulator.load.locustfile import CustomerUser

    captured: list[bytes] = []
    counts = count_frames(captured)
    options = argparse.Namespace(
        scenario="happy_path",
        pace="none",
        chars_per_second=0.0,
        seed=seed,
        queues="support",
        chat_timeout=ROUND_TRIP_TIMEOUT,
        manual_routing=False,
        agent_users=0,
        agent_max_chats=3,
    )
    environment = Environment(user_classes=[CustomerUser], events=events, host=url, parsed_options=options)
    runner = environment.create_local_runner()
    stats = environment.stats
    runner.start(users, spawn_rate=max(users, 1) * 4.0)
    gevent.sleep(warmup)
    requests0, failures0 = stats.total.num_requests, stats.total.num_failures
    captured.clear()
    cpu0, wall0, frames0, sys0 = cpu_seconds(), time.perf_counter(), list(counts), system_seconds()
    gevent.sleep(window)
    cpu, wall, sys_cpu = cpu_seconds() - cpu0, time.perf_counter() - wall0, system_seconds() - sys0
    if capture is not None:
        capture.write_bytes(b"\n".join(captured) + b"\n")
    sent, received = counts[0] - frames0[0], counts[1] - frames0[1]
    requests, failures = stats.total.num_requests - requests0, stats.total.num_failures - failures0
    errors = [f"{e.name}: {e.error}" for e in list(stats.errors.values())[:5]]
    error_count = len(stats.errors)  # before quit(): users stopped mid-chat report what they still waited for
    runner.quit()
    frames = sent + received
    return {
        "variant": "chat",
        "users": users,
        "frames_sent": sent,
        "frames_received": received,
        "frames": frames,
        "payload_bytes": round(statistics.mean(map(len, captured)), 1) if captured else None,
        "locust_requests": requests,
        "locust_failures": failures,
        "cpu_s": round(cpu, 4),
        "system_cpu_s": round(sys_cpu, 4),
        "wall_s": round(wall, 4),
        "frames_per_cpu_s": round(frames / cpu, 1) if cpu > 0 else None,
        "per_wall_s": round(frames / 2 / wall, 1) if wall > 0 else None,
        "errors": errors,
        "error_count": error_count,
        "pinned": pinned,
    }


def measure_ours(
    mode: str, target: str, users: int, warmup: float, window: float, *, seed: int = 0, frames: Path | None = None
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--client", mode, "--target", target, "--users", str(users)]
    command += ["--warmup", str(warmup), "--window", str(window), "--seed", str(seed)]
    if frames is not None:
        command += ["--frames", str(frames)]
    timeout = warmup + window + CLIENT_GRACE
    return run_json(command, timeout=timeout, what=f"{mode} client with {users} users", proxies=False)


# ---------------------------------------------------------------------------
# Artillery (Node; its own process, sampled from outside)


def artillery_env() -> dict[str, str]:
    return child_env(
        pythonpath=False,
        proxies=False,
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1",
        ARTILLERY_DISABLE_TELEMETRY="true",
        NO_UPDATE_NOTIFIER="1",
    )


def find_artillery(install: bool) -> tuple[Path | None, str]:
    """The artillery executable in benchmarks/.artillery (installed if ``install``), or why not."""
    binary = ARTILLERY_DIR / "node_modules" / ".bin" / "artillery"
    if binary.exists():
        return binary, "installed"
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None, "node/npm not found: Artillery skipped"
    if not install:
        return None, f"not installed in {ARTILLERY_DIR.relative_to(ROOT)} (run without --quick to install it)"
    ARTILLERY_DIR.mkdir(parents=True, exist_ok=True)
    manifest = ARTILLERY_DIR / "package.json"
    if not manifest.exists():
        manifest.write_text(json.dumps({"name": "bench-artillery", "private": True}) + "\n")
    print(f"installing artillery@{ARTILLERY_VERSION} into {ARTILLERY_DIR.relative_to(ROOT)} ...", flush=True)
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", f"artillery@{ARTILLERY_VERSION}"],
        cwd=ARTILLERY_DIR,
        env=artillery_env(),
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
    )
    if done.returncode != 0 or not binary.exists():
        return None, f"npm install artillery failed (exit {done.returncode}): {done.stderr.strip()[-300:]}"
    return binary, "installed now"


def artillery_version() -> str:
    try:
        manifest = json.loads((ARTILLERY_DIR / "node_modules" / "artillery" / "package.json").read_text())
        return str(manifest["version"])
    except (OSError, ValueError, KeyError):
        return "not installed"


def artillery_script(port: int, users: int, path: Path) -> None:
    """The echo scenario for Artillery's ws engine (JSON is YAML)."""
    from simulator.protocol import encode

    frame = chat_frame(0)
    assert frame.message is not None
    frame.message.client_message_id = "CID"
    payload = encode(frame).decode().replace('"CID"', '"c-{{ $loopCount }}"')
    script = {
        "config": {
            "target": f"ws://127.0.0.1:{port}/",
            "phases": [{"duration": 1 if users <= 100 else 2, "arrivalCount": users}],
            "ws": {"timeout": ROUND_TRIP_TIMEOUT},
        },
        "scenarios": [
            {
                "engine": "ws",
                "flow": [
                    {
                        "loop": [
                            {
                                "send": {
                                    "payload": payload,
                                    "match": {"json": "$.message.client_message_id", "value": "c-{{ $loopCount }}"},
                                }
                            }
                        ],
                        "count": MAX_ROUND_TRIPS_PER_USER,
                    }
                ],
            }
        ],
    }
    path.write_text(json.dumps(script, indent=2) + "\n")


def _pin_generator() -> None:
    pin("client")


def measure_artillery(
    binary: Path, server: EchoServer, users: int, warmup: float, window: float, folder: Path
) -> dict[str, Any]:
    import psutil  # type: ignore[import-untyped, unused-ignore]

    script = folder / f"artillery-{users}.yml"
    artillery_script(server.port, users, script)
    log = (folder / f"artillery-{users}.log").open("w")
    _, echoes_before = server.stats()
    proc = subprocess.Popen(
        [str(binary), "run", str(script)],
        cwd=ARTILLERY_DIR,
        env=artillery_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_pin_generator,
        start_new_session=True,
    )
    errors: list[str] = []
    try:
        process = psutil.Process(proc.pid)
        connections = server.wait_connected(users, proc, ALL_CONNECTED_TIMEOUT)
        if connections < users:
            log.flush()
            tail = Path(log.name).read_text()[-1500:]
            raise RuntimeError(f"artillery connected {connections} of {users} VUs (exit {proc.poll()}):\n{tail}")
        time.sleep(warmup)
        _, echoes0 = server.stats()
        cpu0, wall0 = tree_cpu(process), time.perf_counter()
        time.sleep(window)
        connected, echoes1 = server.stats()
        cpu, wall = tree_cpu(process) - cpu0, time.perf_counter() - wall0
        if connected < users:
            errors.append(f"only {connected} of {users} VUs still connected at the end of the window")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its session: node and any worker it spawned
        proc.wait(timeout=10)
        log.close()
    done = echoes1 - echoes0
    return {
        "variant": "artillery",
        "users": users,
        "connected": users,
        "messages": done,
        "cpu_s": round(cpu, 4),
        "wall_s": round(wall, 4),
        "per_cpu_s": round(done / cpu, 1) if cpu > 0 else None,
        "per_wall_s": round(done / wall, 1) if wall > 0 else None,
        "errors": errors,
        "error_count": len(errors),
        "echoes_before_run": echoes_before,
        "pinned": "cpu of the generator" if hasattr(os, "sched_setaffinity") else "not pinned",
    }


# ---------------------------------------------------------------------------
# The mock server (for the chat scenario)


def start_mock(users: int, seed: int) -> Any:
    from simulator.load.runner import MockProcess

    agents = max(2, users // 3 + 1)
    args = ["--agents", str(agents), "--pace", "fast", "--seed", str(seed), "--rate", "1000", "--burst", "2000"]
    mock = MockProcess(args)
    if hasattr(os, "sched_setaffinity"):
        import psutil  # type: ignore[import-untyped, unused-ignore]

        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:
            for thread in psutil.Process(mock.proc.pid).threads():
                os.sched_setaffinity(thread.id, {cpus[0]})
    return mock


# ---------------------------------------------------------------------------
# Orchestration (no gevent, no asyncio here)


def versions() -> dict[str, str]:
    found = package_versions(
        ("websockets", "gevent", "locust", "pydantic", "orjson", "uvloop"), {"artillery": artillery_version()}
    )
    node = shutil.which("node")
    if node is not None:
        found["node"] = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    return found


def median_of(runs: list[dict[str, Any]], variant: str, users: int, key: str) -> float | None:
    found = [r[key] for r in runs if r["variant"] == variant and r["users"] == users and r.get(key)]
    return statistics.median(found) if found else None


def show(result: dict[str, Any], repeat: int) -> None:
    if result["variant"] == "chat":
        figures = (
            f"{result['frames']:>7} frames ({result['locust_requests']} Locust requests, "
            f"{result['locust_failures']} failed), {result['frames_per_cpu_s']:>9,.0f} frames/CPU-s"
        )
    else:
        figures = f"{result['messages']:>7} messages, {result['per_cpu_s'] or 0:>9,.0f}/CPU-s"
        if result.get("frames_per_cpu_s"):
            figures += f" ({result['frames_per_cpu_s']:,.0f} frames/CPU-s)"
        figures += f", {result['per_wall_s'] or 0:>8,.0f}/s wall"
    figures += error_note(result)
    print(f"  {result['variant']:9} users={result['users']:<5} #{repeat + 1}: {figures}", flush=True)


def orchestrate(
    user_counts: Sequence[int],
    chat_users: int,
    warmup: float,
    window: float,
    repeat: int,
    *,
    chat_warmup: float,
    artillery: bool,
    parts: Sequence[str],
    quick: bool,
    path: Path,
) -> None:
    if quick and not artillery:
        binary, artillery_note = None, "skipped in --quick (add --artillery to run it)"
    else:
        binary, artillery_note = find_artillery(install=not quick)
    print(f"artillery: {artillery_note}", flush=True)
    runs: list[dict[str, Any]] = []
    server = EchoServer(__file__)
    mock: Any = None
    try:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="bench-generator-") as folder:
            for users in user_counts if "echo" in parts else ():
                for number in range(repeat):
                    variants: list[Callable[[int], dict[str, Any]]] = [
                        lambda vus: measure_ours("echo", str(server.port), vus, warmup, window)
                    ]
                    if binary is not None:
                        variants.append(
                            lambda vus: measure_artillery(binary, server, vus, warmup, window, Path(folder))
                        )
                    for variant in variants:
                        result = variant(users)
                        result["repeat"] = number
                        runs.append(result)
                        show(result, number)
            for number in range(repeat if "chat" in parts else 0):
                port = str(server.port)
                # The message echo at this user count: the one of (a) if it ran, else now.
                echo = next(
                    (
                        dict(r)
                        for r in runs
                        if r["variant"] == "ours" and r["users"] == chat_users and r["repeat"] == number
                    ),
                    None,
                ) or measure_ours("echo", port, chat_users, warmup, window)
                echo["variant"] = "echo"
                show(echo, number)
                # A fresh mock server each time: users stopped mid-chat hold its agents for the reconnect grace.
                mock = start_mock(chat_users, seed=number + 1)
                frames = Path(folder) / f"chat-frames-{number}.txt"
                try:
                    chat = measure_ours("chat", mock.url, chat_users, chat_warmup, window, seed=number, frames=frames)
                finally:
                    mock.stop()
                    mock = None
                show(chat, number)
                results = [echo, chat]
                if chat["frames_received"]:
                    mix = measure_ours("echo", port, chat_users, warmup, window, frames=frames)
                    show(mix, number)
                    results.append(mix)
                for result in results:
                    result["repeat"] = number
                    runs.append(result)
    finally:
        server.stop()
        if mock is not None:
            mock.stop()

    summary: list[dict[str, Any]] = []
    for users in user_counts:
        ratios = paired_ratios(runs, "per_cpu_s", field="variant", variant="ours", baseline="artillery", users=users)
        summary.append(
            {
                "users": users,
                "ours_per_cpu_s": median_of(runs, "ours", users, "per_cpu_s"),
                "artillery_per_cpu_s": median_of(runs, "artillery", users, "per_cpu_s"),
                "ratio": ratios.median(2),
                "ratio_range": ratios.range(2),
                "ours_per_wall_s": median_of(runs, "ours", users, "per_wall_s"),
                "artillery_per_wall_s": median_of(runs, "artillery", users, "per_wall_s"),
            }
        )
    literal, costs = (
        paired_ratios(runs, "frames_per_cpu_s", field="variant", variant=echo, baseline="chat", users=chat_users)
        for echo in ("echo", "mix-echo")
    )
    chat_row: dict[str, Any] = {
        "users": chat_users,
        "echo_frames_per_cpu_s": median_of(runs, "echo", chat_users, "frames_per_cpu_s"),
        "mix_echo_frames_per_cpu_s": median_of(runs, "mix-echo", chat_users, "frames_per_cpu_s"),
        "chat_frames_per_cpu_s": median_of(runs, "chat", chat_users, "frames_per_cpu_s"),
        "echo_payload_bytes": median_of(runs, "echo", chat_users, "payload_bytes"),
        "chat_payload_bytes": median_of(runs, "chat", chat_users, "payload_bytes"),
        "overhead": costs.median(3, shift=-1),
        "overhead_range": costs.range(3, shift=-1),
        "overhead_vs_message_echo": literal.median(3, shift=-1),
    }

    print()
    print(f"(a) echo loop: messages (round trips) per CPU-second of the generator process (median of {repeat})")
    print("ratio: median of the paired ours/artillery ratios, [min-max]")
    header = f"{'VUs':>6} | {'ours':>9} | {'artillery':>9} | {'ratio':>17} | {'ours wall/s':>11} | {'art. wall/s':>11}"
    print_header(header)
    for row in summary:
        ratio = format_ratio(row["ratio"], row["ratio_range"])
        print(
            f"{row['users']:>6} | {row['ours_per_cpu_s'] or 0:>9,.0f} | {row['artillery_per_cpu_s'] or 0:>9,.0f} | "
            f"{ratio:>17} | {row['ours_per_wall_s'] or 0:>11,.0f} | {row['artillery_per_wall_s'] or 0:>11,.0f}"
        )
    print()
    print(f"(b) chat scenario (happy_path, pace none, Locust machinery) vs echo loops, {chat_users} users")
    print("frames (sent + received) per CPU-second; cost = 1/that; overhead: median of the paired cost ratios - 1")
    print("  echo: the ~600-byte message frame; echo of its frames: the frames the chat received, echoed as they were")
    header = f"  {'echo':>9} | {'echo of its frames':>18} | {'chat':>9} | {'bookkeeping overhead':>22} | {'vs echo':>8}"
    print(header)
    if chat_row["overhead"] is not None:
        low, high = chat_row["overhead_range"]
        echo_rate, mix_rate, chat_rate = (
            chat_row[key] or 0
            for key in ("echo_frames_per_cpu_s", "mix_echo_frames_per_cpu_s", "chat_frames_per_cpu_s")
        )
        overhead = f"{chat_row['overhead']:+.0%} [{low:+.0%} to {high:+.0%}]"
        print(
            f"  {echo_rate:>9,.0f} | {mix_rate:>18,.0f} | {chat_rate:>9,.0f} | {overhead:>22} |"
            f" {chat_row['overhead_vs_message_echo'] or 0:>+8.0%}"
        )

    print()
    targets = []
    largest = max(user_counts)
    for row in summary if "echo" in parts else ():
        goal = target_vs_artillery(row["users"])
        vs_artillery = f"ours >= {goal:g}x Artillery at {row['users']:,} VUs"
        if binary is None:
            targets.append(Target(vs_artillery, Verdict.NOT_MEASURED, f"({artillery_note})"))
        elif row["ratio"] is None:
            targets.append(Target(vs_artillery, Verdict.NOT_MEASURED))
        else:
            low, high = row["ratio_range"] or (row["ratio"], row["ratio"])
            targets.append(
                Target(
                    vs_artillery,
                    judge(row["ratio"], goal, higher_is_better=True),
                    f"({row['ratio']:.2f}x, {low:.2f}-{high:.2f}x over the repeats)",
                )
            )
    overhead = f"chat bookkeeping overhead <= {TARGET_OVERHEAD:.0%}"
    if chat_row["overhead"] is None:
        targets.append(Target(overhead, Verdict.NOT_MEASURED))
    else:
        targets.append(
            Target(
                f"{overhead} (vs the echo of its own frames)",
                judge(chat_row["overhead"], TARGET_OVERHEAD, higher_is_better=False),
                f"({chat_row['overhead']:+.0%}; vs the message echo {chat_row['overhead_vs_message_echo']:+.0%})",
            )
        )
    print_targets(targets)

    report = {
        **report_head(
            "bench_generator",
            "messages (round trips) per CPU-second of the generator process; chat: frames per CPU-second",
            versions=versions(),
            quick=quick,
        ),
        "settings": {
            "users": list(user_counts),
            "chat_users": chat_users,
            "warmup_s": warmup,
            "window_s": window,
            "repeat": repeat,
            "largest": largest,
        },
        "artillery": artillery_note,
        **target_keys(targets),
        "summary": summary,
        "chat": chat_row,
        "runs": runs,
    }
    save_results(path, report)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="100 VUs, short runs, no Artillery")
    parser.add_argument("--users", type=int, nargs="+", help="VU counts (default 10 100 1000; --quick: 100)")
    parser.add_argument("--chat-users", type=int, help="users of the chat scenario (default 100)")
    parser.add_argument("--warmup", type=float, help="seconds between all connected and the window")
    parser.add_argument("--chat-warmup", type=float, help="seconds of chats before the window (default 8)")
    parser.add_argument("--window", type=float, help="measured seconds per run")
    parser.add_argument("--repeat", type=int, help="runs per cell; the median is reported")
    parser.add_argument("--artillery", action="store_true", help="with --quick: run Artillery too")
    parser.add_argument("--part", choices=("echo", "chat"), nargs="+", default=["echo", "chat"], help="what to run")
    parser.add_argument("--json", type=Path, default=RESULTS)
    # Internal modes
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lifetime", type=float, default=3600.0, help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=("echo", "chat"), help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    warmup = args.warmup or (0.5 if args.quick else 1.0)
    window = args.window or (2.0 if args.quick else 6.0)
    if args.serve:
        serve_echo(args.lifetime, stats=True)
        return
    if args.client == "echo":
        users = args.users[0] if args.users else 10
        print(json.dumps(run_echo(int(args.target), users, warmup, window, args.frames)))
        return
    if args.client == "chat":
        users = args.users[0] if args.users else 10
        print(json.dumps(run_chat(args.target, users, warmup, window, args.seed, args.frames)))
        return
    user_counts = args.users or ([100] if args.quick else [10, 100, 1000])
    chat_warmup = args.chat_warmup or (2.0 if args.quick else 8.0)
    repeat = args.repeat or (1 if args.quick else 3)
    chat_users = args.chat_users or 100
    orchestrate(
        user_counts,
        chat_users,
        warmup,
        window,
        repeat,
        chat_warmup=chat_warmup,
        artillery=args.artillery,
        parts=args.part,
        quick=args.quick,
        path=args.json,
    )


if __name__ == "__main__":
    main()
