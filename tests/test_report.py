"""``webchat-sim load --report``: the page is built from Locust's CSV files
alone, holds the summary's numbers and inline SVG plots, fetches nothing, and
a real short run writes it."""

from __future__ import annotations

import csv
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from simulator.load.report import build_report, main_figure_png, read_history
from tests.cli import run_cli

pytestmark = pytest.mark.timeout(120)

STATS = [
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
    "50%",
    "66%",
    "75%",
    "80%",
    "90%",
    "95%",
    "98%",
    "99%",
    "99.9%",
    "99.99%",
    "100%",
]
HISTORY = [
    "Timestamp",
    "User Count",
    "Type",
    "Name",
    "Requests/s",
    "Failures/s",
    "50%",
    "66%",
    "75%",
    "80%",
    "90%",
    "95%",
    "98%",
    "99%",
    "99.9%",
    "99.99%",
    "100%",
    "Total Request Count",
    "Total Failure Count",
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
    "Total Average Content Size",
]
EVIL = '<script src="https://evil.example/x.js"></script>'


def _write(path: Path, fields: list[str], rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fields, restval="")
        writer.writeheader()
        writer.writerows(rows)


def _stat(name: str, count: int, fail: int, p50: str, p95: str, p99: str) -> dict[str, object]:
    return {
        "Type": "WS",
        "Name": name,
        "Request Count": count,
        "Failure Count": fail,
        "50%": p50,
        "95%": p95,
        "99%": p99,
        "Average Response Time": p50,
        "Requests/s": "1.5",
    }


def synthetic_run(tmp_path: Path, *, seconds: int = 6, history: bool = True) -> str:
    prefix = str(tmp_path / "run")
    _write(
        Path(f"{prefix}_stats.csv"),
        STATS,
        [
            _stat("start chat", 40, 0, "5", "120", "240"),
            _stat("queue wait", 40, 2, "7", "130", "250"),
            _stat("first reply", 38, 3, "19", "420", "910"),
            _stat("message ack", 150, 0, "2", "10", "80"),
            _stat("message lost", 3, 3, "N/A", "N/A", "N/A"),
            _stat("Aggregated", 271, 8, "4", "120", "400"),
        ],
    )
    _write(
        Path(f"{prefix}_failures.csv"),
        ["Method", "Name", "Error", "Occurrences"],
        [
            {"Method": "WS", "Name": "first reply", "Error": "TimeoutError('no reply in 30s')", "Occurrences": 3},
            {"Method": "WS", "Name": "queue wait", "Error": EVIL, "Occurrences": 2},
            {"Method": "WS", "Name": "message lost", "Error": "3 message(s) never delivered", "Occurrences": 3},
        ],
    )
    rows: list[dict[str, object]] = []
    if history:
        for i in range(seconds):
            for name in ("start chat", "queue wait", "first reply", "message ack", "Aggregated"):
                total = i * 7
                rows.append(
                    {
                        "Timestamp": 1_700_000_000 + i,
                        "User Count": min(5, i + 1),
                        "Type": "WS",
                        "Name": name,
                        "Requests/s": "1.0",
                        "Failures/s": "0.0",
                        "50%": "N/A" if i == 0 else 5 + i,
                        "95%": "N/A" if i == 0 else 50 + 10 * i,
                        "99%": "N/A" if i == 0 else 90 + 20 * i,
                        "Total Request Count": total,
                        "Total Failure Count": i // 2,
                    }
                )
    _write(Path(f"{prefix}_stats_history.csv"), HISTORY, rows)
    if history:
        _write(
            Path(f"{prefix}_queue_history.csv"),
            ["Timestamp", "Queue", "Waiting", "Chatting"],
            [{"Timestamp": 1_700_000_000.5 + i, "Queue": "support", "Waiting": i % 3, "Chatting": i} for i in range(6)],
        )
    return prefix


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str] = []
        self.closed: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.opened.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href", "xlink:href") and v and "//" in v]

    def handle_endtag(self, tag: str) -> None:
        self.closed.append(tag)


def _check_self_contained(page: str) -> _Tags:
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    tags = _Tags()
    tags.feed(page)
    for tag in ("html", "head", "title", "style", "body", "table"):
        assert tag in tags.opened and tag in tags.closed, tag
    assert "script" not in tags.opened and "link" not in tags.opened and "img" not in tags.opened
    assert tags.urls == []  # nothing is fetched: every href is a #fragment inside an inline SVG
    assert not re.search(r"url\(\s*['\"]?https?:|@import|@font-face", page)
    return tags


def test_the_page_holds_the_kpi_table_the_verdict_and_inline_plots(tmp_path: Path) -> None:
    prefix = synthetic_run(tmp_path)
    page = build_report(prefix, parameters={"users": 5, "run time": "6s"}, verdict="result: FAIL (8 failure(s))")
    tags = _check_self_contained(page)
    assert tags.opened.count("svg") == 3  # over time, percentiles per KPI, failures by reason
    for kpi in ("start chat", "queue wait", "first reply", "message ack", "message lost"):
        assert f"<td>{kpi}</td>" in page
    # the summary's numbers: first reply 38 requests, 3 failures, p50/p95/p99 19/420/910, mean 19
    assert '<td>first reply</td><td>38</td><td class="bad">3</td><td>19</td><td>420</td><td>910</td>' in page
    assert '<td>message lost</td><td>3</td><td class="bad">3</td><td>-</td><td>-</td>' in page  # untimed
    assert "result: FAIL (8 failure(s))" in page and "<dt>users</dt><dd>5</dd>" in page
    assert "40 chat(s) started" in page
    assert "<!-- waiting in queue support -->" in page  # the plot's legend (matplotlib keeps text as comments)
    assert "<!-- first reply -->" in page
    # a failure reason is text, never markup
    assert EVIL not in page and html_escaped(EVIL) in page


def html_escaped(text: str) -> str:
    import html

    return html.escape(text)


def test_a_run_without_history_or_failures_still_gives_a_page(tmp_path: Path) -> None:
    prefix = synthetic_run(tmp_path, history=False)
    Path(f"{prefix}_failures.csv").unlink()
    page = build_report(prefix, parameters={}, verdict="result: PASS (0 failures)")
    _check_self_contained(page)
    assert "nothing to plot" in page and "Failures by reason" not in page and "<svg" not in page
    assert 'class="verdict pass"' in page


def test_missing_files_give_an_empty_page_not_a_crash(tmp_path: Path) -> None:
    page = build_report(str(tmp_path / "nothing"), parameters={}, verdict="result: FAIL (nothing was measured)")
    assert "nothing to plot" in page and 'class="verdict fail"' in page


def test_chats_per_second_come_from_the_running_totals(tmp_path: Path) -> None:
    history, start = read_history(Path(synthetic_run(tmp_path)).with_name("run_stats_history.csv"))
    assert start == 1_700_000_000
    chats = history["start chat"]
    assert chats.t == [0, 1, 2, 3, 4, 5]
    assert chats.columns["per_second"] == [None, 7, 7, 7, 7, 7]
    assert chats.columns["95%"][0] is None and chats.columns["95%"][1] == 60  # "N/A" is no point


def test_the_main_plot_renders_to_png(tmp_path: Path) -> None:
    out = tmp_path / "main.png"
    main_figure_png(synthetic_run(tmp_path), str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_load_report_end_to_end(tmp_path: Path) -> None:
    report = tmp_path / "out" / "report.html"
    proc = run_cli(
        "load",
        "--users",
        "5",
        "--run-time",
        "5s",
        "--pace",
        "fast",
        "--report",
        str(report),
        "--csv",
        str(tmp_path / "run"),
        timeout=90,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"report written to {report}" in proc.stdout
    page = report.read_text()
    tags = _check_self_contained(page)
    assert tags.opened.count("svg") >= 2
    assert "result: PASS (0 failures)" in page and "<td>start chat</td>" in page
    assert "<!-- users -->" in page and "<!-- chats started/s -->" in page
    assert "<!-- waiting in queue support -->" in page  # polled from the embedded mock's /healthz
    queue_rows = list(csv.DictReader((tmp_path / "run_queue_history.csv").open()))
    assert len(queue_rows) >= 3 and {r["Queue"] for r in queue_rows} == {"support"}
    history = list(csv.DictReader((tmp_path / "run_stats_history.csv").open()))
    assert {"start chat", "Aggregated"} <= {r["Name"] for r in history}  # --csv-full-history was passed


def test_report_without_matplotlib_is_one_line_before_anything_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from simulator.errors import UsageError
    from simulator.load import runner

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name))
    with pytest.raises(UsageError, match=r"--report needs matplotlib: pip install 'webchat-sim\[report\]'"):
        runner.check_options(runner.LoadOptions(report="x.html"))
    runner.check_options(runner.LoadOptions())  # no report: no matplotlib needed


def test_a_report_that_cannot_be_written_is_one_line_and_the_verdict_stands(tmp_path: Path) -> None:
    proc = run_cli(
        "load", "--users", "2", "--run-time", "2s", "--pace", "fast", "--report", str(tmp_path), timeout=60
    )  # a folder: the page cannot be written there
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"cannot write the report to {tmp_path}" in proc.stdout and "result: PASS" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_the_page_shows_the_generators_loop_lag_and_its_warning(tmp_path: Path) -> None:
    import json

    from simulator.load.looplag import LagHistogram, lag_path

    prefix = synthetic_run(tmp_path, history=False)
    lag = LagHistogram()
    for ms in (0.2, 0.4, 30.0):
        lag.add(ms)
    lag_path(prefix).write_text(json.dumps({**lag.to_json(), "interval_ms": 50}))
    page = build_report(prefix, parameters={}, verdict="result: PASS (0 failures)")
    _check_self_contained(page)
    assert "<p>Generator event-loop lag: p50 0.4 ms, p99 30.0 ms, max 30.0 ms" in page
    assert '<p class="note">warning: event-loop lag p99 above 10 ms' in page
