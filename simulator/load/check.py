"""``webchat-sim check``: a protocol conformance suite against any backend.

Each probe of :data:`~simulator.load.probes.PROBES` (one per row of the
dialect, docs/protocol.md section 3, and per rule of sections 4, 5 and 7 a
client can see) drives the load generator's own sessions and dialect, in
this gevent process, against ``--host`` or, without it, the embedded mock
started as ``webchat-sim load`` starts it (a child process, with no
autopilot agents: the checker's own agent is the only one). Every frame
received is decoded strictly with the project's codec; an invalid one fails
the probe with the codec's reason, naming the field.

Each probe is bounded by ``--probe-timeout``; its sessions are closed after
it. The result is a table row per probe (``pass``, ``FAIL <reason>``,
``skip <why>``), a summary line, optionally a JUnit XML file, and the exit
status: 0 when every probe passed or was skipped, 1 on any failure or when
the host cannot be reached (one line, at once), 2 for usage errors.
"""

from __future__ import annotations

import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import IO

import gevent

from ..errors import ConnectError, OperationFailed, TransportError, UsageError
from .dialect import Dialect
from .handshake import open_websocket
from .probe_kit import WAITING, ProbeFailed, ProbeSkipped, Run
from .probes import PROBES, Probe
from .runner import MockProcess

__all__ = ["CheckOptions", "Result", "run_check", "write_junit"]

MOCK_ARGS = (
    "--agents",
    "0",
    "--pace",
    "fast",
    "--rate",
    "1000",
    "--burst",
    "2000",
    "--position-interval",
    "0.2",
    "--status-interval",
    "0.2",
)
"""The embedded mock: no autopilot (the checker's agent is the only one),
fast pushes (the probes wait for them)."""


@dataclass(kw_only=True)
class CheckOptions:
    host: str | None = None
    probe_timeout: float = 10.0
    junit: str | None = None
    routing: str = "round-robin"
    queue: str = "support"
    seed: int = 0
    probes: list[str] = field(default_factory=list)  # empty: all


@dataclass(frozen=True, slots=True)
class Result:
    probe: Probe
    status: str  # "pass", "fail", "skip"
    reason: str
    seconds: float

    @property
    def text(self) -> str:
        return {"pass": "pass", "fail": f"FAIL {self.reason}", "skip": f"skip {self.reason}"}[self.status]


def check_options(opts: CheckOptions) -> list[Probe]:
    """The probes to run; :class:`UsageError` (one line) for options that cannot work."""
    if opts.host is not None and not re.match(r"^wss?://[^/\s]+", opts.host):
        raise UsageError(f'--host must be a websocket URL such as ws://127.0.0.1:8765/ws (got "{opts.host}")')
    if not opts.probe_timeout > 0:
        raise UsageError(f"--probe-timeout must be more than 0 seconds (got {opts.probe_timeout:g})")
    if opts.junit and not os.path.isdir(os.path.dirname(os.path.abspath(opts.junit))):
        raise UsageError(f"--junit: no folder {os.path.dirname(os.path.abspath(opts.junit))} for {opts.junit}")
    names = {p.name: p for p in PROBES}
    if unknown := [n for n in opts.probes if n not in names]:
        raise UsageError(f"unknown probe {unknown[0]!r}; the probes: {', '.join(names)}")
    return [p for p in PROBES if not opts.probes or p.name in opts.probes]


def run_probe(run: Run, probe: Probe, timeout: float) -> Result:
    """One probe, bounded by ``timeout`` seconds (its clean-up apart)."""
    start = time.monotonic()
    timer = gevent.Timeout(timeout)
    timer.start()
    status, reason = "pass", ""
    WAITING[0] = "nothing yet"
    try:
        probe.run(run)
    except gevent.Timeout as exc:
        if exc is not timer:
            raise
        status, reason = "fail", f"probe timed out after {timeout:g} s (waiting, {WAITING[0]})"
    except ProbeSkipped as exc:
        status, reason = "skip", str(exc)
    except ProbeFailed as exc:
        status, reason = "fail", str(exc)
    except OperationFailed as exc:
        status, reason = "fail", f"{exc.name}: {exc.reason}"
    except TransportError as exc:
        status, reason = "fail", str(exc)
    finally:
        timer.close()
    invalid = run.invalid()  # an invalid frame is the cause of whatever followed
    if invalid is not None:
        status, reason = "fail", invalid
    run.cleanup()
    return Result(probe, status, reason, time.monotonic() - start)


def reachable(host: str, timeout: float) -> str | None:
    """``None`` when a websocket opens at ``host``, else why not (one line)."""
    url = Dialect().customer_url(host)
    try:
        sock, _, _ = open_websocket(url, timeout=timeout)
    except ConnectError as exc:
        return str(exc)
    except ValueError as exc:
        return f"{host}: {exc}"
    sock.close()
    return None


def run_suite(run: Run, probes: list[Probe], out: IO[str], timeout: float) -> list[Result]:
    results: list[Result] = []
    width = max(len(p.name) for p in probes)
    out.write(f"{'probe':{width}}  {'row':8} result\n")
    started_ok: bool | None = None
    for probe in probes:
        if probe.needs_chat and started_ok is False:
            result = Result(probe, "skip", "start failed (every chat begins with it)", 0.0)
        else:
            result = run_probe(run, probe, timeout)
        if probe.name == "start":
            started_ok = result.status == "pass"
        results.append(result)
        out.write(f"{probe.name:{width}}  {probe.row:8} {result.text}\n")
        out.flush()
    return results


def summary_line(results: list[Result], seconds: float) -> str:
    counts = {s: sum(1 for r in results if r.status == s) for s in ("pass", "fail", "skip")}
    verdict = "FAIL" if counts["fail"] else "PASS"
    return (
        f"result: {verdict} ({len(results)} probes: {counts['pass']} passed, {counts['fail']} failed, "
        f"{counts['skip']} skipped, in {seconds:.1f} s)"
    )


def write_junit(path: str, results: list[Result], seconds: float, host: str) -> None:
    """JUnit XML: one ``testcase`` per probe, ``failure`` / ``skipped`` with the reason."""
    suite = ET.Element(
        "testsuite",
        name="webchat-sim check",
        tests=str(len(results)),
        failures=str(sum(1 for r in results if r.status == "fail")),
        errors="0",
        skipped=str(sum(1 for r in results if r.status == "skip")),
        time=f"{seconds:.3f}",
        hostname=host,
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"webchat-sim.check.{result.probe.row}",
            name=result.probe.name,
            time=f"{result.seconds:.3f}",
        )
        if result.status == "fail":
            ET.SubElement(case, "failure", message=result.reason, type="ProbeFailed").text = result.reason
        elif result.status == "skip":
            ET.SubElement(case, "skipped", message=result.reason)
    root = ET.Element("testsuites")
    root.append(suite)
    tree = ET.ElementTree(root)
    ET.indent(tree)
    try:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise UsageError(f"--junit: cannot write {path}: {exc.strerror}") from None


def run_check(opts: CheckOptions, out: IO[str] = sys.stdout) -> int:
    """Run the suite; the exit status (0 pass, 1 a failure or no backend)."""
    probes = check_options(opts)
    started = time.monotonic()
    mock: MockProcess | None = None
    host = opts.host
    try:
        if host is None:
            mock = MockProcess(
                [*MOCK_ARGS, "--seed", str(opts.seed), "--routing", opts.routing, "--queues", opts.queue]
            )
            host = mock.url
            out.write(f"embedded mock server at {host} (no autopilot agents: the checker's own agent answers)\n")
        elif (why := reachable(host, min(opts.probe_timeout, 5.0))) is not None:
            out.write(f"webchat-sim check: cannot reach the backend: {why}\n")
            return 1
        out.write(f"checking {host} ({len(probes)} probes, {opts.probe_timeout:g} s each at most)\n")
        out.flush()
        run = Run(
            host, timeout=opts.probe_timeout * 0.9, manual=opts.routing == "manual", queue=opts.queue, seed=opts.seed
        )
        results = run_suite(run, probes, out, opts.probe_timeout)
    finally:
        if mock is not None:
            mock.stop()
    seconds = time.monotonic() - started
    if opts.junit:
        write_junit(opts.junit, results, seconds, host)
    out.write(summary_line(results, seconds) + "\n")
    return 1 if any(r.status == "fail" for r in results) else 0
