"""The HTTP side (simulator/mock/http.py) and the websocket's front door,
against the real ``webchat-sim serve`` in a subprocess: the URLs on both
listeners, agent and customer auth over REST (with UltraCart's own SDK too),
and the handshake accepting genuine tokens and refusing forged, tampered,
expired and wrong-role ones. Only 127.0.0.1 and random ports; every test is
bounded in time."""

from __future__ import annotations

import base64
import json
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from simulator.mock.conversation import Role
from simulator.mock.tokens import TokenIssuer
from tests.cli import clean_env

pytestmark = pytest.mark.timeout(60)

SECRET = "a test secret that is long enough for HS256 use"
KEY = "k-alice"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Mock:
    proc: subprocess.Popen[str]
    websocket_url: str
    rest_url: str
    web_url: str

    @property
    def ws_base(self) -> str:
        return "http" + self.websocket_url.removeprefix("ws").removesuffix("/ws")


def _line(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no output within {timeout} s")
    return proc.stdout.readline()


def _start(*args: str) -> Mock:
    cmd = [sys.executable, "-m", "simulator", "serve", "--port", "0", "--agents", "0", "--jwt-secret", SECRET, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    first = _line(proc)
    assert proc.stdout is not None
    second = proc.stdout.readline()  # printed right after the first (which may have buffered it already)
    assert first.startswith("webchat-sim serving ws://127.0.0.1:"), first
    assert second.startswith("webchat-sim REST http://127.0.0.1:"), second
    words = second.split()
    return Mock(proc, first.split()[2], words[2], words[4])


def _stop(mock: Mock) -> str:
    mock.proc.send_signal(signal.SIGTERM)
    try:
        assert mock.proc.wait(20) == 0
    finally:
        if mock.proc.poll() is None:
            mock.proc.kill()
            mock.proc.wait(5)
    assert mock.proc.stderr is not None
    return mock.proc.stderr.read()


@pytest.fixture(scope="module")
def dev() -> Iterator[Mock]:
    mock = _start()
    yield mock
    stderr = _stop(mock)
    assert "Traceback" not in stderr
    assert "WARNING: development mode" in stderr and "any API key is accepted" in stderr


@pytest.fixture(scope="module")
def keyed() -> Iterator[Mock]:
    mock = _start("--api-key", f"{KEY}=Alice", "--api-key", "k-bob=Bob")
    yield mock
    stderr = _stop(mock)
    assert "Traceback" not in stderr
    assert "WARNING" not in stderr


def _http(method: str, url: str, body: Any = None, **headers: str) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _NO_PROXY.open(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    return status, json.loads(raw) if raw else None


def _agent_auth(mock: Mock, key: str = KEY) -> dict[str, Any]:
    status, body = _http("PUT", mock.rest_url + "/conversation/agent/auth", **{"x-ultracart-simple-key": key})
    assert status == 200, body
    auth: dict[str, Any] = body["agent_auth"]
    return auth


def _customer_auth(mock: Mock, **headers: str) -> dict[str, Any]:
    status, body = _http("POST", mock.rest_url + "/webchat-sim/customer_auth", {"name": "Ann"}, **headers)
    assert status == 200, body
    auth: dict[str, Any] = body["customer_auth"]
    return auth


def _refused(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    with pytest.raises(InvalidStatus) as info:
        connect(url, additional_headers=headers, proxy=None, open_timeout=10).close()
    response = info.value.response
    return response.status_code, response.body or b""


def _frames_until(ws: ClientConnection, event_type: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if frame.get("event_type") == event_type:
            assert isinstance(frame, dict)
            return frame


# ---------------------------------------------------------------------------
# URLs and health


@pytest.mark.parametrize("listener", ["websocket", "http"])
def test_healthz_on_both_listeners_reports_every_url(dev: Mock, listener: str) -> None:
    base = dev.ws_base if listener == "websocket" else dev.web_url.rstrip("/")
    status, body = _http("GET", base + "/healthz")
    assert status == 200
    assert body["websocket_url"] == dev.websocket_url
    assert body["rest_url"] == dev.rest_url
    assert body["web_url"] == dev.web_url
    assert dev.rest_url.endswith("/rest/v2") and dev.web_url.endswith("/")
    assert body["status"] == "ok" and "queues" in body and "sockets" in body


def test_the_web_page_lists_the_urls(dev: Mock) -> None:
    with _NO_PROXY.open(dev.web_url, timeout=10) as response:
        page = response.read().decode()
    assert dev.websocket_url in page and dev.rest_url in page


def test_unknown_rest_path_and_bad_body_are_error_responses(dev: Mock) -> None:
    status, body = _http("GET", dev.rest_url + "/no/such/thing")
    assert status == 404 and body["success"] is False and body["error"]["developer_message"]
    for raw in (b"{not json", b"[1, 2]", json.dumps({"name": 5}).encode(), json.dumps({"nme": "x"}).encode()):
        status, body = _http("POST", dev.rest_url + "/webchat-sim/customer_auth", raw)
        assert status == 400, raw
        assert body["success"] is False and "\n" not in body["error"]["developer_message"]
    status, body = _http("POST", dev.rest_url + "/webchat-sim/customer_auth", b"x" * (70 * 1024))
    assert status == 413 and body["success"] is False


# ---------------------------------------------------------------------------
# Agent auth over REST


def test_development_mode_accepts_any_key_and_says_so(dev: Mock) -> None:
    auth = _agent_auth(dev, "whatever")
    assert auth["websocket_url"] == dev.websocket_url
    again = _agent_auth(dev, "whatever")
    assert again["conversation_participant_arn"] == auth["conversation_participant_arn"]
    assert _agent_auth(dev, "other")["conversation_participant_arn"] != auth["conversation_participant_arn"]
    status, body = _http("PUT", dev.rest_url + "/conversation/agent/auth")
    assert status == 401 and body["success"] is False


def test_agent_auth_with_a_key_returns_a_verifiable_jwt(keyed: Mock) -> None:
    auth = _agent_auth(keyed)
    assert auth["conversation_participant_name"] == "Alice"
    assert auth["merchant_id"] == "DEMO"
    assert auth["chat_user"] is True and isinstance(auth["user_id"], int)
    assert auth["websocket_url"] == keyed.websocket_url
    claims = TokenIssuer(SECRET, "DEMO", 60).verify(auth["jwt"], time.time(), role=Role.AGENT)
    assert claims.name == "Alice"
    assert claims.participant_arn == auth["conversation_participant_arn"]
    assert claims.user_id == auth["user_id"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-ultracart-simple-key": "wrong"},
        {"x-ultracart-browser-key": "wrong"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic a2V5Og=="},
    ],
)
def test_agent_auth_without_or_with_a_wrong_key_is_401(keyed: Mock, headers: dict[str, str]) -> None:
    status, body = _http("PUT", keyed.rest_url + "/conversation/agent/auth", **headers)
    assert status == 401
    assert body["success"] is False and "jwt" not in json.dumps(body)


def test_every_credential_header_of_the_sdk_works(keyed: Mock) -> None:
    for headers in ({"x-ultracart-browser-key": KEY}, {"Authorization": f"Bearer {KEY}"}):
        status, body = _http("PUT", keyed.rest_url + "/conversation/agent/auth", **headers)
        assert status == 200 and body["agent_auth"]["conversation_participant_name"] == "Alice"
    token = _agent_auth(keyed)["jwt"]
    status, body = _http("PUT", keyed.rest_url + "/conversation/agent/auth", Authorization=f"Bearer {token}")
    assert status == 200 and body["agent_auth"]["conversation_participant_name"] == "Alice"


def test_a_customer_token_on_an_agent_endpoint_is_403(keyed: Mock) -> None:
    customer = _customer_auth(keyed, **{"x-ultracart-simple-key": KEY})
    status, body = _http("PUT", keyed.rest_url + "/conversation/agent/auth", Authorization=f"Bearer {customer['jwt']}")
    assert status == 403 and body["success"] is False


def test_customer_auth_needs_a_key_outside_development_mode(keyed: Mock, dev: Mock) -> None:
    status, _ = _http("POST", keyed.rest_url + "/webchat-sim/customer_auth", {})
    assert status == 401
    auth = _customer_auth(dev)  # development mode: a storefront widget asks without a key
    assert "/participant/" in auth["conversation_participant_arn"]
    assert auth["websocket_url"] == dev.websocket_url


def test_test_session_gives_a_customer_auth_for_ones_own_user_id_only(keyed: Mock) -> None:
    alice = _agent_auth(keyed)
    bob = _agent_auth(keyed, "k-bob")
    url = keyed.rest_url + f"/conversation/agent/profiles/{alice['user_id']}/test_session"
    status, body = _http("PUT", url, {"queue_name": "support"}, **{"x-ultracart-simple-key": KEY})
    assert status == 200, body
    claims = TokenIssuer(SECRET, "DEMO", 60).verify(body["customer_auth"]["jwt"], time.time(), role=Role.CUSTOMER)
    assert claims.participant_arn == body["customer_auth"]["conversation_participant_arn"]
    status, _ = _http("PUT", url, {"queue_name": "support"}, **{"x-ultracart-simple-key": "k-bob"})
    assert status == 403, bob


# ---------------------------------------------------------------------------
# The websocket accepts tokens


def test_an_agent_jwt_connects_as_that_agent_and_a_customer_jwt_as_that_customer(keyed: Mock) -> None:
    agent = _agent_auth(keyed)
    customer = _customer_auth(keyed, **{"x-ultracart-simple-key": KEY})
    with (
        connect(f"{agent['websocket_url']}?token={agent['jwt']}", proxy=None, open_timeout=10) as agent_ws,
        connect(
            customer["websocket_url"],
            additional_headers={"Authorization": f"Bearer {customer['jwt']}"},
            proxy=None,
            open_timeout=10,
        ) as customer_ws,
    ):
        _frames_until(agent_ws, "queue status update")
        start = {
            "type": "event",
            "event_type": "webchat start conversation",
            "event_engage_customer": {"question": "Where is my order 1234?", "queue_name": "support"},
        }
        customer_ws.send(json.dumps(start))
        new = _frames_until(agent_ws, "new conversation")
        participants = new["event_new_conversation"]["participants"]
        arns = {p["conversation_participant_arn"]: p["conversation_participant_name"] for p in participants}
        assert arns[agent["conversation_participant_arn"]] == "Alice"
        assert arns[customer["conversation_participant_arn"]] == "Ann"


def test_query_string_identities_are_refused_with_401_when_keys_are_set(keyed: Mock) -> None:
    status, body = _refused(keyed.websocket_url + "?role=agent&name=Mallory")
    assert status == 401 and body.count(b"\n") == 1
    status, _ = _refused(keyed.websocket_url + "?role=customer&token=" + "a" * 43)  # a resume token is no identity
    assert status == 401


def _tamper(token: str, **changes: object) -> str:
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw = base64.urlsafe_b64encode(json.dumps({**data, **changes}).encode()).rstrip(b"=").decode()
    return f"{header}.{raw}.{signature}"


def test_forged_tampered_expired_and_wrong_role_tokens_are_refused_at_the_handshake(keyed: Mock) -> None:
    agent = _agent_auth(keyed)
    customer = _customer_auth(keyed, **{"x-ultracart-simple-key": KEY})
    now = time.time()
    someone = "0f8fad5b-d9cb-469f-a165-70867728950e"
    forged = TokenIssuer("not the server's secret, but long enough", "DEMO", 3600).issue(
        Role.AGENT, someone, "Alice", now
    )
    expired = TokenIssuer(SECRET, "DEMO", 60).issue(Role.AGENT, someone, "Alice", now - 7200)
    other_merchant = TokenIssuer(SECRET, "OTHER", 3600).issue(Role.AGENT, someone, "X", now)
    cases = {
        "forged": (forged, 401),
        "tampered": (_tamper(agent["jwt"], name="Mallory"), 401),
        "truncated signature": (agent["jwt"][:-4], 401),
        "expired": (expired, 401),
        "other merchant": (other_merchant, 403),
    }
    before = _http("GET", keyed.ws_base + "/healthz")[1]
    for name, (token, expected) in cases.items():
        for query, headers in ((f"?token={token}", None), ("", {"Authorization": f"Bearer {token}"})):
            status, body = _refused(keyed.websocket_url + query, headers)
            assert status == expected, (name, status, body)
            assert body.count(b"\n") == 1 and b"Alice" not in body
    # A genuine token of the other role than the one asked for: 403.
    assert _refused(f"{keyed.websocket_url}?role=agent&token={customer['jwt']}")[0] == 403
    assert _refused(f"{keyed.websocket_url}?role=customer&token={agent['jwt']}")[0] == 403
    assert _refused(keyed.websocket_url, {"Authorization": "Basic a2V5Og=="})[0] == 401
    after = _http("GET", keyed.ws_base + "/healthz")[1]
    assert after["connections"] == before["connections"]  # nothing was accepted
    assert after["sockets"] == before["sockets"]


def test_development_mode_still_takes_query_string_identities_and_tokens(dev: Mock) -> None:
    with connect(dev.websocket_url + "?role=agent&name=Dev", proxy=None, open_timeout=10) as ws:
        _frames_until(ws, "queue status update")
    agent = _agent_auth(dev, "any")
    with connect(f"{dev.websocket_url}?token={agent['jwt']}", proxy=None, open_timeout=10) as ws:
        _frames_until(ws, "queue status update")
    assert _refused(f"{dev.websocket_url}?token={_tamper(agent['jwt'], name='Eve')}")[0] == 401


def _arn_in_status(status: dict[str, Any], name: str) -> str:
    agents = status["event_queue_status_update"]["agents"]
    (arn,) = [a["conversation_participant_arn"] for a in agents if a["conversation_participant_name"] == name]
    assert isinstance(arn, str)
    return arn


def test_development_mode_an_agent_keeps_one_arn_by_query_string_token_and_rest(dev: Mock) -> None:
    auth = _agent_auth(dev, "k-arn")  # development mode: the key names an agent of its own
    name, arn = auth["conversation_participant_name"], auth["conversation_participant_arn"]
    query = urllib.parse.urlencode({"role": "agent", "name": name})
    with connect(f"{dev.websocket_url}?{query}", proxy=None, open_timeout=10) as first:
        status = _frames_until(first, "queue status update")
        assert _arn_in_status(status, name) == arn  # the query string names the REST account's agent
        with connect(f"{dev.websocket_url}?token={auth['jwt']}", proxy=None, open_timeout=10) as second:
            status = _frames_until(second, "queue status update")  # the token vouches: a takeover
            assert _arn_in_status(status, name) == arn


# ---------------------------------------------------------------------------
# UltraCart's SDK, unmodified


def test_the_sdk_authenticates_an_agent_and_starts_a_test_session(keyed: Mock) -> None:
    from ultracart import ApiClient, Configuration  # type: ignore[import-untyped]
    from ultracart.apis import ConversationApi  # type: ignore[import-untyped]
    from ultracart.model.conversation_agent_test_session_request import (  # type: ignore[import-untyped]
        ConversationAgentTestSessionRequest,
    )

    configuration = Configuration(host=keyed.rest_url)
    configuration.api_key["ultraCartSimpleApiKey"] = KEY
    with ApiClient(configuration) as client:
        api = ConversationApi(client)
        response = api.get_agent_websocket_authorization()
        auth = response.agent_auth
        assert response.success is True
        assert auth.conversation_participant_name == "Alice"
        assert auth.websocket_url == keyed.websocket_url
        TokenIssuer(SECRET, "DEMO", 60).verify(auth.jwt, time.time(), role=Role.AGENT)
        session = api.start_agent_test_session(
            auth.user_id, ConversationAgentTestSessionRequest(queue_name="support", question="Hello?")
        )
        assert session.success is True
        TokenIssuer(SECRET, "DEMO", 60).verify(session.customer_auth.jwt, time.time(), role=Role.CUSTOMER)
    with connect(f"{auth.websocket_url}?token={auth.jwt}", proxy=None, open_timeout=10) as ws:
        _frames_until(ws, "queue status update")


def test_the_sdk_reads_a_chat_started_by_a_token_customer(keyed: Mock) -> None:
    """Agent auth (SDK) → websocket with its JWT → a customer (mock endpoint,
    JWT) chats → the agent lists the conversation, reads its messages, marks it
    read and leaves, all through the SDK; the customer sees the agent leave."""
    from ultracart import ApiClient, Configuration
    from ultracart.apis import ConversationApi

    configuration = Configuration(host=keyed.rest_url)
    configuration.api_key["ultraCartSimpleApiKey"] = "k-bob"
    customer = _customer_auth(keyed, **{"x-ultracart-simple-key": KEY})
    with ApiClient(configuration) as client:
        api = ConversationApi(client)
        auth = api.get_agent_websocket_authorization().agent_auth
        with (
            connect(f"{auth.websocket_url}?token={auth.jwt}", proxy=None, open_timeout=10) as agent_ws,
            connect(f"{customer['websocket_url']}?token={customer['jwt']}", proxy=None, open_timeout=10) as cust_ws,
        ):
            _frames_until(agent_ws, "queue status update")
            start = {
                "type": "event",
                "event_type": "webchat start conversation",
                "event_engage_customer": {"question": "Is 1234 shipped?", "queue_name": "support"},
            }
            cust_ws.send(json.dumps(start))
            conversation_uuid = _frames_until(agent_ws, "new conversation")["conversation_uuid"]
            listed = api.get_conversations()
            assert conversation_uuid in [c.conversation_uuid for c in listed.conversations]
            messages = api.get_conversation_messages(conversation_uuid, 0)
            assert [m.body for m in messages.conversation_messages] == ["Is 1234 shipped?"]
            api.mark_read_conversation(conversation_uuid)
            api.leave_conversation(conversation_uuid)
            _frames_until(cust_ws, "conversation closed")


def test_a_customer_token_cannot_reach_another_customers_conversation(keyed: Mock) -> None:
    """Customer B, with its own genuine JWT, asks for customer A's chat over
    REST (404, as if it did not exist) and writes into it over the websocket
    (``not_a_participant``); A's chat is unchanged."""
    key = {"x-ultracart-simple-key": KEY}
    ann, bea = _customer_auth(keyed, **key), _customer_auth(keyed, **key)
    start = {
        "type": "event",
        "event_type": "webchat start conversation",
        "event_engage_customer": {"question": "private question", "queue_name": "support"},
    }
    with (
        connect(f"{ann['websocket_url']}?token={ann['jwt']}", proxy=None, open_timeout=10) as ann_ws,
        connect(f"{bea['websocket_url']}?token={bea['jwt']}", proxy=None, open_timeout=10) as bea_ws,
    ):
        ann_ws.send(json.dumps(start))
        conversation_uuid = _frames_until(ann_ws, "new conversation")["conversation_uuid"]
        bearer = {"Authorization": f"Bearer {bea['jwt']}"}
        url = f"{keyed.rest_url}/conversation/conversations/{conversation_uuid}"
        status, body = _http("GET", url, **bearer)
        missing_status, missing = _http("GET", f"{keyed.rest_url}/conversation/conversations/{'0' * 36}", **bearer)
        assert status == missing_status == 404
        assert "private question" not in json.dumps(body)
        assert body["error"]["error_code"] == missing["error"]["error_code"]
        status, _ = _http("GET", url + "/messages/0", **bearer)
        assert status == 404
        message = {"type": "message", "conversation_uuid": conversation_uuid, "message": {"body": "hijack"}}
        bea_ws.send(json.dumps(message))
        error = json.loads(bea_ws.recv(timeout=10))
        assert error["error"]["error_code"] == "not_a_participant"
        status, body = _http("GET", url + "/messages/0", Authorization=f"Bearer {ann['jwt']}")
        assert status == 200
        assert [m["body"] for m in body["conversation_messages"]] == ["private question"]


# ---------------------------------------------------------------------------
# Options


@pytest.mark.timeout(60)
def test_auth_required_without_keys_takes_tokens_only_on_the_websocket() -> None:
    mock = _start("--auth", "required")
    try:
        assert _refused(mock.websocket_url + "?role=agent&name=Mallory")[0] == 401
        agent = _agent_auth(mock, "any key")
        with connect(f"{mock.websocket_url}?token={agent['jwt']}", proxy=None, open_timeout=10) as ws:
            _frames_until(ws, "queue status update")
    finally:
        stderr = _stop(mock)
    assert "--auth required without --api-key" in stderr and "development mode" not in stderr


@pytest.mark.parametrize("value", ["", "=Alice", "key="])
def test_a_bad_api_key_option_is_one_line_and_exit_2(value: str) -> None:
    from tests.cli import run_cli

    proc = run_cli("serve", "--port", "0", "--api-key", value, timeout=30)
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert "--api-key" in line and "Traceback" not in proc.stderr


@pytest.mark.parametrize(("port", "http_port", "expected"), [(8765, None, 8766), (0, None, 0), (65535, None, 0),
                                                            (8765, 9000, 9000), (0, 0, 0)])
def test_the_http_port_defaults_to_the_next_port(port: int, http_port: int | None, expected: int) -> None:
    from simulator.mock.app import MockOptions
    from simulator.mock.server import ServerConfig

    options = MockOptions(server=ServerConfig(port=port), http_port=http_port)
    assert options.http_port_or_default == expected
