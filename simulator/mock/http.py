"""The mock's HTTP side: aiohttp, in the websocket server's process and event loop.

:func:`make_app` builds the :class:`aiohttp.web.Application`; :class:`HttpSide`
starts and stops it on its own listening socket (``serve --http-port``,
default the websocket port + 1). Both share the one core through the
:class:`~.server.WebchatServer` (its status, its websocket URL) and the one
:class:`~.access.FrontDoor` (API keys, tokens). The websocket hot path stays
on ``websockets``; nothing here runs per frame.

Routes (bodies are UltraCart's models as the SDK sends and reads them; every
error is an ``ErrorResponse`` — ``{"error": {...}, "metadata": {}, "success":
false}`` — with its HTTP status, never a traceback):

* ``GET /metrics``: Prometheus metrics (:mod:`.metrics`);
* ``GET /healthz``: the server's status with ``websocket_url``, ``rest_url``
  and ``web_url`` (as on the websocket port);
* ``GET /admin/faults``, ``PUT /admin/faults`` (``{"drop": 0.05, "latency":
  "10ms-50ms", ...}``, ``null`` or 0 turns one off): the fault injection of
  :mod:`.faults`, its configuration and counts; open in development mode, an
  agent credential with API keys (as the dashboard's data);
* ``GET /`` (the dashboard, listing the URLs), ``/widget``, ``/console``,
  ``/static/…`` and the dashboard's data: :mod:`.pages`;
* ``PUT /rest/v2/conversation/agent/auth`` → ``ConversationAgentAuthResponse``
  (agent credentials: ``x-ultracart-simple-key``, ``x-ultracart-browser-key``
  or ``Authorization: Bearer``);
* ``PUT /rest/v2/conversation/agent/profiles/{user_id}/test_session``
  (``ConversationAgentTestSessionRequest``) → ``ConversationAgentTestSessionResponse``
  with a ``customer_auth`` (the calling agent's own ``user_id`` only);
* ``PUT /rest/v2/conversation/agent/profiles/{user_id}/test_session/{conversation_uuid}/join``
  (``ConversationAgentTestSessionJoinRequest``): as ``join``, 204;
* ``POST /rest/v2/webchat-sim/customer_auth`` (mock only, for storefront
  widgets; optional body ``{"name", "email", "language_iso_code"}``, each
  within its :data:`~.rules.LIMITS`, else 400) →
  ``{"customer_auth": ConversationCustomerAuth, "success": true, ...}``; no
  credentials needed without ``--api-key``, an API key otherwise;
* the conversation API of :mod:`.rest` (its ``routes``), each call
  authenticated here (:func:`rest_caller`): an agent by API key or agent JWT,
  a customer by ``Authorization: Bearer`` with its customer JWT; the calls'
  websocket deliveries go out through the server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from ..errors import AccessDenied
from .access import AgentAccount, FrontDoor
from .conversation import Role, participant_arn
from .faults import SETTINGS
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import MockCollector, registry_for, render
from .pages import add_pages
from .rest import ENDPOINTS, call
from .rest import routes as rest_routes
from .rest_models import BodySpec, Caller, Field, RateLimiter, RestError, engine_of, parse_body, strict_int
from .rules import LIMITS
from .server import WebchatServer
from .tokens import looks_like_jwt

__all__ = ["REST_PREFIX", "HttpSide", "error_response", "make_app"]

log = logging.getLogger("webchat_sim.http")

REST_PREFIX = "/rest/v2"
MAX_BODY_BYTES = 64 * 1024

_SERVER: web.AppKey[WebchatServer] = web.AppKey("server", WebchatServer)
_DOOR: web.AppKey[FrontDoor] = web.AppKey("door", FrontDoor)

JOIN = next(e for e in ENDPOINTS if e.operation_id == "join_conversation")

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def error_response(status: int, message: str, *, code: str | None = None) -> web.Response:
    """UltraCart's ``ErrorResponse`` with this status and one-line message."""
    error: dict[str, Any] = {"developer_message": message, "user_message": message}
    if code is not None:
        error["error_code"] = code
    return _json({"error": error, "metadata": {}, "success": False}, status)


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Refusals and HTTP errors as ``ErrorResponse``; a bug is a 500 with one line."""
    try:
        return await handler(request)
    except RestError as exc:
        result = exc.result()
        return _json(result.body, result.status)
    except AccessDenied as exc:
        return error_response(exc.status, str(exc), code="unauthorized" if exc.status == 401 else "forbidden")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason)
    except Exception:
        log.exception("internal error in %s %s", request.method, request.path)
        return error_response(500, "internal error")


TEST_SESSION_REQUEST: BodySpec = {
    "customer_profile_oid": Field((int,)),
    "question": Field((str,), max_length=LIMITS.text),
    "queue_name": Field((str,), max_length=LIMITS.queue_name),
    "storefront_host_name": Field((str,), max_length=LIMITS.url),
}
CUSTOMER_AUTH_REQUEST: BodySpec = {
    "name": Field((str,), max_length=LIMITS.name),
    "email": Field((str,), max_length=LIMITS.email),
    "language_iso_code": Field((str,), max_length=LIMITS.language),
}
TEST_SESSION_JOIN_REQUEST: BodySpec = {"conversation_webchat_queue_uuid": Field((str,), max_length=LIMITS.identifier)}


async def _body(request: web.Request, spec: BodySpec) -> dict[str, Any]:
    """The request body checked as :func:`.rest_models.parse_body` does (400/413 ``ErrorResponse``)."""
    return parse_body(await request.read() if request.body_exists else None, spec)


def _agent(request: web.Request) -> AgentAccount:
    return request.app[_DOOR].rest_agent(request.headers, time.time())


def _customer_auth(request: web.Request, name: str, email: str | None, language: str | None) -> dict[str, Any]:
    door = request.app[_DOOR]
    participant_uuid, token = door.customer_token(time.time(), name=name, email=email, language_iso_code=language)
    return {
        "conversation_participant_arn": participant_arn(door.merchant_id, Role.CUSTOMER, participant_uuid),
        "conversation_participant_name": name,
        "jwt": token,
        "merchant_id": door.merchant_id,
        "websocket_url": request.app[_SERVER].url,
    }


def agent_caller(account: AgentAccount) -> Caller:
    """The REST caller an agent account is."""
    return Caller(
        role=Role.AGENT,
        name=account.name,
        participant_arn=account.participant_arn,
        user_id=account.user_id,
        merchant_id=account.merchant_id,
    )


def rest_caller(door: FrontDoor, headers: Mapping[str, str], now: float) -> Caller:
    """Who calls the conversation API: a customer presenting its JWT as
    ``Authorization: Bearer``, else an agent (:meth:`.FrontDoor.rest_agent`);
    refusals as :class:`~.rest_models.RestError` (401/403)."""
    try:
        scheme, _, credentials = headers.get("authorization", "").strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer" and looks_like_jwt(credentials):
            claims = door.issuer.verify(credentials, now)
            if claims.role is Role.CUSTOMER:
                return Caller(
                    role=Role.CUSTOMER,
                    name=claims.name,
                    participant_arn=claims.participant_arn,
                    email=claims.email,
                    merchant_id=claims.merchant_id,
                )
        account = door.rest_agent(headers, now)
    except AccessDenied as exc:
        raise RestError(exc.status, "unauthorized" if exc.status == 401 else "forbidden", str(exc)) from None
    return agent_caller(account)


def _roles(server: WebchatServer) -> dict[str, int]:
    """Connections the engine knows, by role (0 for a role with none)."""
    counts = dict.fromkeys((role.value for role in Role), 0)
    for client in engine_of(server.core).connected_clients():
        counts[client.role.value] += 1
    return counts


async def _healthz(request: web.Request) -> web.Response:
    return _json(request.app[_SERVER].status())


async def _agent_auth(request: web.Request) -> web.Response:
    account = _agent(request)
    door = request.app[_DOOR]
    auth = {
        "chat_admin": True,
        "chat_user": True,
        "conversation_participant_arn": account.participant_arn,
        "conversation_participant_name": account.name,
        "customer_profile": False,
        "group_ids": [],
        "jwt": door.agent_token(account, time.time()),
        "merchant_id": account.merchant_id,
        "user_id": account.user_id,
        "websocket_url": request.app[_SERVER].url,
    }
    return _json({"agent_auth": auth, "metadata": {}, "success": True})


async def _test_session(request: web.Request) -> web.Response:
    account = _agent(request)
    _own_user_id(request, account)
    data = await _body(request, TEST_SESSION_REQUEST)
    queue_name = data.get("queue_name")
    auth = _customer_auth(request, "Test customer", None, None)
    if queue_name:
        auth["merchant_id_queue_name"] = f"{account.merchant_id}_{queue_name}"
    return _json({"customer_auth": auth, "metadata": {}, "success": True})


def _own_user_id(request: web.Request, account: AgentAccount) -> None:
    user_id = strict_int(request.match_info["user_id"])
    if user_id is None:
        raise RestError(400, "invalid_type", "user_id: must be an integer in ASCII digits")
    if user_id != account.user_id:
        raise RestError(403, "forbidden", "user_id: not yours")


async def _join_test_session(request: web.Request) -> web.Response:
    """``PUT …/profiles/{user_id}/test_session/{conversation_uuid}/join``: the
    agent joins its test customer's conversation, as ``join`` does (204)."""
    account = _agent(request)
    _own_user_id(request, account)
    await _body(request, TEST_SESSION_JOIN_REQUEST)
    caller = agent_caller(account)
    server = request.app[_SERVER]
    params = {"conversation_uuid": request.match_info["conversation_uuid"]}
    result = call(JOIN, server.core, caller, params, None, time.time())
    if result.deliveries and (committed := server.deliver(result.deliveries)) is not None:
        await committed  # with storage: answered once stored
    if result.body is None:
        return web.Response(status=result.status)
    return _json(result.body, result.status)


async def _mock_customer_auth(request: web.Request) -> web.Response:
    door = request.app[_DOOR]
    if not door.any_key:
        _agent(request)  # with --api-key a storefront's backend asks with its key
    data = await _body(request, CUSTOMER_AUTH_REQUEST)
    auth = _customer_auth(request, data.get("name") or "Customer", data.get("email"), data.get("language_iso_code"))
    return _json({"customer_auth": auth, "metadata": {}, "success": True})


FAULTS_REQUEST: BodySpec = {**{name: Field((str, int, float)) for name in SETTINGS}, "seed": Field((int, str))}


async def _admin_faults(request: web.Request) -> web.Response:
    """``GET``/``PUT /admin/faults``: the fault configuration and counts; a
    ``PUT`` applies its body first, all or nothing (400 for a bad value)."""
    if not request.app[_DOOR].any_key:
        _agent(request)
    server = request.app[_SERVER]
    if request.method == "PUT":
        raw = await request.read() if request.body_exists else None
        parse_body(raw, FAULTS_REQUEST)  # a JSON object of known names and types (it drops the nulls: read again)
        settings = orjson.loads(raw) if raw is not None and raw.strip() else {}
        try:
            server.configure_faults(settings)
        except ValueError as exc:
            raise RestError(400, "invalid_value", str(exc)) from None
    return _json({"faults": server.fault_decider.status(), "metadata": {}, "success": True})


async def _rest_not_found(request: web.Request) -> web.Response:
    return error_response(404, f"no endpoint {request.method} {request.path[:200]}", code="not_found")


def make_app(server: WebchatServer, door: FrontDoor, *, limiter: RateLimiter | None = None) -> web.Application:
    """The HTTP application over ``server``'s core and ``door``; with a
    ``limiter``, the conversation API answers 429 to a caller over its rate."""
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY_BYTES)
    app[_SERVER] = server
    app[_DOOR] = door
    app.router.add_get("/healthz", _healthz)
    registry = registry_for(MockCollector(server.counters, server.status, lambda: _roles(server)))

    async def _metrics(request: web.Request) -> web.Response:
        return web.Response(body=render(registry), headers={"Content-Type": METRICS_CONTENT_TYPE})

    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/admin/faults", _admin_faults)
    app.router.add_put("/admin/faults", _admin_faults)
    add_pages(app, server, door)  # /, /widget, /console, /static, /dashboard
    rest = web.Application(middlewares=[_errors], client_max_size=MAX_BODY_BYTES)
    rest[_SERVER] = server
    rest[_DOOR] = door
    rest.router.add_put("/conversation/agent/auth", _agent_auth)
    rest.router.add_put("/conversation/agent/profiles/{user_id}/test_session", _test_session)
    rest.router.add_put(
        "/conversation/agent/profiles/{user_id}/test_session/{conversation_uuid}/join", _join_test_session
    )
    rest.router.add_post("/webchat-sim/customer_auth", _mock_customer_auth)
    conversation_api = rest_routes(
        lambda: server.core,
        lambda request: rest_caller(door, request.headers, time.time()),
        server.deliver,
        prefix="",
        catch_all=False,
        limiter=limiter,
    )
    rest.router.add_routes(conversation_api)
    rest.router.add_route("*", "/{tail:.*}", _rest_not_found)
    app.add_subapp(REST_PREFIX, rest)
    return app


class HttpSide:
    """The HTTP listener: :func:`make_app` served on ``host``:``port`` (0: any free port)."""

    def __init__(self, app: web.Application, host: str, port: int, *, backlog: int = 1024) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.backlog = backlog
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen (an ``OSError`` if the address cannot be bound; nothing is left open)."""
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.requested_port, backlog=self.backlog).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    @property
    def port(self) -> int:
        assert self._runner is not None, "HTTP side not started"
        return int(self._runner.addresses[0][1])

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """What an SDK's ``Configuration.host`` takes."""
        return self.base_url + REST_PREFIX

    @property
    def web_url(self) -> str:
        return self.base_url + "/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
