"""What the benchmarks share: machine and version info, CPU and memory readers, server subprocesses,
the echo server, the typical chat frame and JSON result writing.

Not a benchmark (run_all.py runs ``bench_*.py`` only). The benchmarks run as scripts and import it as
``_common`` with benchmarks/ on ``sys.path``.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import platform
import resource
import select
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.protocol import Frame

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

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


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write a results document (indented, with a final newline), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def shown(path: Path) -> Path:
    """``path`` relative to the repository if it is inside it."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def print_header(header: str) -> None:
    """A table header and a rule as wide as it."""
    print(header)
    print("-" * len(header))


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


def start(script: str | Path, command: list[str], *, stdin: bool = True) -> subprocess.Popen[str]:
    """Run ``script`` with ``command`` in a child process (PYTHONPATH = the repository), stdout piped."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(script), *command],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


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
