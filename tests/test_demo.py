"""``webchat-sim demo``: the mock plus a live population of customers, for a
few seconds of the fast pace; its options; and the load wing's
``--chat-pacing`` and ``--languages`` it relies on."""

from __future__ import annotations

import json
import re
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from simulator.demo import DEMO_MIX, DemoOptions, locust_command, parse_languages, status_line
from simulator.fake import LANGUAGES
from simulator.load.scenario import available_scenarios
from simulator.mock.app import MockOptions
from simulator.mock.store import Database
from simulator.pace import Pace, chat_pacing_wait
from tests.cli import ROOT, clean_env, run_cli

pytestmark = pytest.mark.timeout(90)

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> bytes:
    with _NO_PROXY.open(url, timeout=10) as response:
        data: bytes = response.read()
        return data


def test_the_mix_has_all_eight_scenario_kinds() -> None:
    names = {part.split(":")[0] for part in DEMO_MIX.split(",")}
    assert names == set(available_scenarios()) and len(names) == 8


def test_arrivals_become_customers_and_pacing() -> None:
    human = DemoOptions(arrival_rate=0.1)
    assert (human.pacing, human.customers) == (180.0, 18)
    fast = DemoOptions(mock=MockOptions(pace=Pace.FAST), arrival_rate=2.0)
    assert (fast.pacing, fast.customers) == (4.0, 8)
    cmd = locust_command(fast, "ws://127.0.0.1:1/ws")
    assert cmd[cmd.index("--users") + 1] == "8" and cmd[cmd.index("--chat-pacing") + 1] == "4.0"
    assert cmd[cmd.index("--scenario") + 1] == DEMO_MIX and cmd[-1] == "CustomerUser"


def test_languages_are_checked() -> None:
    assert parse_languages("fr, de,fr") == ("fr", "de")
    with pytest.raises(ValueError, match="unsupported language"):
        parse_languages("fr,xx")
    proc = run_cli("demo", "--languages", "klingon", timeout=30)
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert "--languages" in line and "klingon" in line and "choose from en, " in line


def test_status_line_sums_the_queues() -> None:
    status = {
        "queues": {"a": {"waiting": 2, "chatting": 1, "agents": 2}, "b": {"waiting": 1, "chatting": 3, "agents": 1}},
        "conversations": {"open": 7, "closed": 9},
        "sockets": 12,
        "frames_in": 1500,
        "frames_out": 4000,
    }
    assert status_line(status) == (
        "demo: 3 waiting, 4 chatting, 9 closed, 3 agent(s) in queues; 12 sockets, 1,500 frames in, 4,000 out"
    )


def test_chat_pacing_spaces_a_customers_chats() -> None:
    assert chat_pacing_wait(10.0, None, 100.0) == 0.0  # the first chat starts at spawn
    assert chat_pacing_wait(10.0, 96.0, 100.0) == 6.0
    assert chat_pacing_wait(10.0, 70.0, 100.0) == 0.0  # took longer than the pacing: at once
    assert chat_pacing_wait(0.0, 99.0, 100.0) == 0.0
    assert parse_languages("") == LANGUAGES or set(parse_languages("")) == set(LANGUAGES)


def test_locust_refuses_unknown_languages_in_one_line() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(ROOT / "locustfile.py"),
            "--headless",
            "--users",
            "1",
            "--run-time",
            "1s",
            "--host",
            "ws://127.0.0.1:9/ws",
            "--languages",
            "en,xx",
            "CustomerUser",
        ],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "webchat-sim: --languages: unsupported language(s) xx" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_few_seconds_of_demo_open_conversations_and_metrics_count_them(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "simulator",
        "demo",
        "--port",
        "0",
        "--pace",
        "fast",
        "--arrival-rate",
        "3",
        "--run-time",
        "20s",
        "--seed",
        "5",
    ]
    env = clean_env(XDG_DATA_HOME=str(tmp_path))  # the demo keeps its database there by default
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None
    lines: list[str] = []
    errors = ""
    web_url = None
    deadline = time.monotonic() + 60
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not selector.select(max(0.01, deadline - time.monotonic())):
                    break
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if web_url is None and (found := re.search(r"demo: dashboard (http://\S+/) ", line)):
                    web_url = found.group(1)
                if web_url and line.startswith("demo:") and int(re.findall(r"(\d+) closed", line)[0]) >= 5:
                    break  # conversations went through: look at the metrics while it runs
            assert web_url is not None, "".join(lines)
            health = json.loads(_get(web_url + "healthz"))
            assert health["conversations"]["closed"] >= 5, "".join(lines)
            metrics = _get(web_url + "metrics").decode()
            closed = float(re.findall(r"^webchat_conversations_closed_total (\S+)$", metrics, re.M)[0])
            messages = float(re.findall(r'^webchat_frames_received_total\{type="message"\} (\S+)$', metrics, re.M)[0])
            assert closed >= 5 and messages >= 5, metrics
            assert re.search(r"^webchat_relay_latency_seconds_count [1-9]", metrics, re.M), metrics
        rest, errors = proc.communicate(timeout=60)  # --run-time ends it
        lines.append(rest)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(20)
    output = "".join(lines)
    assert proc.returncode == 0, output
    assert "webchat-sim demo served:" in output
    assert "Traceback" not in errors
    stored = Database(tmp_path / "webchat-sim" / "demo.db", create=False).info()
    assert stored["counts"]["conversations"] >= 5, stored
