"""The mock's web pages: a customer widget, an agent console and a live dashboard.

Plain HTML, CSS and JavaScript modules shipped as package data in
:mod:`simulator.mock.web` (no build step, no CDN: they work offline), served
by the HTTP side (:func:`add_pages`, mounted by :func:`.http.make_app`):

* ``GET /``: the dashboard (queues, conversations, frames per second, the
  URLs of the server; click a conversation to watch its frames);
* ``GET /widget``: a storefront chat widget (a customer: gets a customer JWT
  from ``POST /rest/v2/webchat-sim/customer_auth`` and chats on the websocket);
* ``GET /console``: an agent console (logs in with an API key through
  ``PUT /rest/v2/conversation/agent/auth``, then the websocket and REST);
* ``GET /static/{path}``: the pages' scripts and styles (404 for anything
  not shipped);
* ``GET /dashboard/state``: the dashboard's data, polled about once a
  second: the server's status, every queue's ``ConversationWebchatQueueStatus``
  and the :data:`RECENT_CONVERSATIONS` conversations with the newest activity;
* ``GET /dashboard/watch/{conversation_uuid}``: a websocket streaming every
  frame into and out of that conversation, as JSON text messages: first
  ``{"kind": "hello", "conversation": summary}``, then the stored messages as
  ``{"dir": "history", "t": epoch_ms, "frame": …}``, then live
  ``{"dir": "in" | "out", "t": …, "frame": …}`` (``in``: what a client sent,
  ``out``: what the server sent, once per frame whatever its recipients;
  frames to autopilot agents stay inside the process and are not shown); a
  watcher that cannot keep up gets ``{"kind": "dropped", "count": n}``.
  Live frames come from the server's :attr:`~.server.WebchatServer.taps`.

Access: the pages themselves are static and open. Without ``--api-key`` the
dashboard's data is open too (development mode); with API keys it needs an
agent credential, as REST does (``x-ultracart-simple-key``, or
``Authorization: Bearer`` with an API key or an agent JWT; the watch feed,
opened by a browser that cannot set headers, also takes an agent JWT as
``?token=``): 401 without.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import orjson
from aiohttp import WSCloseCode, web

from ..protocol import encode
from .access import FrontDoor
from .conversation import Conversation, Role, State
from .rest_models import RestError, engine_of, wire
from .server import WebchatServer

__all__ = [
    "MAX_WATCHERS",
    "RECENT_CONVERSATIONS",
    "WEB_PACKAGE",
    "Asset",
    "add_pages",
    "load_assets",
]

log = logging.getLogger("webchat_sim.pages")

WEB_PACKAGE = "simulator.mock.web"
RECENT_CONVERSATIONS = 50
"""Conversations the dashboard lists (newest activity first)."""
MAX_WATCHERS = 64
"""Watch feeds open at once (503 beyond)."""
MAX_PENDING = 2_000
"""Frames queued for one watcher before the newer ones are dropped."""
HISTORY_LIMIT = 200
"""Stored messages a watcher gets first."""
_PREVIEW = 120

_CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain",
}
_TEXT = ("text/", "image/svg+xml", "application/json")
_PAGES = {"/widget": "widget.html", "/console": "console.html"}
_DASHBOARD = "dashboard.html"
_LINKS_SLOT = b"{{links}}"
_SECURITY_HEADERS = {
    # Same-origin scripts and styles only; the websocket is on another port.
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One shipped file: its bytes, ``Content-Type`` and ETag."""

    body: bytes
    content_type: str
    etag: str


def _walk(folder: Traversable, prefix: str, found: dict[str, Asset]) -> None:
    for entry in folder.iterdir():
        name = entry.name
        if name.startswith((".", "__")):
            continue
        if entry.is_dir():
            _walk(entry, f"{prefix}{name}/", found)
            continue
        suffix = name[name.rfind(".") :] if "." in name else ""
        kind = _CONTENT_TYPES.get(suffix)
        if kind is None:  # .py and anything else not meant for browsers
            continue
        body = entry.read_bytes()
        if kind.startswith(_TEXT):
            kind += "; charset=utf-8"
        found[prefix + name] = Asset(body, kind, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


def load_assets(package: str = WEB_PACKAGE) -> dict[str, Asset]:
    """Every browser file of ``package`` by its path inside it (``js/widget.js``)."""
    found: dict[str, Asset] = {}
    _walk(resources.files(package), "", found)
    return found


_Handler = Callable[[web.Request], Awaitable[web.Response]]
_ASSETS: web.AppKey[dict[str, Asset]] = web.AppKey("pages_assets", dict)
_PAGES_SERVER: web.AppKey[WebchatServer] = web.AppKey("pages_server", WebchatServer)
_PAGES_DOOR: web.AppKey[FrontDoor] = web.AppKey("pages_door", FrontDoor)
_WATCHES: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("pages_watches", set)


def _respond(request: web.Request, asset: Asset) -> web.Response:
    headers = {**_SECURITY_HEADERS, "ETag": asset.etag}
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    response = web.Response(body=asset.body, headers=headers)
    response.headers["Content-Type"] = asset.content_type
    return response


async def _dashboard(request: web.Request) -> web.Response:
    """The dashboard, with the server's URLs written in (readable without scripts)."""
    asset = request.app[_ASSETS][_DASHBOARD]
    links = _links(request, request.app[_PAGES_SERVER])
    items = "".join(
        f'<div class="contents"><dt>{html.escape(k)}</dt><dd data-testid="link-{html.escape(k)}"><code>'
        f"{html.escape(v)}</code></dd></div>"
        for k, v in links.items()
    )
    response = web.Response(body=asset.body.replace(_LINKS_SLOT, items.encode()), headers=_SECURITY_HEADERS)
    response.headers["Content-Type"] = asset.content_type
    return response


def _page(name: str) -> _Handler:
    async def page(request: web.Request) -> web.Response:
        return _respond(request, request.app[_ASSETS][name])

    return page


async def _static(request: web.Request) -> web.Response:
    asset = request.app[_ASSETS].get(request.match_info["path"])
    if asset is None or asset.content_type.startswith("text/html"):
        raise RestError(404, "not_found", f"no static file {request.match_info['path'][:120]!r}")
    return _respond(request, asset)


def _check_access(request: web.Request, *, query_token: bool = False) -> None:
    """Open without API keys (development mode); otherwise an agent credential
    (401/403 from the front door, as for REST)."""
    door = request.app[_PAGES_DOOR]
    if door.any_key:
        return
    headers: Mapping[str, str] = request.headers
    token = request.query.get("token", "") if query_token else ""
    if token and "authorization" not in headers:
        headers = {"authorization": f"Bearer {token}"}
    door.rest_agent(headers, time.time())


def _conversation_row(conv: Conversation) -> dict[str, Any]:
    last = conv.messages[-1] if conv.messages else None
    body = (last.model.body or "") if last is not None else ""
    agents = [m.client.name for m in conv.members.values() if m.client.role is Role.AGENT]
    row: dict[str, Any] = {
        "conversation_uuid": conv.uuid,
        "queue_name": conv.queue_name,
        "state": conv.state.value,
        "customer": conv.customer.name,
        "agents": agents,
        "message_count": len(conv.messages),
        "start_ms": conv.start_ms,
        "last_ms": conv.last_epoch or conv.start_ms,
    }
    if last is not None:
        row["last_message"] = body[:_PREVIEW]
        row["last_author"] = last.author.client.name
    return row


def _links(request: web.Request, server: WebchatServer) -> dict[str, str]:
    base = f"{request.scheme}://{request.host}"
    return {
        "websocket_url": server.url,
        "rest_url": server.links.get("rest_url", base + "/rest/v2"),
        "web_url": server.links.get("web_url", base + "/"),
        "widget_url": base + "/widget",
        "console_url": base + "/console",
        "healthz_url": base + "/healthz",
    }


async def _state(request: web.Request) -> web.Response:
    """``GET /dashboard/state``: status, queues and the recent conversations."""
    _check_access(request)
    server = request.app[_PAGES_SERVER]
    engine = engine_of(server.core)
    queues = []
    for status in engine.queue_statuses(()):
        data = wire(status)
        data["queue_entries"] = data.get("queue_entries", [])[:10]
        queues.append(data)
    body = {
        "now_ms": int(time.time() * 1000),
        "development": request.app[_PAGES_DOOR].any_key,
        "links": _links(request, server),
        "status": server.status(),
        "queues": queues,
        "conversations": [_conversation_row(c) for c in engine.recent_conversations(RECENT_CONVERSATIONS)],
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json", headers={"Cache-Control": "no-store"})


def _envelope(direction: str, data: bytes) -> bytes:
    return b'{"dir":"%s","t":%d,"frame":%s}' % (direction.encode(), int(time.time() * 1000), data)


class _Watcher:
    """The frames waiting for one watch feed (filled by the server's tap, drained by the feed)."""

    __slots__ = ("dropped", "pending", "ready")

    def __init__(self) -> None:
        self.pending: deque[bytes] = deque()
        self.ready = asyncio.Event()
        self.dropped = 0

    def __call__(self, direction: str, data: bytes) -> None:
        if len(self.pending) >= MAX_PENDING:
            self.dropped += 1
        else:
            self.pending.append(_envelope(direction, data))
        self.ready.set()

    async def pump(self, ws: web.WebSocketResponse) -> None:
        while not ws.closed:
            await self.ready.wait()
            self.ready.clear()
            while self.pending:
                await ws.send_str(self.pending.popleft().decode())
            if self.dropped:
                count, self.dropped = self.dropped, 0
                await ws.send_str(f'{{"kind":"dropped","count":{count}}}')


async def _watch(request: web.Request) -> web.StreamResponse:
    """``GET /dashboard/watch/{conversation_uuid}``: the conversation's frames, history then live."""
    _check_access(request, query_token=True)
    server = request.app[_PAGES_SERVER]
    uuid = request.match_info["conversation_uuid"]
    engine = engine_of(server.core)
    if engine.visible_conversation(uuid, Role.AGENT, arn=None, name=None, queues=()) is None:
        raise RestError(404, "conversation_not_found", f"no conversation {uuid[:80]!r}", object_id=uuid[:200] or None)
    watches = request.app[_WATCHES]
    if len(watches) >= MAX_WATCHERS:
        raise RestError(503, "too_many_watchers", f"more than {MAX_WATCHERS} watch feeds open")
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096)
    await ws.prepare(request)
    watches.add(ws)
    watcher = _Watcher()
    taps = server.taps.setdefault(uuid, set())
    taps.add(watcher)
    try:
        # The tap is in before the history is read (no await between): no frame is missed or doubled.
        conv = engine.visible_conversation(uuid, Role.AGENT, arn=None, name=None, queues=())
        if conv is None:  # forgotten while the handshake went on
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"conversation forgotten")
            return ws
        hello = {"kind": "hello", "conversation": wire(conv.summary()), "closed": conv.state is State.CLOSED}
        history = [_envelope("history", encode(m.frame)) for m in conv.messages[-HISTORY_LIMIT:]]
        await ws.send_str(orjson.dumps(hello).decode())
        for item in history:
            await ws.send_str(item.decode())
        pump = asyncio.get_running_loop().create_task(watcher.pump(ws))
        try:
            async for _ in ws:  # the watcher sends nothing that matters; this ends when it goes
                pass
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await pump
    finally:
        taps.discard(watcher)
        if not taps and server.taps.get(uuid) is taps:
            del server.taps[uuid]
        watches.discard(ws)
    return ws


async def _close_watches(app: web.Application) -> None:
    """On shutdown: close the watch feeds (else the runner waits for them)."""
    watches = app[_WATCHES]
    for ws in tuple(watches):
        with contextlib.suppress(Exception):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


def add_pages(app: web.Application, server: WebchatServer, door: FrontDoor) -> None:
    """Mount the pages, their static files and the dashboard's endpoints on ``app``."""
    assets = load_assets()
    missing = [name for name in (_DASHBOARD, *_PAGES.values()) if name not in assets]
    if missing:
        raise RuntimeError(f"{WEB_PACKAGE}: {', '.join(missing)} not installed (package data missing from the build?)")
    app[_ASSETS] = assets
    app[_PAGES_SERVER] = server
    app[_PAGES_DOOR] = door
    app[_WATCHES] = set()
    app.router.add_get("/", _dashboard)
    for path, name in _PAGES.items():
        app.router.add_get(path, _page(name))
    app.router.add_get("/static/{path:.+}", _static)
    app.router.add_get("/dashboard/state", _state)
    app.router.add_get("/dashboard/watch/{conversation_uuid}", _watch)
    app.on_shutdown.append(_close_watches)
