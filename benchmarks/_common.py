"""What the benchmarks share: the path bootstrap, machine and version info, CPU and memory readers,
child processes, the echo server, the typical chat frame, paired ratios, target verdicts and JSON
result writing.

Not a benchmark (run_all.py runs ``bench_*.py`` only). The benchmarks run as scripts (``python
benchmarks/bench_X.py`` from anywhere, or from run_all.py), so Python puts benchmarks/ on ``sys.path``
and ``import _common`` works; importing it puts the repository on ``sys.path`` too, so that ``import
simulator`` works without the package installed. A script imports it before anything of ``simulator``
(the import sorting does that: ``_common`` is a third-party module to it, ``simulator`` first-party).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import platform
import resource
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.protocol import Frame

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_DIR = HERE / "results"

if str(ROOT) not in sys.path:  # a script run from anywhere, the package not installed
    sys.path.insert(0, str(ROOT))

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# ---------------------------------------------------------------------------
# Machine and versions


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def machine(*, python: bool = False, cpus: int | None = None) -> dict[str, Any]:
    """``{"cpus", "platform"}`` (and ``"python"``) of this machine."""
    found: dict[str, Any] = {"cpus": os.cpu_count() if cpus is None else cpus, "platform": platform.platform()}
    if python:
        found["python"] = platform.python_version()
    return found


def versions(packages: Iterable[str], extra: dict[str, str] | None = None) -> dict[str, str]:
    """The Python version, ``extra``, then each package's installed version (or ``not installed``)."""
    found = {"python": platform.python_version(), **(extra or {})}
    for package in packages:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def report_head(
    benchmark: str,
    unit: str,
    *,
    versions: dict[str, str] | None = None,
    python: bool = False,
    cpus: int | None = None,
    **flags: Any,
) -> dict[str, Any]:
    """The first keys of a results document: benchmark, unit, ``flags`` (e.g. quick), when, machine, versions."""
    head: dict[str, Any] = {"benchmark": benchmark, "unit": unit, **flags}
    head["when"] = utc_now()
    head["machine"] = machine(python=python, cpus=cpus)
    if versions is not None:
        head["versions"] = versions
    return head


def save_results(path: Path, document: dict[str, Any]) -> None:
    """Write a results document (indented, with a final newline), creating its folder; say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwritten to {shown(path)}")


def shown(path: Path) -> Path:
    """``path`` relative to the repository if it is inside it."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def print_header(header: str) -> None:
    """A table header and a rule as wide as it."""
    print(header)
    print("-" * len(header))


def error_note(result: dict[str, Any]) -> str:
    """``"  errors: N [first]"`` for a run's progress line if it had errors, else ``""``."""
    return f"  errors: {result['error_count']} {result['errors'][:1]}" if result["error_count"] else ""


# ---------------------------------------------------------------------------
# CPU, memory, pinning


def pin(role: str, pid: int = 0) -> str:
    """Pin the server to one CPU and the clients to another (Linux, 2+ CPUs): steadier figures."""
    if not hasattr(os, "sched_getaffinity"):
        return "not pinned"
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return "not pinned"
    cpu = cpus[0] if role == "server" else cpus[1]
    os.sched_setaffinity(pid, {cpu})
    return f"cpu {cpu}"


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (``getrusage``)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def tree_cpu(process: Any) -> float:
    """CPU seconds (user + system) of a psutil process and its live descendants."""
    import psutil  # type: ignore[import-untyped, unused-ignore]

    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size from ``/proc/PID/status`` (VmRSS)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/PID/status")


def run_loop(loop_name: str, main: Any) -> None:
    if loop_name == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


# ---------------------------------------------------------------------------
# Subprocesses


PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def child_env(*, pythonpath: bool = True, proxies: bool = True, **extra: str) -> dict[str, str]:
    """This process's environment for a child: with PYTHONPATH = the repository (``pythonpath``), without the
    proxy variables (``proxies=False``: the child talks to 127.0.0.1 only), plus ``extra``."""
    env = {**os.environ, **({"PYTHONPATH": str(ROOT)} if pythonpath else {}), **extra}
    if not proxies:
        for var in PROXY_VARIABLES:
            env.pop(var, None)
    return env


def start(script: str | Path, command: list[str], *, stdin: bool = True) -> subprocess.Popen[str]:
    """Run ``script`` with ``command`` in a child process (PYTHONPATH = the repository), stdout piped."""
    return subprocess.Popen(
        [sys.executable, str(script), *command],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=child_env(),
    )


def run_json(command: list[str], *, timeout: float, what: str, proxies: bool = True) -> dict[str, Any]:
    """Run ``command`` (PYTHONPATH = the repository) to its end; the JSON object on its last stdout line."""
    env = child_env(proxies=proxies)
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def client_process(main: Coroutine[Any, Any, dict[str, Any]]) -> None:
    """A client process of a server benchmark: pinned to the client CPU, runs ``main`` on uvloop and prints
    its result as one JSON line."""
    pin("client")

    async def run() -> None:
        print(json.dumps(await main), flush=True)

    run_loop("uvloop", run())


def read_line(proc: subprocess.Popen[str], timeout: float, what: str) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"{what}: nothing within {timeout:g} s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{what}: the process exited (code {proc.wait(timeout=10)})")
    return line.strip()


def tell(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def stop(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """Terminate a child process (if still running); kill it if it does not end within ``timeout`` s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def start_server(script: str | Path, *, stdin: bool) -> tuple[subprocess.Popen[str], int]:
    """Start ``script --serve --lifetime 3600`` and read the ``PORT <n>`` line it prints first."""
    proc = subprocess.Popen(
        [sys.executable, str(script), "--serve", "--lifetime", "3600"],
        stdin=subprocess.PIPE if stdin else None,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # bounded: the server prints at once or dies (EOF)
    if not line.startswith("PORT "):
        if proc.stdin is not None:
            proc.stdin.close()
        stop(proc)
        raise RuntimeError(f"echo server failed to start: {line!r}")
    return proc, int(line.split()[1])


# ---------------------------------------------------------------------------
# The echo server (asyncio; its own process)


def serve_echo(lifetime: float, *, stats: bool) -> None:
    """Echo every message; print ``PORT <n>``; stop after ``lifetime`` seconds or on SIGTERM. With ``stats``,
    count, and answer each line on stdin with ``STATS <connections> <echoes>``."""
    import threading

    from websockets.asyncio.server import ServerConnection
    from websockets.asyncio.server import serve as ws_serve
    from websockets.exceptions import ConnectionClosed

    pin("server")
    counts = [0, 0]  # connections, echoes

    async def echo(ws: ServerConnection) -> None:
        async for data in ws:
            await ws.send(data)

    async def counted_echo(ws: ServerConnection) -> None:
        counts[0] += 1
        try:
            while True:
                data = await ws.recv(decode=False)
                await ws.send(data, text=True)
                counts[1] += 1
        except ConnectionClosed:
            pass
        finally:
            counts[0] -= 1

    def answer() -> None:
        for _ in sys.stdin:  # ends when the orchestrator closes the pipe
            print(f"STATS {counts[0]} {counts[1]}", flush=True)

    async def main() -> None:
        handler = counted_echo if stats else echo
        async with ws_serve(handler, "127.0.0.1", 0, compression=None, backlog=4096, max_queue=None) as server:
            print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
            if stats:
                threading.Thread(target=answer, daemon=True).start()
            await asyncio.sleep(lifetime)

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


class EchoServer:
    """The counting echo server process (``script --serve``, see :func:`serve_echo`), seen from the orchestrator."""

    def __init__(self, script: str | Path) -> None:
        self.proc, self.port = start_server(script, stdin=True)

    def stats(self) -> tuple[int, int]:
        """``(connections, echoes)`` now."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line.startswith("STATS "):
            raise RuntimeError(f"echo server stopped answering: {line!r}")
        _, connections, echoes = line.split()
        return int(connections), int(echoes)

    def wait_connected(self, users: int, proc: subprocess.Popen[Any], timeout: float) -> int:
        """Poll until ``users`` connections are open (or ``proc`` exits, or ``timeout`` s); the last count."""
        limit = time.monotonic() + timeout
        connections = 0
        while time.monotonic() < limit and proc.poll() is None:
            connections, _ = self.stats()
            if connections >= users:
                break
            time.sleep(0.1)  # polling another process's state: nothing to await
        return connections

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        stop(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# ---------------------------------------------------------------------------
# The typical frame


def chat_frame(user: int) -> Frame:
    """A typical customer chat message frame, about 600 bytes encoded."""
    from simulator.protocol import ConversationMessage, Frame, FrameType, MessageType, TransportStatus
    from simulator.protocol.models import ConversationMessageTransportStatus

    arn = f"arn:webchat-sim:DEMO:participant/customer-{user:06d}"
    return Frame(
        type=FrameType.MESSAGE,
        conversation_uuid=f"5a0c6f4e-2b1d-4c3e-9f8a-{user:012d}",
        message=ConversationMessage(
            author_conversation_participant_arn=arn,
            author_conversation_participant_name="Jordan Example",
            body=(
                "Hi! I ordered the blue running shoes last Tuesday and tracking still says 'label created'. "
                "Has the parcel shipped? I need them by Saturday."
            ),
            client_message_id="0-0",
            language_iso_code="en",
            merchant_id="DEMO",
            message_dts="2026-11-25T14:05:25.123Z",
            message_epoch=1795615525123,
            type=MessageType.MESSAGE,
            transport_statuses=[
                ConversationMessageTransportStatus(conversation_participant_arn=arn, status=TransportStatus.SENT)
            ],
        ),
    )


# ---------------------------------------------------------------------------
# Paired ratios


@dataclass(frozen=True)
class Ratios:
    """Ratios ``variant / baseline`` of one figure, one per pair of runs of the same repeat (measured back to
    back: their median resists the machine's drift better than a ratio of medians)."""

    values: tuple[float, ...]

    def median(self, digits: int | None = None, *, shift: float = 0.0) -> float | None:
        """The median (plus ``shift``, e.g. -1 for an overhead), rounded to ``digits``; None without pairs."""
        if not self.values:
            return None
        found = statistics.median(self.values) + shift
        return found if digits is None else round(found, digits)

    def range(self, digits: int, *, shift: float = 0.0) -> list[float] | None:
        """``[min, max]`` (plus ``shift``), rounded to ``digits``; None without pairs."""
        if not self.values:
            return None
        return [round(min(self.values) + shift, digits), round(max(self.values) + shift, digits)]


def paired_ratios(
    runs: Iterable[dict[str, Any]], key: str, *, field: str, variant: Any, baseline: Any, **where: Any
) -> Ratios:
    """The ratios of ``key`` between the runs whose ``field`` is ``variant`` and those whose ``field`` is
    ``baseline``, paired by ``repeat``, among the runs whose values match ``where`` (e.g. ``users=100``).
    Pairs where either figure is missing or zero are left out."""
    chosen = [r for r in runs if all(r.get(name) == value for name, value in where.items())]
    return Ratios(
        tuple(
            a[key] / b[key]
            for a in chosen
            if a[field] == variant
            for b in chosen
            if b[field] == baseline and a["repeat"] == b["repeat"] and a.get(key) and b.get(key)
        )
    )


def format_ratio(ratio: float | None, span: Sequence[float] | None) -> str:
    """``"1.23 [1.10-1.31]"`` (median [min-max]), or ``"-"`` without a ratio."""
    if not ratio or span is None:
        return "-"
    return f"{ratio:.2f} [{span[0]:.2f}-{span[1]:.2f}]"


# ---------------------------------------------------------------------------
# Targets and verdicts


class Verdict(StrEnum):
    """What became of a benchmark's target (run_all.py counts the MISSED ones)."""

    MET = "met"
    MISSED = "MISSED"
    NOT_MEASURED = "not measured"
    REPORT = "report only"


def judge(value: float | None, limit: float, *, higher_is_better: bool, strict: bool = False) -> Verdict:
    """MET if ``value`` is at least (``higher_is_better``) or at most ``limit`` (strictly so with ``strict``),
    else MISSED; NOT_MEASURED without a value."""
    if value is None:
        return Verdict.NOT_MEASURED
    if higher_is_better:
        ok = value > limit if strict else value >= limit
    else:
        ok = value < limit if strict else value <= limit
    return Verdict.MET if ok else Verdict.MISSED


@dataclass(frozen=True)
class Target:
    """A target and its verdict: ``what`` the target is, and ``detail``: the figures behind the verdict."""

    what: str
    verdict: Verdict
    detail: str = ""

    def line(self) -> str:
        """The printed line: ``target: WHAT: VERDICT DETAIL`` (report only: ``WHAT (report only; no target)``)."""
        if self.verdict is Verdict.REPORT:
            return f"{self.what} ({self.verdict}; no target)"
        return f"target: {self.what}: {self.verdict}" + (f" {self.detail}" if self.detail else "")

    def to_json(self) -> dict[str, str]:
        return {"what": self.what, "verdict": self.verdict.value, "detail": self.detail}

    @classmethod
    def from_json(cls, found: dict[str, Any]) -> Target:
        return cls(str(found["what"]), Verdict(found["verdict"]), str(found.get("detail", "")))


def all_met(targets: Iterable[Target]) -> bool:
    """No target missed or left unmeasured (report-only entries count as met)."""
    return all(t.verdict in (Verdict.MET, Verdict.REPORT) for t in targets)


def print_targets(targets: Sequence[Target]) -> None:
    for target in targets:
        print(target.line())


def target_keys(targets: Sequence[Target]) -> dict[str, Any]:
    """The results document's keys for its targets: ``targets`` (the printed lines), ``verdicts`` (typed, what
    run_all.py reads) and ``met`` (:func:`all_met`)."""
    return {
        "targets": [t.line() for t in targets],
        "verdicts": [t.to_json() for t in targets],
        "met": all_met(targets),
    }


# ---------------------------------------------------------------------------
# Measured windows: clients that say READY, then run from GO t0 to t1


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0 to 1, nearest rank) of ``values``; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_ready(script: str | Path, command: list[str], *, timeout: float, what: str) -> subprocess.Popen[str]:
    """:func:`start` a client process and wait for its ``READY`` line (set up, waiting for ``GO``)."""
    proc = start(script, command)
    try:
        line = read_line(proc, timeout, what)
        if line != "READY":
            raise RuntimeError(f"{what}: expected READY, got {line!r}")
    except BaseException:
        stop(proc)
        raise
    return proc


async def wait_go() -> tuple[float, float]:
    """In a client process: print ``READY``, then wait for ``GO t0 t1`` on stdin; the window's ``time.monotonic``
    bounds (the same clock in every process)."""
    print("READY", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    word, t0, t1 = line.split()
    if word != "GO":
        raise RuntimeError(f"expected GO t0 t1, got {line!r}")
    return float(t0), float(t1)


def go_window(
    pids: Sequence[int], clients: Sequence[subprocess.Popen[str]], *, warmup: float, duration: float, grace: float
) -> tuple[list[float], list[dict[str, Any]]]:
    """Tell every READY client ``GO t0 t1`` (``warmup`` s from now, ``duration`` s long), read the CPU seconds of
    ``pids`` at ``t0`` and ``t1`` (:func:`process_cpu`), then each client's JSON result line (within ``grace``
    s after ``t1``). The CPU seconds each pid used in the window, and the results."""
    t0 = time.monotonic() + warmup
    t1 = t0 + duration
    for client in clients:
        tell(client, f"GO {t0} {t1}")
    time.sleep(max(0.0, t0 - time.monotonic()))  # the window is wall-clock time in other processes
    cpu_start = [process_cpu(pid) for pid in pids]
    time.sleep(max(0.0, t1 - time.monotonic()))
    cpu_end = [process_cpu(pid) for pid in pids]
    results = [json.loads(read_line(c, grace, f"client {i} result")) for i, c in enumerate(clients)]
    return [end - begin for begin, end in zip(cpu_start, cpu_end, strict=True)], results
