"""The status line of a ``webchat-sim load`` run in progress (:class:`Progress`),
read from the CSV files Locust rewrites every second, and the CSV readers the
summary shares."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import IO

from .meter import KPI

__all__ = ["Progress"]


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _read_rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as fh:
            return list(csv.DictReader(fh))
    except (OSError, csv.Error):
        return []


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


class Progress:
    """The status line of a run in progress, from the CSV files Locust
    rewrites every second: users, chats per second, p95 queue wait and first
    reply, failures."""

    def __init__(self, prefix: str, out: IO[str]) -> None:
        self.prefix = prefix
        self.out = out
        self.started = time.monotonic()
        self._last: tuple[float, int] | None = None
        self.shown = False

    def line(self) -> str | None:
        rows = {r["Name"]: r for r in _read_rows(Path(f"{self.prefix}_stats.csv"))}
        if not rows:
            return None
        history = _read_rows(Path(f"{self.prefix}_stats_history.csv"))
        users = history[-1].get("User Count", "?") if history else "?"
        now = time.monotonic()

        def count(name: str, column: str = "Request Count") -> int:
            row = rows.get(name)
            return int(row[column]) if row and row[column].isdigit() else 0

        def p95(name: str) -> str:
            row = rows.get(name)
            return _fmt(_num(row["95%"])) if row else "-"

        chats = count(KPI.START_CHAT.value)
        rate = 0.0
        if self._last is not None and now > self._last[0]:
            rate = max(0, chats - self._last[1]) / (now - self._last[0])
        self._last = (now, chats)
        failures = count("Aggregated", "Failure Count")
        return (
            f"[{now - self.started:5.0f}s] users {users}, chats {chats} ({rate:.1f}/s), "
            f"p95 queue wait {p95(KPI.QUEUE_WAIT.value)} ms, first reply {p95(KPI.FIRST_REPLY.value)} ms, "
            f"failures {failures}"
        )

    def show(self) -> None:
        if (text := self.line()) is not None:
            self.out.write(text + "\n")
            self.out.flush()
            self.shown = True
