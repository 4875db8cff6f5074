"""The web pages' server side (simulator/mock/pages.py), in process and
without a browser: the pages and static files with their content types, 404
for anything not shipped, the files found as package data, the dashboard's
data open in development mode and behind an agent credential with API keys,
and the watch feed (history first, then every frame in and out, refusing an
unknown conversation, leaving no tap behind). 127.0.0.1, random ports,
every test bounded in time. The pages in a real browser: test_browser.py."""

from __future__ import annotations

import asyncio
import fnmatch
import random
import time
import tomllib
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from simulator.mock.access import FrontDoor
from simulator.mock.engine import Engine, EngineConfig, Routing
from simulator.mock.http import HttpSide, make_app
from simulator.mock.pages import WEB_PACKAGE, load_assets
from simulator.mock.server import ServerConfig, WebchatServer
from simulator.mock.tokens import TokenIssuer
from tests.cli import ROOT
from tests.sdk import validate_frame_bytes

pytestmark = pytest.mark.timeout(60)

SECRET = "a test secret that is long enough for HS256 use"
KEY = "k-alice"


def run(coro: Coroutine[Any, Any, None], timeout: float = 30.0) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(timeout):
            await coro

    asyncio.run(bounded())


@dataclass
class Mock:
    server: WebchatServer
    door: FrontDoor
    http: aiohttp.ClientSession
    base: str


@asynccontextmanager
async def mock(*, keys: dict[str, str | None] | None = None) -> AsyncIterator[Mock]:
    engine = Engine(EngineConfig(routing=Routing.MANUAL), rng=random.Random(7))
    door = FrontDoor(TokenIssuer(SECRET, "DEMO", 3600.0), keys)
    server = WebchatServer(engine, ServerConfig(host="127.0.0.1", port=0, idle_timeout=None), door=door)
    await server.start()
    side = HttpSide(make_app(server, door), "127.0.0.1", 0)
    try:
        await side.start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            yield Mock(server, door, http, side.base_url)
    finally:
        await side.stop()
        await server.stop()


async def _until(ws: ClientConnection, event_type: str) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = orjson.loads(await ws.recv())
        if frame.get("event_type") == event_type:
            return frame


async def _customer_chat(m: Mock, question: str = "Where is my parcel?") -> tuple[ClientConnection, str]:
    ws = await connect(m.server.url + "?role=customer&name=Ann", proxy=None, open_timeout=10)
    start = {
        "type": "event",
        "event_type": "webchat start conversation",
        "event_engage_customer": {"question": question},
    }
    await ws.send(orjson.dumps(start).decode())
    frame = await _until(ws, "new conversation")
    return ws, frame["conversation_uuid"]


# ---------------------------------------------------------------------------
# Pages and static files


def test_pages_and_static_files_are_served_with_their_content_types() -> None:
    async def main() -> None:
        async with mock() as m:
            for path in ("/", "/widget", "/console"):
                async with m.http.get(m.base + path) as response:
                    assert response.status == 200, path
                    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
                    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
                    assert response.headers["X-Content-Type-Options"] == "nosniff"
                    page = await response.text()
                    assert '<script type="module" src="/static/js/' in page
            expected = {
                "/static/js/widget.js": "text/javascript; charset=utf-8",
                "/static/js/protocol.js": "text/javascript; charset=utf-8",
                "/static/css/app.css": "text/css; charset=utf-8",
                "/static/favicon.svg": "image/svg+xml; charset=utf-8",
            }
            for path, content_type in expected.items():
                async with m.http.get(m.base + path) as response:
                    assert response.status == 200, path
                    assert response.headers["Content-Type"] == content_type
                    etag = response.headers["ETag"]
                    assert await response.read()
                async with m.http.get(m.base + path, headers={"If-None-Match": etag}) as response:
                    assert response.status == 304

    run(main())


def test_the_dashboard_page_lists_the_urls_without_scripts() -> None:
    async def main() -> None:
        async with mock() as m:
            async with m.http.get(m.base + "/") as response:
                page = await response.text()
            assert m.server.url in page and m.base + "/rest/v2" in page and m.base + "/widget" in page
            assert "{{links}}" not in page

    run(main())


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/js/",
        "/static/__init__.py",
        "/static/widget.html",  # pages have their own URLs
        "/static/%2e%2e/pages.py",
        "/static/js/../../pages.py",
        "/static/" + "x" * 3000,
    ],
)
def test_unknown_static_paths_are_404_error_responses(path: str) -> None:
    async def main() -> None:
        async with mock() as m, m.http.get(m.base + path) as response:
            assert response.status == 404, path
            body = await response.json()
            assert body["success"] is False and "Traceback" not in orjson.dumps(body).decode()

    run(main())


def test_the_web_files_ship_as_package_data_and_are_found_through_importlib_resources() -> None:
    assets = load_assets()
    for name in ("dashboard.html", "widget.html", "console.html", "css/app.css", "js/protocol.js", "js/socket.js"):
        assert name in assets, name
    assert not [name for name in assets if name.endswith(".py")]
    # every browser file in the source tree is matched by the package-data globs a wheel is built from
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert WEB_PACKAGE in config["tool"]["setuptools"]["packages"]
    globs = config["tool"]["setuptools"]["package-data"][WEB_PACKAGE]
    folder = ROOT / "simulator" / "mock" / "web"
    files = [
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ]
    unshipped = [f for f in files if not f.endswith(".py") and not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert unshipped == []
    assert sorted(assets) == sorted(f for f in files if not f.endswith(".py"))


# ---------------------------------------------------------------------------
# The dashboard's data


def test_the_dashboard_state_is_open_in_development_mode_and_reports_queues_and_conversations() -> None:
    async def main() -> None:
        async with mock() as m:
            ws, uuid = await _customer_chat(m)
            async with ws, m.http.get(m.base + "/dashboard/state") as response:
                assert response.status == 200
                state = await response.json()
            assert state["development"] is True
            assert state["links"]["websocket_url"] == m.server.url
            [queue] = state["queues"]
            assert queue["queue_name"] == "support" and queue["customer_waiting_count"] == 1
            [row] = state["conversations"]
            assert row["conversation_uuid"] == uuid and row["state"] == "queued" and row["customer"] == "Ann"
            assert row["message_count"] == 1 and row["last_message"] == "Where is my parcel?"
            assert state["status"]["conversations"] == {"open": 1, "closed": 0}

    run(main())


def test_with_api_keys_the_dashboard_data_needs_an_agent_credential() -> None:
    async def main() -> None:
        async with mock(keys={KEY: "Alice"}) as m:
            url = m.base + "/dashboard/state"
            account = m.door.agent_for_key(KEY)
            agent_jwt = m.door.agent_token(account, time.time())
            _, customer_jwt = m.door.customer_token(time.time(), name="Ann")
            refused = [
                {},
                {"x-ultracart-simple-key": "k-mallory"},
                {"Authorization": "Bearer k-mallory"},
                {"Authorization": f"Bearer {customer_jwt}"},
                {"Authorization": f"Bearer {agent_jwt[:-3]}abc"},
            ]
            for headers in refused:
                async with m.http.get(url, headers=headers) as response:
                    assert response.status in (401, 403), headers
                    assert (await response.json())["success"] is False
            for headers in ({"x-ultracart-simple-key": KEY}, {"Authorization": f"Bearer {agent_jwt}"}):
                async with m.http.get(url, headers=headers) as response:
                    assert response.status == 200, headers
                    assert (await response.json())["development"] is False
            # the pages themselves are static and open
            async with m.http.get(m.base + "/") as response:
                assert response.status == 200
            # the watch feed: 401 before the conversation is even looked up
            async with m.http.get(m.base + "/dashboard/watch/any") as response:
                assert response.status == 401
            async with m.http.get(m.base + f"/dashboard/watch/any?token={customer_jwt}") as response:
                assert response.status == 403
            async with m.http.get(m.base + f"/dashboard/watch/any?token={agent_jwt}") as response:
                assert response.status == 404

    run(main())


# ---------------------------------------------------------------------------
# The watch feed


def test_the_watch_feed_refuses_an_unknown_conversation() -> None:
    async def main() -> None:
        async with mock() as m:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await m.http.ws_connect(m.base + "/dashboard/watch/00000000-0000-4000-8000-000000000000")
            assert refused.value.status == 404
            assert m.server.taps == {}

    run(main())


def test_the_watch_feed_sends_the_history_then_every_frame_in_and_out_and_leaves_no_tap() -> None:
    async def main() -> None:
        async with mock() as m:
            ws, uuid = await _customer_chat(m)
            async with ws:
                agent = await connect(m.server.url + "?role=agent&name=Bob", proxy=None, open_timeout=10)
                async with agent:
                    status = (await _until(agent, "queue status update"))["event_queue_status_update"]
                    entry = status["queue_entries"][0]
                    engage = {
                        "type": "event",
                        "event_type": "engage customer",
                        "event_engage_customer": {
                            "conversation_webchat_queue_uuid": entry["conversation_webchat_queue_uuid"]
                        },
                    }
                    await agent.send(orjson.dumps(engage).decode())
                    await _until(agent, "participant join")
                    assert m.server.taps == {}  # nobody watches: the hot path checks one empty dict
                    watch = await m.http.ws_connect(m.base + f"/dashboard/watch/{uuid}")
                    hello = await watch.receive_json(timeout=10)
                    assert hello["kind"] == "hello" and hello["conversation"]["conversation_uuid"] == uuid
                    history = await watch.receive_json(timeout=10)
                    assert history["dir"] == "history" and history["frame"]["message"]["body"] == "Where is my parcel?"
                    assert set(m.server.taps) == {uuid}
                    sent = {
                        "type": "message",
                        "conversation_uuid": uuid,
                        "message": {"body": "hello from Ann", "client_message_id": "c-1"},
                    }
                    await ws.send(orjson.dumps(sent).decode())
                    seen: list[dict[str, Any]] = []
                    while len([s for s in seen if s.get("dir") == "out"]) < 2:  # the message, then the agent's summary
                        seen.append(await watch.receive_json(timeout=10))
                    assert seen[0] == {"dir": "in", "t": seen[0]["t"], "frame": sent}
                    out = [s["frame"] for s in seen if s["dir"] == "out"]
                    assert out[0]["type"] == "message" and out[0]["message"]["body"] == "hello from Ann"
                    assert out[1]["event_type"] == "new message"
                    for frame in out:
                        validate_frame_bytes(orjson.dumps(frame))
                    # typing from the agent: relayed once (to the customer), shown once
                    typing = {"type": "event", "event_type": "typing", "conversation_uuid": uuid,
                              "event_typing": {"value": "hm"}}
                    await agent.send(orjson.dumps(typing).decode())
                    got = [await watch.receive_json(timeout=10) for _ in range(2)]
                    assert [g["dir"] for g in got] == ["in", "out"]
                    assert got[1]["frame"]["event_typing"]["author_conversation_participant_name"] == "Bob"
                    await watch.close()
                    for _ in range(100):  # the feed's handler finishes on its own task
                        if not m.server.taps:
                            break
                        await asyncio.sleep(0.02)
                    assert m.server.taps == {}

    run(main())


def test_open_watch_feeds_do_not_hold_up_the_shutdown() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with mock() as m:
            ws, uuid = await _customer_chat(m)
            async with ws:
                watch = await m.http.ws_connect(m.base + f"/dashboard/watch/{uuid}")
                assert (await watch.receive_json(timeout=10))["kind"] == "hello"
                started = loop.time()
        assert loop.time() - started < 5  # the runner would wait 60 s for a feed left open

    run(main())


def test_a_watcher_that_does_not_read_is_bounded() -> None:
    from simulator.mock.pages import MAX_PENDING, _Watcher

    async def main() -> None:
        watcher = _Watcher()
        for _ in range(MAX_PENDING + 10):
            watcher("out", b'{"type":"ping"}')
        assert len(watcher.pending) == MAX_PENDING and watcher.dropped == 10
        assert orjson.loads(watcher.pending[0])["frame"] == {"type": "ping"}

    run(main())


def test_the_customer_role_cannot_read_the_dashboard_with_api_keys_even_via_the_query() -> None:
    async def main() -> None:
        async with mock(keys={KEY: "Alice"}) as m:
            _, customer_jwt = m.door.customer_token(time.time(), name="Ann")
            async with m.http.get(m.base + f"/dashboard/state?token={customer_jwt}") as response:
                assert response.status == 401  # the query token is only for the watch feed's websocket

    run(main())


# ---------------------------------------------------------------------------
# Found while building the console


def test_an_agent_set_busy_over_rest_sees_it_in_the_next_queue_status_update() -> None:
    """The REST side re-arms the server's tick timer even when a call sends no
    frame at once: a status change is only a coalesced ``queue status update``
    due later, and it was never sent until some other event came along."""

    async def main() -> None:
        async with mock() as m:
            account = m.door.agent_for_key(KEY)
            jwt = m.door.agent_token(account, time.time())
            agent = await connect(f"{m.server.url}?token={jwt}", proxy=None, open_timeout=10)
            async with agent:
                first = (await _until(agent, "queue status update"))["event_queue_status_update"]
                assert first["agents"][0]["agent_status"] == "available"
                url = m.base + "/rest/v2/conversation/conversations/queues/support/status"
                headers = {"Authorization": f"Bearer {jwt}"}
                async with m.http.put(url, json={"agent_status": "busy"}, headers=headers) as response:
                    assert response.status == 204
                async with asyncio.timeout(5):
                    while True:
                        status = (await _until(agent, "queue status update"))["event_queue_status_update"]
                        if status["agents"][0]["agent_status"] == "busy":
                            break

    run(main(), timeout=20)
