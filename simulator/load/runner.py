"""``webchat-sim load``: a headless Locust run with a chat-KPI summary.

With no ``--host`` the embedded mock server is started in a separate process
(asyncio there, gevent here), awaited through ``/healthz`` and stopped at the
end. Locust runs as a child process with this package's locustfile, writes its
own CSV files (and HTML report with ``--html``), and the summary is read from
those CSV files; ``--report`` builds this project's own page from them
(:mod:`.report`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import Interrupted, UsageError
from ..pace import DEFAULT_LOAD_PACE, DEFAULT_MAX_CHATS
from .chaos import parse_chaos
from .distributed import EXPECT_WORKERS_MAX_WAIT, master_args, master_report, start_worker
from .locust_cli import locust_invocation
from .looplag import lag_lines, read_lag
from .meter import KPI
from .mockproc import _NO_PROXY, MockProcess
from .progress import Progress, _fmt, _num, _read_rows
from .scenario import ScenarioError, parse_mix

__all__ = ["KPI_ORDER", "LoadOptions", "MockProcess", "check_options", "parse_duration", "read_summary", "run_load"]

KPI_ORDER = (
    KPI.AUTH,
    KPI.CONNECT,
    KPI.START_CHAT,
    KPI.CHECK_QUEUE_POSITION,
    KPI.QUEUE_WAIT,
    KPI.FIRST_REPLY,
    KPI.MESSAGE_ACK,
    KPI.MESSAGE_DELIVERY,
    KPI.READ_RECEIPT,
    KPI.TAKE_CHAT,
    KPI.PING,
    KPI.RECONNECT,
    KPI.CHAOS_DROP,
    KPI.CHAOS_CLOSED,
    KPI.CLOSE,
    KPI.ABANDON,
)
"""The summary's row order; other names follow alphabetically."""

UNTIMED = frozenset(
    {
        KPI.RRWEB,
        KPI.INVALID_FRAME,
        KPI.SERVER_ERROR,
        KPI.MESSAGE_LOST,
        KPI.CONNECTION_LOST,
        KPI.QUEUE_POSITION,
        KPI.REPLY_LANGUAGE,
        KPI.CHAOS_DROP,
        KPI.CHAOS_CLOSED,
    }
)
"""Rows that count events without timing them."""


PACE_TIMEOUTS = {"none": 30.0, "fast": 30.0, "human": 120.0}
"""Seconds one wait may take by default, per pace: a human-paced agent reads,
thinks and types for tens of seconds before a long answer."""

MAX_CHATS_PER_AGENT = DEFAULT_MAX_CHATS
"""Chats an embedded autopilot agent holds at once (``serve --max-chats-per-agent``)."""


@dataclass(kw_only=True)
class LoadOptions:
    host: str | None = None
    users: int = 50
    spawn_rate: float = 10.0
    run_time: str = "30s"
    scenario: str = "happy_path"
    agents: int = 0  # autopilot agents of the embedded server (0: enough for every user)
    agent_users: int = 0  # AgentUsers driven by Locust (needed against a real backend)
    processes: int = 1
    csv: str | None = None
    html: str | None = None
    report: str | None = None  # webchat-sim's own HTML report (simulator.load.report)
    seed: int = 0
    pace: str = DEFAULT_LOAD_PACE.value
    queues: str = "support"
    routing: str = "round-robin"
    timeout: float | None = None  # None: by pace (PACE_TIMEOUTS)
    summary_json: str | None = None
    locust_args: list[str] = field(default_factory=list)
    locust_stats: bool = False
    progress: bool | None = None  # None: when stdout is a terminal
    progress_interval: float = 5.0
    auth: str = "query"  # "rest": a JWT from the REST auth before every connect
    api_key: str | None = None  # with --auth rest (comma-separated: agent users take them in turn)
    rest_url: str | None = None  # with --auth rest; None: the embedded mock's, or from --host
    chaos: str = ""  # --chaos disconnect=P (simulator.load.chaos)
    record: str | None = None  # --record FILE.jsonl: a transcript (simulator.load.record)
    role: str = "local"  # "master" / "worker": Locust's distributed mode (simulator.load.distributed)
    expect_workers: int = 1
    master_bind_host: str = "*"
    master_bind_port: int = 5557
    master_host: str = "127.0.0.1"
    master_port: int = 5557
    mock_args: list[str] = field(default_factory=list)  # more `serve` arguments for the embedded mock

    def api_keys(self) -> list[str]:
        """The API keys of ``--auth rest``. For the embedded mock: one made up
        when none is given, and one per agent user (``KEY``, ``KEY-2`` …) so
        each agent user is its own agent account."""
        keys = [k.strip() for k in (self.api_key or "").split(",") if k.strip()]
        if self.host is None and self.auth == "rest":
            if not keys:
                keys = [secrets.token_urlsafe(12)]
            keys += [f"{keys[0]}-{n}" for n in range(len(keys) + 1, self.agent_users + 1)]
        return keys

    @property
    def wait_timeout(self) -> float:
        return self.timeout if self.timeout is not None else PACE_TIMEOUTS.get(self.pace, 30.0)

    def embedded_agents(self) -> int:
        """Autopilot agents for the embedded mock: as asked, else enough that
        every simulated customer can be in a chat at once."""
        if self.agents > 0:
            return self.agents
        if self.agent_users > 0:
            return 0
        return max(2, -(-self.users // MAX_CHATS_PER_AGENT))


def read_summary(prefix: str) -> dict[str, Any]:
    """The chat KPIs of a Locust CSV prefix: per operation count, failures,
    p50/p95/p99 and mean (ms), plus the failures by reason and the unexpected
    exceptions of the generator. The CSV files hold Locust's final statistics
    (the locustfile writes them at exit), so every count matches Locust's own
    report of the run."""
    rows: dict[str, dict[str, Any]] = {}
    for row in _read_rows(Path(f"{prefix}_stats.csv")):
        if row["Name"] == "Aggregated":
            continue
        rows[row["Name"]] = {
            "requests": int(row["Request Count"]),
            "failures": int(row["Failure Count"]),
            "p50_ms": _num(row["50%"]),
            "p95_ms": _num(row["95%"]),
            "p99_ms": _num(row["99%"]),
            "mean_ms": _num(row["Average Response Time"]),
            "per_second": _num(row["Requests/s"]),
        }
    failures: list[dict[str, Any]] = [
        {"name": row["Name"], "error": row["Error"], "occurrences": int(row["Occurrences"])}
        for row in _read_rows(Path(f"{prefix}_failures.csv"))
    ]
    failures.sort(key=lambda f: -int(f["occurrences"]))
    exceptions = [
        {"count": int(row["Count"]), "message": row["Message"]}
        for row in _read_rows(Path(f"{prefix}_exceptions.csv"))
        if row.get("Count", "").isdigit()
    ]
    abandons = rows.get(KPI.ABANDON.value, {}).get("requests", 0)
    return {
        "kpis": rows,
        "failures": failures,
        "total_failures": sum(r["failures"] for r in rows.values()),
        "exceptions": exceptions,
        "abandons": abandons,
        "chats": rows.get(KPI.START_CHAT.value, {}).get("requests", 0),
        "chaos_drops": rows.get(KPI.CHAOS_DROP.value, {}).get("requests", 0),
        "loop_lag": read_lag(prefix),
    }


def print_summary(summary: dict[str, Any], out: IO[str]) -> None:
    kpis: dict[str, dict[str, Any]] = summary["kpis"]
    order = [k.value for k in KPI_ORDER]
    names = [n for n in order if n in kpis] + sorted(n for n in kpis if n not in order)
    out.write("\nChat KPIs (milliseconds)\n")
    out.write(f"{'operation':22} {'count':>7} {'fail':>5} {'p50':>7} {'p95':>7} {'p99':>7} {'mean':>7}\n")
    for name in names:
        r = kpis[name]
        timed = name not in UNTIMED and r["p50_ms"] is not None
        cols = [_fmt(r[k]) if timed else "-" for k in ("p50_ms", "p95_ms", "p99_ms", "mean_ms")]
        out.write(
            f"{name:22} {r['requests']:7d} {r['failures']:5d} {cols[0]:>7} {cols[1]:>7} {cols[2]:>7} {cols[3]:>7}\n"
        )
    chats, abandons = summary.get("chats", 0), summary.get("abandons", 0)
    if chats:
        out.write(f"\n{chats} chat(s) started, {abandons} abandoned while queued ({100 * abandons / chats:.1f}%)\n")
    if drops := summary.get("chaos_drops", 0):
        resumes = summary["kpis"].get(KPI.RECONNECT.value, {}).get("requests", 0)
        refused = summary["kpis"].get(KPI.CHAOS_CLOSED.value, {}).get("requests", 0)
        out.write(f"{drops} chaos drop(s) (--chaos), {resumes} resume(s) timed, {refused} refused as closed\n")
    for line in lag_lines(summary.get("loop_lag")):
        out.write(line + "\n")
    if summary["failures"]:
        out.write("\nFailures (occurrences, operation: reason)\n")
        for f in summary["failures"][:20]:
            out.write(f"{f['occurrences']:7d}  {f['name']}: {f['error']}\n")
        if len(summary["failures"]) > 20:
            out.write(f"         … and {len(summary['failures']) - 20} more reason(s) (see the failures CSV)\n")
    for exc in summary.get("exceptions", [])[:5]:
        out.write(f"\n{exc['count']} unexpected exception(s) in the load generator: {exc['message']}\n")


def hint(summary: dict[str, Any], host: str) -> str | None:
    """One line for a run whose REST auths or connects all failed: what the user should check."""
    auth = summary["kpis"].get(KPI.AUTH.value)
    if auth and auth["requests"] > 0 and auth["failures"] >= auth["requests"]:
        reasons = [f["error"] for f in summary["failures"] if f["name"] == KPI.AUTH.value]
        if any(re.search(r"HTTP 40[13] from", r) for r in reasons):
            return "the REST auth was refused: is --api-key right?"
        if any("nothing answered at" in r for r in reasons):
            return "nothing answered the REST auth: is --rest-url right (or the server running)?"
        return f"no REST auth succeeded: {reasons[0] if reasons else 'see the failures above'}"
    connect = summary["kpis"].get(KPI.CONNECT.value)
    if not connect or connect["requests"] == 0 or connect["failures"] < connect["requests"]:
        return None
    reasons = [f["error"] for f in summary["failures"] if f["name"] == KPI.CONNECT.value]
    if any("nothing answered at" in r for r in reasons):
        return f"nothing answered at {host}: is the server running?"
    for reason in reasons:
        if match := re.search(r"HTTP (\d{3}) from", reason):
            return f"{host} answered HTTP {match.group(1)}, not a websocket: is the URL (path) right?"
    return f"no connect to {host} succeeded: {reasons[0] if reasons else 'see the failures above'}"


def verdict(summary: dict[str, Any], locust_exit: int | None, interrupted: str | None) -> tuple[int, str]:
    """The exit status and the line that says it, always in agreement."""
    failures = int(summary["total_failures"])
    exceptions = sum(int(e["count"]) for e in summary.get("exceptions", []))
    problems = []
    if failures:
        problems.append(f"{failures} failure(s)")
    if exceptions:
        problems.append(f"{exceptions} unexpected exception(s)")
    if locust_exit not in (0, 1, None) and not problems:
        problems.append(f"Locust exited with status {locust_exit}")
    if interrupted:
        status = 130 if interrupted == "SIGINT" else 143
        what = ", ".join(problems) or "0 failures"
        return status, f"result: INTERRUPTED by {interrupted} ({what} in what ran)"
    if problems:
        return 1, f"result: FAIL ({', '.join(problems)})"
    if not summary["kpis"]:
        return 1, "result: FAIL (nothing was measured)"
    return 0, "result: PASS (0 failures)"


def locust_command(opts: LoadOptions, host: str, prefix: str) -> list[str]:
    cmd = [
        *locust_invocation(),
        "--headless",
        "--users",
        str(opts.users),
        "--spawn-rate",
        str(opts.spawn_rate),
        "--run-time",
        opts.run_time,
        "--host",
        host,
        "--csv",
        prefix,
        "--only-summary",
        "--stop-timeout",
        "5",
        "--scenario",
        opts.scenario,
        "--pace",
        opts.pace,
        "--seed",
        str(opts.seed),
        "--queues",
        opts.queues,
        "--chat-timeout",
        str(opts.wait_timeout),
    ]
    if opts.processes != 1:
        cmd += ["--processes", str(opts.processes)]
    if opts.html:
        cmd += ["--html", opts.html]
    if opts.report:  # the per-KPI history the report plots
        cmd += ["--csv-full-history"]
    if opts.agent_users > 0:
        cmd += ["--agent-users", str(opts.agent_users)]
        if opts.routing == "manual":
            cmd += ["--manual-routing"]
    if opts.auth == "rest":  # the API key goes in the environment (locust_env), not on a command line
        cmd += ["--auth", "rest"]
        if opts.rest_url:
            cmd += ["--rest-url", opts.rest_url]
    if opts.chaos:
        cmd += ["--chaos", opts.chaos]
    if opts.record:
        cmd += ["--record", os.path.abspath(opts.record)]
    cmd += master_args(opts)
    cmd += opts.locust_args
    cmd += ["AgentUser", "CustomerUser"] if opts.agent_users > 0 else ["CustomerUser"]
    return cmd


class Runner:
    """One ``webchat-sim load``: the embedded mock (unless ``--host``), Locust
    in a child process, progress, the summary and the verdict.

    SIGINT and SIGTERM stop Locust first (it writes its final statistics), then
    the mock; the summary of what ran is printed and the exit status is 130 or
    143. Both children run in their own sessions, so a Ctrl-C on the terminal
    reaches this process only and nothing is left behind."""

    def __init__(self, opts: LoadOptions, out: IO[str]) -> None:
        self.opts = opts
        self.api_keys = opts.api_keys()  # made up once (embedded mock): the mock and Locust share them
        self.out = out
        self.locust: subprocess.Popen[bytes] | None = None
        self.interrupted: str | None = None
        self.verdict_line: str | None = None  # once Locust wrote its statistics

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.locust is None:
            raise Interrupted(signum)
        if self.interrupted is None:
            self.interrupted = signal.Signals(signum).name
            self.out.write(f"\n{self.interrupted}: stopping Locust, then the mock server…\n")
            self.out.flush()
            with contextlib.suppress(ProcessLookupError):
                self.locust.send_signal(signal.SIGTERM)

    def run(self) -> int:
        opts = self.opts
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        if opts.role == "worker":
            try:
                return self._run_worker()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
        mock: MockProcess | None = None
        with tempfile.TemporaryDirectory(prefix="webchat-sim-") as tmp:
            prefix = opts.csv or os.path.join(tmp, "run")
            log_path = f"{prefix}_locust.log" if opts.csv else os.path.join(tmp, "locust.log")
            for path in (prefix, opts.html, opts.report, opts.summary_json):
                if path and (folder := os.path.dirname(os.path.abspath(path))):
                    try:
                        os.makedirs(folder, exist_ok=True)
                    except OSError as exc:
                        raise UsageError(f"cannot create {folder} for {path}: {exc.strerror}") from None
            try:
                host = opts.host
                if host is None:
                    mock = self._start_mock()
                    host = mock.url
                    if opts.auth == "rest" and not opts.rest_url and mock.rest_url:
                        self.opts = opts = dataclasses.replace(opts, rest_url=mock.rest_url)
                elif opts.auth == "rest" and not opts.rest_url:
                    self.opts = opts = dataclasses.replace(opts, rest_url=discover_rest_url(host))
                poller = _queue_poller(mock, prefix) if opts.report else None
                try:
                    code, line = self._run_locust(host, prefix, log_path)
                finally:
                    if poller is not None:
                        poller.stop()
                if opts.report and self.verdict_line is not None:
                    self._write_report(host, prefix, self.verdict_line)
            except Interrupted as exc:
                self.out.write(f"\n{exc.signal}: stopped before the load started\n")
                return 130 if exc.signal == "SIGINT" else 143
            finally:
                if mock is not None:
                    mock.stop()
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            self.out.write(line + "\n")
            self.out.flush()
            return code

    def _start_mock(self) -> MockProcess:
        opts = self.opts
        agents = opts.embedded_agents()
        mock = MockProcess(
            [
                "--agents",
                str(agents),
                "--pace",
                "human" if opts.pace == "human" else "fast",
                "--seed",
                str(opts.seed),
                "--queues",
                opts.queues,
                "--routing",
                opts.routing,
                "--max-chats-per-agent",
                str(MAX_CHATS_PER_AGENT),
                "--rate",
                "1000",
                "--burst",
                "2000",
                *(arg for key in self.api_keys for arg in ("--api-key", key)),
                *opts.mock_args,
            ]
        )
        self.out.write(f"embedded mock server at {mock.url} with {agents} autopilot agent(s)\n")
        self.out.flush()
        return mock

    def announce(self, host: str) -> str:
        """The line that says what runs."""
        opts = self.opts
        return (
            f"running {opts.users} user(s) for {opts.run_time} against {host} "
            f"(scenarios {opts.scenario}, pace {opts.pace}"
            + (f", REST auth at {opts.rest_url or 'the derived REST URL'}" if opts.auth == "rest" else "")
            + ")"
        )

    def make_progress(self, prefix: str) -> Progress:
        return Progress(prefix, self.out)

    def command(self, host: str, prefix: str) -> list[str]:
        """Locust's command line (a subclass runs another locustfile)."""
        return locust_command(self.opts, host, prefix)

    def _locust_env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env.pop(var, None)
        if self.opts.auth == "rest" and self.api_keys:
            env["WEBCHAT_API_KEY"] = ",".join(self.api_keys)
        return env

    def _run_worker(self) -> int:
        """``--worker``: Locust's worker until its master quits; no mock, no summary."""
        self.locust = proc = start_worker(self.opts, self.out, self._locust_env())
        proc.wait()
        _kill_group(proc.pid)
        if self.interrupted:
            return 130 if self.interrupted == "SIGINT" else 143
        self.out.write(f"worker done (Locust exit status {proc.returncode})\n")
        return 0 if proc.returncode in (0, 1) else int(proc.returncode or 2)  # 1: the run had failures

    def _run_locust(self, host: str, prefix: str, log_path: str) -> tuple[int, str]:
        opts = self.opts
        env = self._locust_env()
        progress = self.make_progress(prefix)
        show_progress = opts.progress if opts.progress is not None else self.out.isatty()
        self.out.write(self.announce(host) + "\n")
        self.out.flush()
        with open(log_path, "wb") as log:
            self.locust = subprocess.Popen(
                self.command(host, prefix),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            proc = self.locust
            deadline = time.monotonic() + parse_duration(opts.run_time) + 120.0
            if opts.role == "master":
                deadline += EXPECT_WORKERS_MAX_WAIT
            while proc.poll() is None:
                try:
                    proc.wait(timeout=opts.progress_interval)
                except subprocess.TimeoutExpired:
                    if show_progress:
                        progress.show()
                    self.tick()
                    if time.monotonic() > deadline:  # Locust did not stop by itself
                        proc.terminate()
                        deadline = time.monotonic() + 30.0
        _kill_group(proc.pid)
        if not Path(f"{prefix}_stats.csv").exists():
            tail = Path(log_path).read_text(errors="replace").strip().splitlines()[-10:]
            return (proc.returncode or 2), "locust failed before writing statistics:\n" + "\n".join(tail)
        if opts.locust_stats:  # Locust's own tables: its log less the log records
            tables = [x for x in Path(log_path).read_text(errors="replace").splitlines() if not x.startswith("[")]
            self.out.write("\nLocust's statistics\n" + "\n".join(tables) + "\n")
        summary = read_summary(prefix)
        summary["locust_exit_code"] = proc.returncode
        summary["interrupted"] = self.interrupted
        return self.report(summary, host, log_path)

    def tick(self) -> None:
        """Called every ``progress_interval`` while Locust runs (a subclass shows more)."""

    def report(self, summary: dict[str, Any], host: str, log_path: str) -> tuple[int, str]:
        """The summary, the hint, the JSON file; the exit status and the verdict line."""
        opts = self.opts
        print_summary(summary, self.out)
        if opts.role == "master":
            self.out.write(master_report(log_path, summary, opts.expect_workers) + "\n")
        if (advice := hint(summary, host)) is not None:
            self.out.write(f"\n{advice}\n")
        if summary.get("exceptions"):
            self.out.write(f"(the load generator's log: {log_path if opts.csv else 'rerun with --csv to keep it'})\n")
        code, line = verdict(summary, summary["locust_exit_code"], self.interrupted)
        summary["exit_code"] = code
        summary["verdict"] = line
        if opts.summary_json:
            Path(opts.summary_json).write_text(json.dumps(summary, indent=2))
        self.verdict_line = line
        return code, "\n" + line

    def _write_report(self, host: str, prefix: str, verdict_line: str) -> None:
        from .report import write_report  # matplotlib: only when a report is asked for

        o = self.opts
        parameters = {
            "host": host if o.host else f"embedded mock ({host})",
            "users": o.users,
            "spawn rate": f"{o.spawn_rate:g}/s",
            "run time": o.run_time,
            "scenarios": o.scenario,
            "pace": o.pace,
            "queues": o.queues,
            "seed": o.seed,
            "processes": o.processes,
            "auth": o.auth,
        }
        assert o.report is not None
        try:
            write_report(o.report, prefix, parameters=parameters, verdict=verdict_line)
        except OSError as exc:
            self.out.write(f"\ncannot write the report to {o.report}: {exc.strerror or exc}\n")
        else:
            self.out.write(f"\nreport written to {o.report}\n")


def _queue_poller(mock: MockProcess | None, prefix: str) -> Any:
    """The embedded mock's queue lengths, sampled for the report (none with ``--host``)."""
    if mock is None:
        return None
    from .report import QueuePoller

    return QueuePoller(mock.http, f"{prefix}_queue_history.csv")


def discover_rest_url(host: str) -> str | None:
    """The ``rest_url`` the server at websocket ``host`` reports on ``GET
    /healthz`` (the mock does, on each listener), asked once; ``None`` when it
    does not answer that: the users derive it (:meth:`Dialect.rest_url
    <simulator.load.dialect.Dialect.rest_url>`)."""
    scheme, _, rest = host.partition("://")
    url = ("https" if scheme == "wss" else "http") + "://" + rest.split("/", 1)[0].rpartition("@")[2] + "/healthz"
    try:
        with _NO_PROXY.open(url, timeout=3) as resp:
            body = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    rest_url = body.get("rest_url") if isinstance(body, dict) else None
    return rest_url if isinstance(rest_url, str) and rest_url.startswith(("http://", "https://")) else None


def _kill_group(pid: int) -> None:
    """End whatever is left of Locust's session (its ``--processes`` workers)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> float:
    """Seconds of a Locust time span (``90``, ``30s``, ``5m``, ``1h30m``);
    :class:`ValueError` otherwise."""
    text = text.strip().lower()
    if text.isdigit():
        return float(text)
    match = _DURATION.match(text)
    if not text or match is None:
        raise ValueError(f'"{text}" is not a duration (e.g. 30s, 5m, 1h30m)')
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def run_load(opts: LoadOptions, out: IO[str] = sys.stdout) -> int:
    """Run one load test; raises :class:`UsageError` for options that cannot
    work, before anything is started."""
    check_options(opts)
    return Runner(opts, out).run()


def check_options(opts: LoadOptions) -> None:
    """Reject what cannot run, in one line each, before anything starts."""
    try:
        parse_mix(opts.scenario)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    try:
        seconds = parse_duration(opts.run_time)
    except ValueError as exc:
        raise UsageError(f"--run-time: {exc}") from None
    if seconds <= 0:
        raise UsageError("--run-time must be more than 0s (Locust would run forever)")
    if opts.mock_args and opts.host:
        raise UsageError("--fault is a fault of the embedded mock: not with --host (run `webchat-sim serve --fault`)")
    for name, value in (("--users", opts.users), ("--spawn-rate", opts.spawn_rate)):
        if value <= 0:
            raise UsageError(f"{name} must be more than 0 (got {value:g})")
    if opts.processes == 0 or opts.processes < -1:
        raise UsageError(f"--processes must be a positive number or -1 for one per core (got {opts.processes})")
    if opts.agents < 0 or opts.agent_users < 0:
        raise UsageError("--agents and --agent-users must be 0 or more")
    if opts.timeout is not None and opts.timeout <= 0:
        raise UsageError(f"--timeout must be more than 0 seconds (got {opts.timeout:g})")
    if not [q for q in opts.queues.split(",") if q.strip()]:
        raise UsageError("--queues needs at least one queue name")
    if opts.report and importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--report needs matplotlib: pip install 'webchat-sim[report]'")
    if opts.auth not in ("query", "rest"):
        raise UsageError(f'--auth must be query or rest (got "{opts.auth}")')
    if opts.auth != "rest" and (opts.api_key or opts.rest_url):
        raise UsageError("--api-key and --rest-url are used with --auth rest only")
    if opts.auth == "rest" and opts.host is not None and not opts.api_key:
        raise UsageError("--auth rest against --host needs --api-key (the embedded mock makes one up)")
    if opts.rest_url is not None and not re.match(r"^https?://[^/\s]+", opts.rest_url):
        raise UsageError(
            f'--rest-url must be an http(s) URL such as http://127.0.0.1:8766/rest/v2 (got "{opts.rest_url}")'
        )
    try:
        parse_chaos(opts.chaos)
    except ValueError as exc:
        raise UsageError(f"--chaos: {exc}") from None
    if opts.role == "master" and opts.processes != 1:
        raise UsageError("--master runs no users itself: give --processes to the workers")
    if opts.host is not None and not re.match(r"^wss?://[^/\s]+", opts.host):
        raise UsageError(f'--host must be a websocket URL such as ws://127.0.0.1:8765/ws (got "{opts.host}")')
