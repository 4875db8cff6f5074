"""The load generator's REST auth (``--auth rest``): the Dialect's requests,
URLs and headers; sessions that authenticate, then connect with the JWT; and
``webchat-sim load --auth rest`` end to end (embedded mock, agent users, a
wrong key against a running mock)."""

from __future__ import annotations

import csv
import functools
import random
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import gevent
import orjson
import pytest

from simulator.errors import UsageError
from simulator.fake import ChatFaker
from simulator.load.dialect import Auth, AuthError, AuthSettings, Dialect
from simulator.load.meter import KPI
from simulator.load.runner import LoadOptions, MockProcess, check_options, discover_rest_url, hint, locust_command
from simulator.load.sessions import AgentSession, CustomerSession, OperationFailed, Pacing
from tests.cli import ROOT, clean_env, run_cli

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


# 1. The Dialect, sans I/O -------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("host", "rest"),
    [
        ("ws://127.0.0.1:8765/ws", "http://127.0.0.1:8766/rest/v2"),
        ("wss://chat.example.com:9443/chat/socket?x=1", "https://chat.example.com:9444/rest/v2"),
        ("wss://chat.example.com/ws", "https://chat.example.com/rest/v2"),
        ("ws://[::1]:8765/ws", "http://[::1]:8766/rest/v2"),
        ("ws://user:secret@127.0.0.1:8765/ws", "http://127.0.0.1:8766/rest/v2"),
        ("127.0.0.1:8765", "http://127.0.0.1:8766/rest/v2"),
    ],
)
def test_the_rest_url_is_derived_from_the_websocket_host(host: str, rest: str) -> None:
    assert Dialect().rest_url(host) == rest


@pytest.mark.timeout(10)
def test_agent_auth_request_is_the_sdks_put_with_the_simple_key() -> None:
    request = Dialect().agent_auth_request("http://127.0.0.1:8766/rest/v2/", "k1")
    assert (request.method, request.url) == ("PUT", "http://127.0.0.1:8766/rest/v2/conversation/agent/auth")
    assert request.headers["x-ultracart-simple-key"] == "k1"
    assert request.headers["Accept"] == "application/json"
    assert request.body == b""
    assert "x-ultracart-simple-key" not in Dialect().agent_auth_request("http://h/rest/v2", None).headers


@pytest.mark.timeout(10)
def test_customer_auth_request_posts_the_persona_to_the_mock_endpoint() -> None:
    request = Dialect().customer_auth_request(
        "http://127.0.0.1:8766/rest/v2", "k1", name="Ann", email="ann@example.com", language="fr"
    )
    assert (request.method, request.url) == ("POST", "http://127.0.0.1:8766/rest/v2/webchat-sim/customer_auth")
    assert request.headers["x-ultracart-simple-key"] == "k1"
    assert orjson.loads(request.body) == {"name": "Ann", "email": "ann@example.com", "language_iso_code": "fr"}
    keyless = Dialect().customer_auth_request("http://h/rest/v2", None, name="Ann")
    assert "x-ultracart-simple-key" not in keyless.headers
    assert orjson.loads(keyless.body) == {"name": "Ann"}


@pytest.mark.timeout(10)
def test_auth_answers_are_parsed_and_bad_ones_refused_without_per_user_values() -> None:
    dialect = Dialect()
    body = orjson.dumps(
        {
            "agent_auth": {
                "jwt": JWT,
                "websocket_url": "ws://127.0.0.1:8765/ws",
                "conversation_participant_arn": "arn:agent",
                "conversation_participant_name": "Agent 1",
            },
            "success": True,
        }
    )
    auth = dialect.parse_auth("agent", body)
    assert auth == Auth(JWT, "ws://127.0.0.1:8765/ws", "arn:agent", "Agent 1")
    customer = orjson.dumps({"customer_auth": {"jwt": JWT, "websocket_url": "ws://h/ws"}})
    assert dialect.parse_auth("customer", customer).jwt == JWT
    for bad, says in [
        (b"<html>", "answer is not JSON"),
        (b"[]", "answer without agent_auth"),
        (orjson.dumps({"agent_auth": {"websocket_url": "ws://h/ws"}}), "agent_auth without jwt"),
        (orjson.dumps({"agent_auth": {"jwt": JWT}}), "agent_auth without websocket_url"),
        (customer, "answer without agent_auth"),
    ]:
        with pytest.raises(AuthError) as info:
            dialect.parse_auth("agent", bad)
        assert str(info.value) == says
    error = orjson.dumps({"error": {"developer_message": "credentials: unknown API key"}, "success": False})
    assert dialect.error_reason(error) == "credentials: unknown API key"
    assert dialect.error_reason(b"oops") is None


@pytest.mark.timeout(10)
def test_the_jwt_goes_in_a_bearer_header_by_default_and_in_the_query_when_preferred() -> None:
    auth = Auth(JWT, "ws://127.0.0.1:8765/ws?merchant=DEMO")
    header = Dialect()
    assert header.authenticated_url(auth, "agent") == "ws://127.0.0.1:8765/ws?merchant=DEMO"
    assert header.authenticated_headers(auth, "agent") == {"Authorization": f"Bearer {JWT}"}
    resumed = header.authenticated_url(auth, "customer", resume_token="r1", since=42)
    assert resumed == "ws://127.0.0.1:8765/ws?merchant=DEMO&token=r1&since=42"

    class QueryDialect(Dialect):
        token_in = "query"

        def headers(self, role: str) -> dict[str, str]:
            return {"X-Tenant": "t1"}

    query = QueryDialect()
    assert query.authenticated_url(auth, "agent") == f"ws://127.0.0.1:8765/ws?merchant=DEMO&token={JWT}"
    assert query.authenticated_headers(auth, "agent") == {"X-Tenant": "t1"}
    # a resume's token is the resume token: the JWT goes in the header then
    assert (
        query.authenticated_url(auth, "customer", resume_token="r1") == "ws://127.0.0.1:8765/ws?merchant=DEMO&token=r1"
    )
    assert query.authenticated_headers(auth, "customer", resume_token="r1") == {
        "X-Tenant": "t1",
        "Authorization": f"Bearer {JWT}",
    }
    assert Dialect().authenticated_url(Auth(JWT, "ws://h:1"), "agent") == "ws://h:1/ws"


# 2. Options and the runner --------------------------------------------------------


@pytest.mark.timeout(10)
def test_load_options_check_the_auth_options() -> None:
    check_options(LoadOptions(auth="rest"))  # the embedded mock makes a key up
    check_options(LoadOptions(auth="rest", host="ws://h:1/ws", api_key="k", rest_url="https://h/rest/v2"))
    for opts, says in [
        (LoadOptions(auth="rest", host="ws://h:1/ws"), "needs --api-key"),
        (LoadOptions(api_key="k"), "with --auth rest only"),
        (LoadOptions(auth="rest", rest_url="ftp://h/x"), r"--rest-url must be an http\(s\) URL"),
        (LoadOptions(auth="token"), "--auth must be query or rest"),
    ]:
        with pytest.raises(UsageError, match=says):
            check_options(opts)


@pytest.mark.timeout(10)
def test_embedded_keys_one_per_agent_user_and_the_key_stays_off_the_command_line() -> None:
    assert LoadOptions(auth="rest", api_key="k1", agent_users=3).api_keys() == ["k1", "k1-2", "k1-3"]
    assert LoadOptions(auth="rest", api_key="a,b", agent_users=3).api_keys() == ["a", "b", "a-3"]
    assert LoadOptions(auth="rest", host="ws://h:1/ws", api_key="k1", agent_users=3).api_keys() == ["k1"]
    (made_up,) = LoadOptions(auth="rest").api_keys()
    assert len(made_up) >= 16
    opts = LoadOptions(auth="rest", api_key="secret-key", rest_url="http://h:2/rest/v2")
    cmd = locust_command(opts, "ws://h:1/ws", "/tmp/x")
    assert cmd[cmd.index("--auth") + 1] == "rest"
    assert cmd[cmd.index("--rest-url") + 1] == "http://h:2/rest/v2"
    assert "secret-key" not in " ".join(cmd)
    assert "--auth" not in locust_command(LoadOptions(), "ws://h:1/ws", "/tmp/x")


@pytest.mark.timeout(10)
def test_the_hint_names_the_api_key_when_every_auth_was_refused() -> None:
    summary = {
        "kpis": {"auth": {"requests": 5, "failures": 5}},
        "failures": [{"name": "auth", "error": "HTTP 401 from http://h/rest/v2/conversation/agent/auth"}],
    }
    assert hint(summary, "ws://h/ws") == "the REST auth was refused: is --api-key right?"


# 3. Sessions against a mock that requires tokens ---------------------------------------


@pytest.fixture(scope="module")
def secured() -> Iterator[MockProcess]:
    server = MockProcess(
        ["--agents", "0", "--routing", "manual", "--rate", "1000", "--burst", "2000", "--api-key", "right"]
    )
    try:
        yield server
    finally:
        server.stop()


def own_hub(test: Callable[..., None]) -> Callable[..., None]:
    """Run the test in a thread of its own, so with a gevent hub of its own,
    destroyed at the end: the main thread's hub is never started here. (A hub
    started here and then idle through a minute of blocking subprocess tests
    keeps a stale loop time, and a later ``gevent.joinall(timeout=60)`` in
    another module would return at once.)"""

    @functools.wraps(test)
    def run(*args: object, **kwargs: object) -> None:
        failure: list[BaseException] = []

        def body() -> None:
            try:
                test(*args, **kwargs)
            except BaseException as exc:  # re-raised in the test's own thread
                failure.append(exc)
            finally:
                gevent.get_hub().destroy(destroy_loop=True)

        thread = threading.Thread(target=body, name=f"hub-{test.__name__}")
        thread.start()
        thread.join()
        if failure:
            raise failure[0]

    return run


class Row(NamedTuple):
    name: str
    response_time: float | None
    exception: BaseException | None


class Recorder:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def __call__(
        self, name: str, response_time: float | None, *, length: int = 0, exception: BaseException | None = None
    ) -> None:
        self.rows.append(Row(name, response_time, exception))

    def names(self, *, failed: bool = False) -> list[str]:
        return [r.name for r in self.rows if (r.exception is not None) is failed]


def _kwargs(rec: Recorder, seed: int, key: str, rest_url: str | None) -> dict[str, object]:
    return {
        "record": rec,
        "faker": ChatFaker(seed),
        "rng": random.Random(seed),
        "pacing": Pacing.of("fast"),
        "timeout": 10.0,
        "auth": AuthSettings(api_key=key, rest_url=rest_url),
    }


@pytest.mark.timeout(60)
@own_hub
def test_sessions_authenticate_then_connect_with_the_jwt_and_chat(secured: MockProcess) -> None:
    assert secured.rest_url is not None
    assert discover_rest_url(secured.url) == secured.rest_url
    rec = Recorder()
    ag = AgentSession(secured.url, manual=True, **_kwargs(rec, 1, "right", secured.rest_url))  # type: ignore[arg-type]
    cu = CustomerSession(secured.url, **_kwargs(rec, 2, "right", secured.rest_url))  # type: ignore[arg-type]
    try:
        ag.connect()
        assert ag.auth is not None and ag.auth.participant_name == "Agent 1"
        cu.connect()
        assert cu.auth is not None and cu.auth.websocket_url == secured.url
        cu.start_chat(question="Where is my order 1234?")
        conversation = ag.take_chat()
        assert cu.wait_for_agent()
        assert cu.agent_name == "Agent 1"  # the agent the key belongs to, not the session's fake name
        ag.reply(conversation, "Let me check.")
        assert cu.wait_for_reply() is not None
        cu.reconnect()  # the same customer token (Bearer) with the resume token in the query
        cu.say("Still there?")
        assert ag.wait_for_customer_message(conversation) is not None
        cu.close_chat()
    finally:
        cu.disconnect()
        ag.disconnect()
    assert rec.names(failed=True) == []
    assert rec.names().count(KPI.AUTH) == 2
    assert rec.names().count(KPI.CONNECT) == 2
    assert KPI.RECONNECT in rec.names()


@pytest.mark.timeout(30)
@own_hub
def test_a_refused_auth_is_an_auth_failure_and_no_connect_is_attempted(secured: MockProcess) -> None:
    rec = Recorder()
    for session in (
        AgentSession(secured.url, **_kwargs(rec, 3, "wrong", secured.rest_url)),  # type: ignore[arg-type]
        CustomerSession(secured.url, **_kwargs(rec, 4, "wrong", secured.rest_url)),  # type: ignore[arg-type]
    ):
        with pytest.raises(OperationFailed):
            session.connect()
        assert session.connect_ok is False  # the user backs off as after a failed connect
        assert session.conn is None
    assert [r.name for r in rec.rows] == [KPI.AUTH, KPI.AUTH]
    reasons = [repr(r.exception) for r in rec.rows]
    assert reasons == [
        f"HTTP 401 from {secured.rest_url}/conversation/agent/auth (credentials: unknown API key)",
        f"HTTP 401 from {secured.rest_url}/webchat-sim/customer_auth (credentials: unknown API key)",
    ]
    assert all(r.response_time is not None for r in rec.rows)


@pytest.mark.timeout(30)
@own_hub
def test_nothing_answering_the_rest_url_is_one_line_naming_it() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rec = Recorder()
    cu = CustomerSession(
        "ws://127.0.0.1:9/ws",
        **_kwargs(rec, 5, "k", f"http://127.0.0.1:{port}/rest/v2"),  # type: ignore[arg-type]
    )
    with pytest.raises(OperationFailed):
        cu.connect()
    (row,) = rec.rows
    assert row.name == KPI.AUTH
    assert repr(row.exception) == (
        f"nothing answered at http://127.0.0.1:{port}/rest/v2/webchat-sim/customer_auth (connection refused)"
    )
    assert cu.persona.email not in repr(row.exception)


# 4. webchat-sim load --auth rest end to end ------------------------------------------


def _stats(prefix: Path) -> dict[str, dict[str, str]]:
    with open(f"{prefix}_stats.csv", newline="") as fh:
        return {row["Name"]: row for row in csv.DictReader(fh)}


def _failures(prefix: Path) -> list[dict[str, str]]:
    with open(f"{prefix}_failures.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.timeout(120)
def test_load_with_rest_auth_against_the_embedded_mock(tmp_path: Path) -> None:
    prefix = tmp_path / "run"
    proc = run_cli("load", "--auth", "rest", "--api-key", "k1", "--users", "4", "--run-time", "5s",
                   "--csv", str(prefix), timeout=90)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("result: PASS (0 failures)")
    assert "REST auth at http://127.0.0.1:" in proc.stdout
    assert "k1" not in proc.stdout  # the key is not echoed
    stats = _stats(prefix)
    assert int(stats["auth"]["Request Count"]) > 0
    assert int(stats["auth"]["Failure Count"]) == 0
    assert int(stats["connect"]["Request Count"]) == int(stats["auth"]["Request Count"])
    assert int(stats["close"]["Request Count"]) > 0  # chats complete
    assert int(stats["first reply"]["Request Count"]) > 0
    assert int(stats["Aggregated"]["Failure Count"]) == 0


@pytest.mark.timeout(120)
def test_load_with_rest_auth_and_agent_users(tmp_path: Path) -> None:
    prefix = tmp_path / "run"
    proc = run_cli("load", "--auth", "rest", "--api-key", "k1", "--users", "4", "--agent-users", "1",
                   "--run-time", "5s", "--csv", str(prefix), timeout=90)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "with 0 autopilot agent(s)" in proc.stdout  # the agent user answers, authenticated as an agent
    stats = _stats(prefix)
    chats = int(stats["start chat"]["Request Count"])
    assert chats > 0
    assert int(stats["auth"]["Request Count"]) >= chats + 1  # every customer chat, plus the agent
    assert int(stats["take chat"]["Request Count"]) > 0
    assert int(stats["message delivery"]["Request Count"]) > 0
    assert int(stats["Aggregated"]["Failure Count"]) == 0


@pytest.fixture
def serve_right_key() -> Iterator[str]:
    """``python -m simulator serve --port 0 --api-key right``: its websocket URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", "--port", "0", "--api-key", "right", "--pace", "fast"],
        cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("webchat-sim serving ws://"), first
        yield first.split()[2]
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.timeout(120)
def test_a_wrong_key_is_one_auth_failure_row_no_connect_and_exit_1(serve_right_key: str, tmp_path: Path) -> None:
    prefix = tmp_path / "run"
    proc = run_cli("load", "--host", serve_right_key, "--auth", "rest", "--api-key", "wrong", "--users", "3",
                   "--run-time", "4s", "--csv", str(prefix), timeout=90)  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    assert proc.stdout.rstrip().splitlines()[-1].startswith("result: FAIL (")
    assert "the REST auth was refused: is --api-key right?" in proc.stdout
    stats = _stats(prefix)
    assert "connect" not in stats  # never attempted
    assert int(stats["auth"]["Failure Count"]) == int(stats["auth"]["Request Count"]) > 0
    assert int(stats["auth"]["Request Count"]) <= 3 * 6  # backed off, not hammered
    (row,) = _failures(prefix)
    assert row["Name"] == "auth"
    assert row["Error"].startswith("HTTP 401 from http://127.0.0.1:")
    assert row["Error"].endswith("/rest/v2/webchat-sim/customer_auth (credentials: unknown API key)")


@pytest.mark.timeout(30)
def test_load_refuses_rest_auth_against_a_host_without_a_key() -> None:
    proc = run_cli("load", "--host", "ws://127.0.0.1:9/ws", "--auth", "rest", timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "webchat-sim load: error: --auth rest against --host needs --api-key (the embedded mock makes one up)"
    )
