"""Fault injection (simulator/mock/faults.py and its websocket shell): the
parsing, the seeded decider, and each fault against a real server on
127.0.0.1 (random ports) with real clients, toggled over ``/admin/faults``."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from simulator.mock.app import MockOptions, build_core, build_door
from simulator.mock.engine import EngineConfig
from simulator.mock.faults import FaultConfig, FaultDecider, format_span, parse_fault, parse_profile, parse_span
from simulator.mock.http import HttpSide, make_app
from simulator.mock.server import ServerConfig, WebchatServer
from simulator.pace import Pace
from tests.cli import clean_env, run_cli

pytestmark = pytest.mark.timeout(60)

Json = dict[str, Any]


# Parsing and the decider (no I/O)


@pytest.mark.parametrize(
    ("text", "span"),
    [("50ms-400ms", (0.05, 0.4)), ("2s-10s", (2.0, 10.0)), ("200ms", (0.2, 0.2)), ("0.5s-1s", (0.5, 1.0))],
)
def test_spans_parse(text: str, span: tuple[float, float]) -> None:
    assert parse_span(text) == pytest.approx(span)
    assert parse_span(format_span(parse_span(text)) or "") == parse_span(text)


@pytest.mark.parametrize("text", ["0", "off", "none", "0ms"])
def test_a_zero_span_is_off(text: str) -> None:
    assert parse_span(text) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("drop=2", "drop: 2 is not a probability between 0 and 1"),
        ("drop=often", "drop: 'often' is not a probability such as 0.01"),
        ("drop=nan", "drop: nan is not a probability between 0 and 1"),
        ("latency=400ms-50ms", "latency: 400ms-50ms: the upper bound is below the lower one"),
        ("latency=50", "latency: '50' is not a duration such as 50ms or 2s"),
        ("latency=2m", "latency: '2m' is not a duration such as 50ms or 2s"),
        ("latency=90s", "latency: 90s is more than 60s"),
        ("jitter=0.1", "unknown fault 'jitter'"),
        ("drop", "expected NAME=VALUE"),
        ("seed=x", "seed: must be an integer"),
    ],
)
def test_bad_values_are_refused_in_one_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        parse_fault(text)
    assert "\n" not in str(info.value)


def test_a_profile_skips_comments_and_names_its_bad_line() -> None:
    text = "# a flaky network\nlatency=50ms-400ms  # per frame\n\ndrop=0.01\nslow-agent=2s-10s\nseed=3\n"
    settings = parse_profile(text, "net.txt")
    config = FaultConfig().updated(settings)
    assert config == FaultConfig(latency=(0.05, 0.4), drop=0.01, slow_agent=(2.0, 10.0), seed=3)
    assert config.to_json()["latency"] == "50ms-400ms" and config.to_json()["slow-agent"] == "2s-10s"
    with pytest.raises(ValueError, match=r"^net.txt, line 2: drop: 1.5 is not a probability between 0 and 1$"):
        parse_profile("drop=0.1\ndrop=1.5\n", "net.txt")


def test_json_values_null_and_zero_turn_a_fault_off() -> None:
    config = FaultConfig().updated({"drop": 0.05, "latency": "10ms-50ms", "duplicate": "0.5"}.items())
    assert (config.drop, config.latency, config.duplicate) == (0.05, (0.01, 0.05), 0.5)
    assert config.active
    off = config.updated({"drop": None, "latency": 0, "duplicate": 0}.items())
    assert off == FaultConfig() and not off.active
    with pytest.raises(ValueError, match="drop: must be a string or a number"):
        config.with_setting("drop", True)


def test_the_same_seed_gives_the_same_decisions() -> None:
    config = FaultConfig(drop=0.2, duplicate=0.2, disconnect=0.05, reorder=0.1, latency=(0.01, 0.05))

    def draws(seed: int) -> list[Any]:
        decider = FaultDecider(config, seed=seed)
        return [decider.decide() for _ in range(500)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    decider = FaultDecider(config, seed=1)
    decisions = [decider.decide() for _ in range(2000)]
    counts = decider.injected
    assert counts["drop"] == sum(d.drop for d in decisions)
    assert counts["disconnect"] == sum(d.disconnect for d in decisions)
    assert counts["duplicate"] == sum(d.duplicate for d in decisions)
    assert 0.05 * 2000 < counts["drop"] < 0.3 * 2000  # about 0.2 of what the disconnects left
    assert all(0.01 <= d.delay <= 0.05 for d in decisions if not (d.drop or d.disconnect))
    assert FaultDecider(FaultConfig(seed=5, drop=0.5)).decide() == FaultDecider(FaultConfig(drop=0.5), seed=5).decide()


def test_nothing_is_decided_without_faults() -> None:
    decider = FaultDecider()
    assert not decider
    assert decider.decide().delay == 0 and not decider.decide().drop
    assert decider.think_delay() == 0.0
    assert set(decider.injected.values()) == {0}


# Against a real server


def run(coro: Coroutine[Any, Any, None], timeout: float = 30.0) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(timeout):
            await coro

    asyncio.run(bounded())


@asynccontextmanager
async def mock(*, agents: int = 0, **faults: Any) -> AsyncIterator[tuple[WebchatServer, str]]:
    """A server (faults from the start, seed 1) and its HTTP side; yields the server and the HTTP base URL."""
    options = MockOptions(
        server=ServerConfig(port=0, faults=FaultConfig().updated(faults.items()), fault_seed=1),
        engine=EngineConfig(position_interval=0.05, status_interval=0.05, reconnect_grace=10.0),
        agents=agents,
        pace=Pace.FAST,
        seed=7,
    )
    server = WebchatServer(build_core(options), options.server)
    await server.start()
    web = HttpSide(make_app(server, build_door(options)), "127.0.0.1", 0)
    await web.start()
    try:
        yield server, web.base_url
    finally:
        await web.stop()
        await server.stop()


async def put_faults(base: str, body: Any, *, status: int = 200) -> Json:
    async with aiohttp.ClientSession() as http, http.put(f"{base}/admin/faults", json=body) as response:
        assert response.status == status, await response.text()
        data: Json = await response.json()
        return data


async def get_json(base: str, path: str) -> Json:
    async with aiohttp.ClientSession() as http, http.get(base + path) as response:
        assert response.status == 200
        data: Json = await response.json()
        return data


async def recv(ws: ClientConnection, timeout: float = 5.0) -> Json:
    async with asyncio.timeout(timeout):
        raw = await ws.recv()
    assert isinstance(raw, str)
    frame: Json = json.loads(raw)
    return frame


async def nothing_within(ws: ClientConnection, seconds: float) -> None:
    """No frame arrives within ``seconds`` (what a lost frame looks like)."""
    with pytest.raises(TimeoutError):
        await recv(ws, seconds)


async def until(ws: ClientConnection, predicate: Callable[[Json], bool], timeout: float = 5.0) -> Json:
    async with asyncio.timeout(timeout):
        while True:
            if predicate(frame := await recv(ws)):
                return frame


def is_event(name: str) -> Callable[[Json], bool]:
    return lambda f: f.get("event_type") == name


PING = json.dumps({"type": "ping"})
AGENT = "role=agent&name=Ada&queues=support"


def open_ws(server: WebchatServer, query: str) -> Any:
    return connect(f"{server.url}?{query}", proxy=None, open_timeout=5)


def test_drop_1_a_second_connection_receives_nothing_then_everything_once_off() -> None:
    async def scenario() -> None:
        async with mock() as (server, base), open_ws(server, AGENT) as first:
            await until(first, is_event("queue status update"))
            answer = await put_faults(base, {"drop": 1})
            assert answer["faults"]["config"]["drop"] == 1
            async with open_ws(server, "role=agent&name=Bob&queues=support") as second:
                await second.send(PING)
                await nothing_within(second, 0.5)  # not even its connect's queue status update
                await first.send(PING)  # frames written before the PUT may still come; not its answer
                with pytest.raises(TimeoutError):
                    await until(first, lambda f: f.get("type") == "ping", 0.3)
                await put_faults(base, {"drop": None})
                await second.send(PING)
                assert (await until(second, lambda f: f.get("type") == "ping"))["type"] == "ping"
            health = await get_json(base, "/healthz")
            assert health["faults"]["injected"]["drop"] >= 3
            assert health["faults"]["config"]["drop"] == 0
            metrics = await _metrics(base)
            assert f'webchat_faults_injected_total{{fault="drop"}} {health["faults"]["injected"]["drop"]}.0' in metrics

    run(scenario())


async def _metrics(base: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as response:
        assert response.status == 200
        return await response.text()


def test_duplicate_1_shows_each_frame_twice() -> None:
    async def scenario() -> None:
        async with mock(duplicate=1) as (server, base), open_ws(server, AGENT) as ws:
            first = await recv(ws)
            assert await recv(ws) == first
            await ws.send(json.dumps({"type": "ping"}))
            frames = [await until(ws, lambda f: f.get("type") == "ping"), await recv(ws)]
            assert frames == [{"type": "ping"}, {"type": "ping"}]
            assert (await get_json(base, "/healthz"))["faults"]["injected"]["duplicate"] >= 2

    run(scenario())


def _start(question: str) -> str:
    engage = {"conversation_participant_name": "Chris", "question": question, "queue_name": "support"}
    return json.dumps({"type": "event", "event_type": "webchat start conversation", "event_engage_customer": engage})


def is_ack(frame: Json) -> bool:
    return str(frame["message"].get("client_message_id", "")).startswith("lat-")


@pytest.mark.parametrize(("span", "least", "shown"), [("200ms-200ms", 0.195, "200ms"), ("1ms-150ms", 0.0, "1ms-150ms")])
def test_latency_delays_each_frame_and_keeps_the_order(span: str, least: float, shown: str) -> None:
    async def scenario() -> None:
        async with mock() as (server, base), open_ws(server, AGENT) as agent:
            await until(agent, is_event("queue status update"))
            async with open_ws(server, "role=customer&lang=en") as customer:
                await customer.send(_start("Where is my order?"))
                conv = (await until(customer, is_event("new conversation")))["conversation_uuid"]
                await until(agent, lambda f: f.get("type") == "message")  # the question: engaged
                await put_faults(base, {"latency": span})
                sent: dict[str, float] = {}
                for i in range(20):
                    sent[f"lat-{i}"] = time.monotonic()
                    message = {"body": f"message {i}", "client_message_id": f"lat-{i}"}
                    await customer.send(json.dumps({"type": "message", "conversation_uuid": conv, "message": message}))
                got = []
                while len(got) < 20:
                    frame = await until(agent, lambda f: f.get("type") == "message")
                    got.append((frame["message"]["body"], time.monotonic()))
                assert [body for body, _ in got] == [f"message {i}" for i in range(20)]
                for i, (_, arrived) in enumerate(got):
                    assert arrived - sent[f"lat-{i}"] >= least
                acks = [await until(customer, lambda f: f.get("type") == "message" and is_ack(f)) for _ in range(20)]
                assert [a["message"]["client_message_id"] for a in acks] == list(sent)
            health = await get_json(base, "/healthz")
            assert health["faults"]["injected"]["latency"] >= 40
            assert health["faults"]["config"]["latency"] == shown

    run(scenario())


def test_disconnect_1_aborts_and_the_session_resumes_once_it_is_off() -> None:
    async def scenario() -> None:
        async with mock() as (server, base):
            async with open_ws(server, AGENT) as ws:
                status = await until(ws, is_event("queue status update"))
                token = status["resume_token"]
                await put_faults(base, {"disconnect": 1.0})
                await ws.send(PING)
                with pytest.raises(ConnectionClosed) as info:
                    await until(ws, lambda f: False)  # frames written before the PUT may still come
                assert info.value.rcvd is None  # no close frame: 1006
                assert ws.close_code == 1006
            answer = await put_faults(base, {"disconnect": 0})
            assert answer["faults"]["injected"]["disconnect"] == 1
            async with open_ws(server, f"{AGENT}&token={token}") as again:
                resumed = await until(again, is_event("queue status update"))
                assert resumed.get("error") is None
                await again.send(PING)
                await until(again, lambda f: f.get("type") == "ping")
            assert 'webchat_faults_injected_total{fault="disconnect"} 1.0' in await _metrics(base)

    run(scenario())


def test_reorder_1_holds_a_lone_frame_back_then_sends_it() -> None:
    async def scenario() -> None:
        async with mock() as (server, base), open_ws(server, AGENT) as ws:
            await until(ws, is_event("queue status update"))
            await put_faults(base, {"reorder": 1})
            started = time.monotonic()
            await ws.send(PING)
            assert (await until(ws, lambda f: f.get("type") == "ping"))["type"] == "ping"
            assert time.monotonic() - started >= 0.4  # held back, then sent alone after the hold time
            assert (await get_json(base, "/healthz"))["faults"]["injected"]["reorder"] >= 1

    run(scenario())


def test_stall_stops_reading_and_a_frame_sent_meanwhile_is_answered_late() -> None:
    """``stall=1`` with ``stall-time=800ms``: after each frame it sends, the
    server reads nothing from that connection for 0.8 s; a ping sent then is
    answered only once reading resumes."""

    async def scenario() -> None:
        async with mock() as (server, base), open_ws(server, AGENT) as ws:
            await recv(ws)  # the connect-time status update, before the stall is on
            await put_faults(base, {"stall": 1, "stall-time": "800ms"})
            await ws.send(json.dumps({"type": "ping"}))
            await until(ws, lambda f: f.get("type") == "ping")  # its answer starts a stall
            sent = time.monotonic()
            await ws.send(json.dumps({"type": "ping"}))
            await until(ws, lambda f: f.get("type") == "ping", timeout=5)
            assert time.monotonic() - sent >= 0.6
            faults = (await get_json(base, "/healthz"))["faults"]
            assert faults["injected"]["stall"] >= 1 and faults["config"]["stall-time"] == "800ms"

    run(scenario())


def test_slow_agent_delays_the_autopilot() -> None:
    async def scenario() -> None:
        async with mock(agents=1) as (server, base):
            await put_faults(base, {"slow-agent": "1s-1s"})
            async with open_ws(server, "role=customer&lang=en") as customer:
                await customer.send(_start("Hello?"))
                started = time.monotonic()
                answer = await until(
                    customer, lambda f: f.get("type") == "message" and "Hello?" not in f["message"]["body"], 15
                )
                assert answer["message"]["body"]
                assert time.monotonic() - started >= 1.0
            assert (await get_json(base, "/healthz"))["faults"]["injected"]["slow-agent"] >= 1

    run(scenario())


def test_admin_faults_get_put_and_bad_bodies() -> None:
    async def scenario() -> None:
        async with mock(drop=0.5) as (server, base):
            shown = await get_json(base, "/admin/faults")
            assert shown["faults"]["config"]["drop"] == 0.5 and shown["faults"]["config"]["latency"] is None
            assert server.faults is not None
            new = await put_faults(base, {"drop": 0, "latency": "10ms-50ms", "duplicate": 0.05})
            config = new["faults"]["config"]
            assert (config["drop"], config["latency"], config["duplicate"]) == (0, "10ms-50ms", 0.05)
            await put_faults(base, {"latency": None, "duplicate": None})
            assert server.faults is None  # all off: the hot path again
            for body, code in (
                ({"drop": 7}, "invalid_value"),
                ({"latency": "fast"}, "invalid_value"),
                ({"jitter": 0.1}, "unknown_field"),
                ({"drop": True}, "invalid_type"),
                ([1, 2], "invalid_body"),
            ):
                error = await put_faults(base, body, status=400)
                assert error["success"] is False and error["error"]["error_code"] == code, error
            async with aiohttp.ClientSession() as http, http.put(f"{base}/admin/faults", data=b"{") as response:
                assert response.status == 400
            await put_faults(base, {"drop": 0.2, "latency": "9s-1s"}, status=400)  # all or nothing
            assert (await get_json(base, "/admin/faults"))["faults"]["config"]["drop"] == 0

    run(scenario())


def test_admin_faults_need_an_agent_credential_with_api_keys() -> None:
    async def scenario() -> None:
        options = MockOptions(server=ServerConfig(port=0), agents=0, api_keys={"k-alice": "Alice"})
        server = WebchatServer(build_core(options), options.server)
        await server.start()
        web = HttpSide(make_app(server, build_door(options)), "127.0.0.1", 0)
        await web.start()
        try:
            async with aiohttp.ClientSession() as http:
                async with http.put(f"{web.base_url}/admin/faults", json={"drop": 1}) as response:
                    assert response.status == 401
                assert server.faults is None
                headers = {"x-ultracart-simple-key": "k-alice"}
                async with http.put(f"{web.base_url}/admin/faults", json={"drop": 1}, headers=headers) as response:
                    assert response.status == 200
                assert server.faults is not None
        finally:
            await web.stop()
            await server.stop()

    run(scenario())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault", "drop=2"], "argument --fault: drop: 2 is not a probability between 0 and 1"),
        (["--fault", "latency=fast"], "argument --fault: latency: 'fast' is not a duration such as 50ms or 2s"),
        (["--fault", "wobble=1"], "argument --fault: unknown fault 'wobble'"),
    ],
)
def test_bad_fault_values_are_one_line_with_exit_2(args: list[str], message: str) -> None:
    result = run_cli("serve", "--port", "0", *args, timeout=30)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


def test_a_bad_fault_profile_line_is_one_line_with_exit_2(tmp_path: Path) -> None:
    profile = tmp_path / "faults.txt"
    profile.write_text("# flaky\ndrop=0.01\nduplicate=lots\n")
    result = run_cli("serve", "--port", "0", "--fault-profile", str(profile), timeout=30)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"{profile}, line 3: duplicate: 'lots' is not a probability such as 0.01" in result.stderr


def test_serve_with_faults_says_so_and_serves(tmp_path: Path) -> None:
    profile = tmp_path / "faults.txt"
    profile.write_text("drop=0.5  # half\nseed=4\n")
    cmd = ["serve", "--port", "0", "--agents", "0", "--fault-profile", str(profile), "--fault", "latency=10ms-20ms"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()
        rest = proc.stdout.readline().split()  # webchat-sim REST <url> web <url> (health: <base>/healthz, ...)
        base = rest[6].removesuffix("/healthz,")
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(base + "/admin/faults", timeout=10) as r:
            config = json.loads(r.read())["faults"]["config"]
        assert (config["drop"], config["latency"], config["seed"]) == (0.5, "10ms-20ms", 4)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    stderr = proc.stderr.read()
    assert "WARNING: injecting faults: latency=10ms-20ms drop=0.5 (GET/PUT /admin/faults)" in stderr
    assert "Traceback" not in stderr
