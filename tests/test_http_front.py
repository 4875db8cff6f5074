"""The front door's remaining pieces against a real ``webchat-sim serve``:
a keys file, the REST rate limit (429), a customer starting its chat over
REST with its JWT, the test-session join, the bad-body table of the mock's
own auth endpoints, and strict ``since`` at the handshake. 127.0.0.1 and
random ports only; every test bounded in time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.cli import run_cli
from tests.test_http import Mock, _agent_auth, _customer_auth, _frames_until, _http, _refused, _start, _stop

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def filed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mock]:
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text("# agents of the demo desk\nk-carol=Carol\n\nk-dave = Dave\n", encoding="utf-8")
    mock = _start("--api-keys-file", str(keys), "--rest-rate", "5")
    yield mock
    stderr = _stop(mock)
    assert "Traceback" not in stderr and "WARNING" not in stderr


def test_a_keys_file_names_the_agents_and_nothing_else_gets_in(filed: Mock) -> None:
    assert _agent_auth(filed, "k-carol")["conversation_participant_name"] == "Carol"
    assert _agent_auth(filed, "k-dave")["conversation_participant_name"] == "Dave"
    status, body = _http("PUT", filed.rest_url + "/conversation/agent/auth", **{"x-ultracart-simple-key": "k-eve"})
    assert status == 401 and body["success"] is False


@pytest.mark.parametrize(
    ("content", "expected"),
    [("\n# only comments\n", "no API keys"), ("good\n=Nobody\n", "line 2: expected KEY or KEY=AGENT NAME")],
)
def test_a_bad_keys_file_is_one_line_and_exit_2(tmp_path: Path, content: str, expected: str) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(content, encoding="utf-8")
    for path in (str(keys), str(tmp_path / "missing.txt")):
        proc = run_cli("serve", "--port", "0", "--api-keys-file", path, timeout=30)
        assert proc.returncode == 2
        [line] = proc.stderr.splitlines()
        assert "--api-keys-file" in line and "Traceback" not in proc.stderr
        if path == str(keys):
            assert expected in line
        else:
            assert "cannot read" in line


def test_a_caller_over_the_rest_rate_gets_429_and_others_do_not(filed: Mock) -> None:
    carol = {"x-ultracart-simple-key": "k-carol"}
    statuses = [_http("GET", filed.rest_url + "/conversation/agent/keepalive", **carol)[0] for _ in range(30)]
    assert statuses[:5] == [204] * 5  # a burst of twice the rate fits
    assert 429 in statuses
    status, body = _http("GET", filed.rest_url + "/conversation/agent/keepalive", **carol)
    if status == 429:
        assert body["error"]["error_code"] == "too_many_requests"
    dave = {"x-ultracart-simple-key": "k-dave"}
    assert _http("GET", filed.rest_url + "/conversation/agent/keepalive", **dave)[0] == 204


def test_a_customer_starts_its_chat_over_rest_with_its_jwt_and_the_agent_joins_the_test_session(
    filed: Mock,
) -> None:
    agent = _agent_auth(filed, "k-dave")
    customer = _customer_auth(filed, **{"x-ultracart-simple-key": "k-dave"})
    bearer = {"Authorization": f"Bearer {customer['jwt']}"}
    with (
        connect(f"{agent['websocket_url']}?token={agent['jwt']}", proxy=None, open_timeout=10) as agent_ws,
        connect(f"{customer['websocket_url']}?token={customer['jwt']}", proxy=None, open_timeout=10) as cust_ws,
    ):
        _frames_until(agent_ws, "queue status update")
        status, body = _http(
            "PUT", filed.rest_url + "/conversation/conversations", {"question": "Where is order 77?"}, **bearer
        )
        assert status == 200, body
        conversation_uuid = body["conversation"]["conversation_uuid"]
        assert _frames_until(cust_ws, "new conversation")["conversation_uuid"] == conversation_uuid
        _frames_until(cust_ws, "participant join")  # round-robin gave it to Dave
        # Carol joins Dave's chat through the test-session join of her own user id
        carol = _agent_auth(filed, "k-carol")
        with connect(f"{carol['websocket_url']}?token={carol['jwt']}", proxy=None, open_timeout=10) as carol_ws:
            _frames_until(carol_ws, "queue status update")
            url = (
                filed.rest_url
                + f"/conversation/agent/profiles/{carol['user_id']}/test_session/{conversation_uuid}/join"
            )
            status, body = _http("PUT", url, {}, **{"x-ultracart-simple-key": "k-carol"})
            assert status == 204, body
            assert _frames_until(carol_ws, "new conversation")["conversation_uuid"] == conversation_uuid
            joined = _frames_until(cust_ws, "participant join")
            assert joined["conversation_uuid"] == conversation_uuid
            other = (
                filed.rest_url
                + f"/conversation/agent/profiles/{agent['user_id']}/test_session/{conversation_uuid}/join"
            )
            assert _http("PUT", other, {}, **{"x-ultracart-simple-key": "k-carol"})[0] == 403


HUGE = b'{"question": "' + b"x" * (70 * 1024) + b'"}'
AUTH_BAD_BODIES: list[tuple[str, bytes, int, str]] = [
    (endpoint, raw, status, code)
    for endpoint in ("test_session", "customer_auth", "test_session_join")
    for raw, status, code in (
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_body"),
        (b'"text"', 400, "invalid_body"),
        (b'{"nope": 1}', 400, "unknown_field"),
        (HUGE, 413, "body_too_large"),
    )
] + [
    ("test_session", b'{"queue_name": 5}', 400, "invalid_type"),
    ("test_session", b'{"customer_profile_oid": "7"}', 400, "invalid_type"),
    ("customer_auth", b'{"name": ["Ann"]}', 400, "invalid_type"),
    ("customer_auth", json.dumps({"name": "A" * 201}).encode(), 400, "field_too_long"),
    ("customer_auth", json.dumps({"email": "e" * 300}).encode(), 400, "field_too_long"),
    ("test_session_join", b'{"conversation_webchat_queue_uuid": 1}', 400, "invalid_type"),
]


@pytest.mark.parametrize(("endpoint", "raw", "status", "code"), AUTH_BAD_BODIES)
def test_the_auth_endpoints_refuse_bad_bodies_with_an_error_response(
    filed: Mock, endpoint: str, raw: bytes, status: int, code: str
) -> None:
    carol = _agent_auth(filed, "k-carol")
    paths = {
        "test_session": f"PUT /conversation/agent/profiles/{carol['user_id']}/test_session",
        "customer_auth": "POST /webchat-sim/customer_auth",
        "test_session_join": f"PUT /conversation/agent/profiles/{carol['user_id']}/test_session/nope/join",
    }
    method, path = paths[endpoint].split(" ")
    got_status, body = _http(method, filed.rest_url + path, raw, **{"x-ultracart-simple-key": "k-carol"})
    assert got_status == status, body
    assert body["success"] is False
    if status != 413:  # aiohttp refuses a body over its limit before the handler
        assert body["error"]["error_code"] == code
    assert "\n" not in body["error"]["developer_message"] and "Traceback" not in body["error"]["developer_message"]


@pytest.mark.parametrize("user_id", ["\u00b2", "\u0661", "9" * 5000, "x"])
def test_a_bad_user_id_is_400(filed: Mock, user_id: str) -> None:
    from urllib.parse import quote

    url = filed.rest_url + f"/conversation/agent/profiles/{quote(user_id)}/test_session"
    status, body = _http("PUT", url, {}, **{"x-ultracart-simple-key": "k-carol"})
    assert status == 400 and body["error"]["error_code"] == "invalid_type"


@pytest.fixture(scope="module")
def dev() -> Iterator[Mock]:
    mock = _start()
    yield mock
    stderr = _stop(mock)
    assert "Traceback" not in stderr and "ERROR" not in stderr


@pytest.mark.parametrize("since", ["%C2%B2", "%D9%A1%D9%A2", "9" * 5000, "-5", "12a"])
def test_a_bad_since_at_the_handshake_is_400_not_500(dev: Mock, since: str) -> None:
    status, body = _refused(dev.websocket_url + f"?role=customer&token=abc&since={since}")
    assert status == 400, body
    assert b"since" in body and b"Traceback" not in body


def test_test_session_body_fields_are_used(filed: Mock) -> None:
    carol = _agent_auth(filed, "k-carol")
    url = filed.rest_url + f"/conversation/agent/profiles/{carol['user_id']}/test_session"
    status, body = _http(
        "PUT", url, {"queue_name": "support", "question": "Hi"}, **{"x-ultracart-simple-key": "k-carol"}
    )
    assert status == 200, body
    auth: dict[str, Any] = body["customer_auth"]
    assert auth["merchant_id_queue_name"] == "DEMO_support"


def test_the_whole_console_flow_with_the_sdk_against_a_manual_routing_mock() -> None:
    """Agent auth (SDK) → websocket with its JWT → a test-session customer
    starts a chat on the websocket → the agent sees it waiting in the queue
    statuses, reads its history, joins, replies on the websocket, marks read,
    picks a canned message and leaves: every response through the SDK's models."""
    from ultracart import ApiClient, Configuration
    from ultracart.apis import ConversationApi
    from ultracart.model.conversation_agent_test_session_request import ConversationAgentTestSessionRequest
    from ultracart.model.conversation_canned_messages_search import ConversationCannedMessagesSearch
    from ultracart.model.conversation_join_request import ConversationJoinRequest

    mock = _start("--routing", "manual", "--api-key", "k-erin=Erin")
    try:
        configuration = Configuration(host=mock.rest_url)
        configuration.api_key["ultraCartSimpleApiKey"] = "k-erin"
        with ApiClient(configuration) as client:
            api = ConversationApi(client)
            auth = api.get_agent_websocket_authorization().agent_auth
            test = api.start_agent_test_session(auth.user_id, ConversationAgentTestSessionRequest(queue_name="support"))
            customer = test.customer_auth
            with (
                connect(f"{auth.websocket_url}?token={auth.jwt}", proxy=None, open_timeout=10) as agent_ws,
                connect(f"{customer.websocket_url}?token={customer.jwt}", proxy=None, open_timeout=10) as cust_ws,
            ):
                _frames_until(agent_ws, "queue status update")
                start = {"question": "Is 88 shipped?", "queue_name": "support"}
                cust_ws.send(
                    json.dumps(
                        {"type": "event", "event_type": "webchat start conversation", "event_engage_customer": start}
                    )
                )
                uuid = _frames_until(cust_ws, "new conversation")["conversation_uuid"]
                waiting = api.get_conversation_webchat_queue_statuses().queue_statuses[0]
                assert (waiting.queue_name, waiting.customer_waiting_count) == ("support", 1)
                history = api.get_conversation_messages(uuid, 0).conversation_messages
                assert [m.body for m in history] == ["Is 88 shipped?"]
                api.join_conversation(uuid, join_request=ConversationJoinRequest(participant_language_iso_code="en"))
                _frames_until(cust_ws, "participant join")
                reply = (
                    api.search_conversation_canned_messages(ConversationCannedMessagesSearch(short_code="en-order"))
                    .conversation_canned_messages[0]
                    .canned_message
                )
                assert api.get_conversation_canned_messages().conversation_canned_messages
                agent_ws.send(json.dumps({"type": "message", "conversation_uuid": uuid, "message": {"body": reply}}))
                deadline_frames = 0
                while True:  # the customer gets the canned reply
                    frame = json.loads(cust_ws.recv(timeout=10))
                    deadline_frames += 1
                    if frame.get("type") == "message":
                        assert frame["message"]["body"] == reply
                        break
                    assert deadline_frames < 50
                api.mark_read_conversation(uuid)
                one = api.get_conversation(uuid).conversation
                assert one.message_count == 2
                api.leave_conversation(uuid)
                _frames_until(cust_ws, "conversation closed")
    finally:
        stderr = _stop(mock)
    assert "Traceback" not in stderr
