"""``webchat-sim load --report FILE.html``: one self-contained HTML page of a run.

:func:`build_report` is a pure function of a Locust CSV prefix (the files
Locust writes with ``--csv PREFIX --csv-full-history``, plus the runner's
``PREFIX_queue_history.csv`` when it polled the embedded mock) to an HTML
string: the title, the run's parameters, the verdict line, the KPI table (the
numbers of the printed summary, :func:`~simulator.load.runner.read_summary`)
and the plots, drawn by matplotlib (Agg backend) as SVG inlined in the page.
Nothing in the page is fetched: no script, no style sheet, no font (SVG text
is drawn as paths).

Over time: users, chats started per second, failures per second, the queue
length (embedded mock only), and p50/p95/p99 of each timed KPI. Locust's
history percentiles are over its moving window of the last 10 seconds, not
over the whole run; the table's are over the whole run. Failures by reason are
totals (Locust's failures CSV has no time).

:class:`QueuePoller` is the I/O part: a thread that reads the mock's
``/healthz`` once a second during the run and writes the queue history CSV.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .looplag import lag_lines
from .meter import KPI
from .runner import KPI_ORDER, UNTIMED, read_summary

__all__ = ["QueuePoller", "build_report", "main_figure_png", "write_report"]

QUEUE_FIELDS = ("Timestamp", "Queue", "Waiting", "Chatting")
"""The columns of ``PREFIX_queue_history.csv``."""

PERCENTILES = (("50%", "p50"), ("95%", "p95"), ("99%", "p99"))
HEADLINE = (KPI.QUEUE_WAIT.value, KPI.FIRST_REPLY.value, KPI.MESSAGE_ACK.value, KPI.CONNECT.value)
"""The KPIs whose p95 the main plot shows."""

MAX_REASONS = 15
_QUEUE_COLORS = ("tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


@dataclass
class Series:
    """One request name's history: seconds since the start, and its columns."""

    t: list[float] = field(default_factory=list)
    columns: dict[str, list[float | None]] = field(default_factory=dict)

    def add(self, t: float, row: Mapping[str, str], names: Sequence[str]) -> None:
        self.t.append(t)
        for name in names:
            self.columns.setdefault(name, []).append(_num(row.get(name, "")))


def _num(text: str | None) -> float | None:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as fh:
            return list(csv.DictReader(fh))
    except (OSError, csv.Error):
        return []


def read_history(path: Path) -> tuple[dict[str, Series], float | None]:
    """Locust's stats history by request name (``Aggregated`` included) and
    the first timestamp (epoch seconds), ``None`` when there is none."""
    rows = [r for r in _rows(path) if _num(r.get("Timestamp")) is not None]
    if not rows:
        return {}, None
    start = min(float(r["Timestamp"]) for r in rows)
    names = ("User Count", "Total Request Count", "Total Failure Count", *(p for p, _ in PERCENTILES))
    series: dict[str, Series] = {}
    for row in rows:
        if row.get("Total Request Count") in ("0", "") or all(row.get(p) == "0" for p, _ in PERCENTILES):
            # nothing measured yet, or nothing in Locust's window: no percentile to show
            row = {**row, **{p: "" for p, _ in PERCENTILES}}
        series.setdefault(row.get("Name", ""), Series()).add(float(row["Timestamp"]) - start, row, names)
    for s in series.values():
        s.columns["per_second"] = _rate(s.t, s.columns["Total Request Count"])
        s.columns["failures_per_second"] = _rate(s.t, s.columns["Total Failure Count"])
    return series, start


def _rate(t: Sequence[float], totals: Sequence[float | None]) -> list[float | None]:
    """Per second between consecutive rows of a running total (Locust's own
    ``Requests/s`` is a moving average that lags a short run)."""
    rates: list[float | None] = [None]
    for i in range(1, len(t)):
        before, now, dt = totals[i - 1], totals[i], t[i] - t[i - 1]
        rates.append(None if before is None or now is None or dt <= 0 else max(0.0, now - before) / dt)
    return rates


def read_queue_history(path: Path, start: float | None) -> dict[str, Series]:
    """The runner's queue samples by queue name, on the same time axis."""
    rows = [r for r in _rows(path) if _num(r.get("Timestamp")) is not None]
    if not rows:
        return {}
    origin = start if start is not None else min(float(r["Timestamp"]) for r in rows)
    series: dict[str, Series] = {}
    for row in rows:
        series.setdefault(row.get("Queue", ""), Series()).add(
            float(row["Timestamp"]) - origin, row, ("Waiting", "Chatting")
        )
    return series


def _ordered(names: Sequence[str]) -> list[str]:
    order = [k.value for k in KPI_ORDER]
    return [n for n in order if n in names] + sorted(n for n in names if n not in order)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.fonttype": "path", "svg.hashsalt": "webchat-sim", "font.size": 9})
    import matplotlib.pyplot as plt

    return plt


def _plot(ax: Any, s: Series, column: str, label: str, **style: Any) -> bool:
    values = s.columns.get(column, [])
    points = [(t, v) for t, v in zip(s.t, values, strict=False) if v is not None]
    if not points:
        return False
    ax.plot([t for t, _ in points], [v for _, v in points], label=label, linewidth=1.4, **style)
    return True


def _finish(ax: Any, title: str, ylabel: str, *, legend: bool = True) -> None:
    ax.set_title(title, loc="left", fontsize=10)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8, frameon=False)


def main_figure(history: Mapping[str, Series], queues: Mapping[str, Series]) -> Any:
    """Users (and queue length), chats and failures per second, and the p95
    of the headline KPIs, over the run."""
    plt = _pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True, layout="constrained")
    agg = history.get("Aggregated", Series())
    _plot(axes[0], agg, "User Count", "users", color="tab:blue")
    for (name, s), color in zip(queues.items(), _QUEUE_COLORS, strict=False):
        _plot(axes[0], s, "Waiting", f"waiting in queue {name}", linestyle="--", color=color)
    _finish(axes[0], "Users" + (" and queue length" if queues else ""), "count")
    _plot(axes[1], history.get(KPI.START_CHAT.value, Series()), "per_second", "chats started/s", color="tab:green")
    _plot(axes[1], agg, "failures_per_second", "failures/s", color="tab:red")
    _finish(axes[1], "Chats started and failures per second", "per second")
    for name in HEADLINE:
        _plot(axes[2], history.get(name, Series()), "95%", f"{name} p95")
    _finish(axes[2], "p95 of the headline KPIs (Locust's moving window)", "ms")
    axes[2].set_xlabel("seconds since the start")
    return fig


def kpi_figure(history: Mapping[str, Series]) -> Any | None:
    """p50/p95/p99 of each timed KPI over the run, one small plot each."""
    names = [n for n in _ordered([n for n in history if n != "Aggregated"]) if n not in UNTIMED]
    names = [n for n in names if any(v for v in history[n].columns.get("50%", []))]
    if not names:
        return None
    plt = _pyplot()
    cols = 3
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(10, 2.4 * rows), squeeze=False, layout="constrained")
    for i, ax in enumerate(axes.flat):
        if i >= len(names):
            ax.set_visible(False)
            continue
        for (column, label), color in zip(PERCENTILES, ("tab:blue", "tab:orange", "tab:red"), strict=True):
            _plot(ax, history[names[i]], column, label, color=color)
        _finish(ax, names[i], "ms", legend=False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper right", ncols=3, frameon=False)
    return fig


def failures_figure(failures: Sequence[Mapping[str, Any]]) -> Any | None:
    """The failures by reason (totals), most frequent first."""
    if not failures:
        return None
    plt = _pyplot()
    top = list(failures[:MAX_REASONS])[::-1]
    labels = [_shorten(f"{f['name']}: {f['error']}", 90) for f in top]
    fig, ax = plt.subplots(figsize=(10, 0.8 + 0.32 * len(top)), layout="constrained")
    ax.barh(range(len(top)), [int(f["occurrences"]) for f in top], color="tab:red")
    ax.set_yticks(range(len(top)), labels, fontsize=8)
    ax.set_xlabel("occurrences")
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(fig: Any) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog, no metadata)."""
    plt = _pyplot()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def main_figure_png(prefix: str, path: str) -> None:
    """The report's main plot of the run at ``prefix`` as a PNG (for docs)."""
    history, start = read_history(Path(f"{prefix}_stats_history.csv"))
    queues = read_queue_history(Path(f"{prefix}_queue_history.csv"), start)
    fig = main_figure(history, queues)
    fig.savefig(path, format="png", dpi=110)
    _pyplot().close(fig)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _kpi_table(summary: Mapping[str, Any]) -> str:
    kpis: dict[str, dict[str, Any]] = summary["kpis"]
    head = "".join(f"<th>{h}</th>" for h in ("operation", "count", "fail", "p50", "p95", "p99", "mean", "per s"))
    body = []
    for name in _ordered(list(kpis)):
        r = kpis[name]
        timed = name not in UNTIMED and r["p50_ms"] is not None
        cells = [_fmt(r[k]) if timed else "-" for k in ("p50_ms", "p95_ms", "p99_ms", "mean_ms")]
        rate = "-" if r["per_second"] is None else f"{r['per_second']:.2f}"
        cls = ' class="bad"' if r["failures"] else ""
        body.append(
            f"<tr><td>{html.escape(name)}</td><td>{r['requests']}</td><td{cls}>{r['failures']}</td>"
            + "".join(f"<td>{c}</td>" for c in cells)
            + f"<td>{rate}</td></tr>"
        )
    return f'<table class="kpis"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _failures_table(failures: Sequence[Mapping[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{int(f['occurrences'])}</td><td>{html.escape(str(f['name']))}</td>"
        f"<td>{html.escape(str(f['error']))}</td></tr>"
        for f in failures
    )
    return f"<table><thead><tr><th>occurrences</th><th>operation</th><th>reason</th></tr></thead>{rows}</table>"


_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:1.5em;color:#222;background:#fff}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .7em;border-bottom:1px solid #eee}
table.kpis td:not(:first-child),table.kpis th:not(:first-child){text-align:right}
th{text-align:left;background:#f6f6f6}.bad{color:#b00;font-weight:600}
.verdict{font-size:1.15em;font-weight:600;padding:.5em .8em;border-radius:4px;display:inline-block}
.pass{background:#e6f4ea;color:#135f26}.fail{background:#fde7e7;color:#8a1111}
dl{display:grid;grid-template-columns:max-content auto;gap:.1em 1em}dt{color:#666}dd{margin:0}
svg{max-width:100%;height:auto}.note{color:#666;font-size:.9em}
"""


def build_report(
    prefix: str,
    *,
    parameters: Mapping[str, object],
    verdict: str,
    title: str = "webchat-sim load report",
) -> str:
    """The HTML page of the run whose Locust CSV files are at ``prefix``."""
    summary = read_summary(prefix)
    history, start = read_history(Path(f"{prefix}_stats_history.csv"))
    queues = read_queue_history(Path(f"{prefix}_queue_history.csv"), start)
    esc = html.escape
    params = "".join(f"<dt>{esc(str(k))}</dt><dd>{esc(str(v))}</dd>" for k, v in parameters.items())
    if start is not None:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(start))
        params += f"<dt>started</dt><dd>{started}</dd>"
    line = verdict.strip().removeprefix("result:").strip()
    cls = "pass" if line.startswith("PASS") else "fail"
    parts = [
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="verdict {cls}">result: {esc(line)}</p>',
        f"<h2>Run</h2><dl>{params}</dl>",
        "<h2>Chat KPIs (milliseconds, whole run)</h2>",
        _kpi_table(summary),
    ]
    chats, abandons = summary.get("chats", 0), summary.get("abandons", 0)
    if chats:
        parts.append(
            f"<p>{chats} chat(s) started, {abandons} abandoned while queued ({100 * abandons / chats:.1f}%)</p>"
        )
    for number, lag in enumerate(lag_lines(summary.get("loop_lag"))):  # the figures, then a warning if any
        parts.append(('<p class="note">' if number else "<p>") + esc(lag.strip()) + "</p>")
    if history:
        parts += ["<h2>Over time</h2>", _svg(main_figure(history, queues))]
        if not queues:
            parts.append('<p class="note">Queue length: polled from the embedded mock only (not with --host).</p>')
        if (fig := kpi_figure(history)) is not None:
            parts += [
                "<h2>Percentiles of each KPI over time</h2>",
                '<p class="note">p50/p95/p99 over Locust\'s moving window of the last 10 seconds.</p>',
                _svg(fig),
            ]
    else:
        parts.append('<p class="note">No statistics history was written: nothing to plot.</p>')
    if summary["failures"]:
        parts.append("<h2>Failures by reason</h2>")
        if (fig := failures_figure(summary["failures"])) is not None:
            parts.append(_svg(fig))
        parts.append(_failures_table(summary["failures"]))
    for exc in summary.get("exceptions", []):
        parts.append(
            f'<p class="bad">{int(exc["count"])} unexpected exception(s) in the load generator: '
            f"{esc(str(exc['message']))}</p>"
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(path: str, prefix: str, *, parameters: Mapping[str, object], verdict: str) -> None:
    Path(path).write_text(build_report(prefix, parameters=parameters, verdict=verdict), encoding="utf-8")


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class QueuePoller:
    """Reads ``GET {http}/healthz`` every ``interval`` seconds in a thread and
    appends each queue's waiting and chatting counts to ``path`` (CSV), until
    :meth:`stop`. A failed poll is skipped: the plot has a gap, the run goes on."""

    def __init__(self, http: str, path: str, *, interval: float = 1.0) -> None:
        self.url = http + "/healthz"
        self.interval = interval
        self._stop = threading.Event()
        self._fh: IO[str] = open(path, "w", newline="")  # noqa: SIM115 - closed by stop()
        self._csv = csv.writer(self._fh)
        self._csv.writerow(QUEUE_FIELDS)
        self._thread = threading.Thread(target=self._run, name="queue-poller", daemon=True)
        self._thread.start()

    def sample(self) -> None:
        try:
            with _NO_PROXY.open(self.url, timeout=2) as resp:
                body = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError):
            return
        queues = body.get("queues") if isinstance(body, dict) else None
        if not isinstance(queues, dict):
            return
        now = round(time.time(), 3)
        for name, q in queues.items():
            if isinstance(q, dict):
                self._csv.writerow((now, name, q.get("waiting", ""), q.get("chatting", "")))
        self._fh.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._fh.close()
