"""The gevent websocket client transport against real servers on 127.0.0.1.

The servers (websockets' asyncio implementation and a raw TCP one that never
completes a closing handshake) run in a separate process, tests/_ws_server.py:
asyncio and gevent never share a process. This process is not monkey-patched;
the transport uses gevent.socket explicitly.
"""

from __future__ import annotations

import select
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import gevent
import gevent.socket
import gevent.ssl
import pytest

from simulator.errors import FrameError
from simulator.load.transport import (
    ConnectError,
    Connection,
    ConnectionClosedError,
    ConnectTimeout,
    HandshakeError,
    TransportError,
    WaitTimeout,
    redact_url,
)
from simulator.protocol import ConversationMessage, EventType, Frame, FrameType, decode, encode

SERVER_SCRIPT = Path(__file__).with_name("_ws_server.py")
CONV = "c-1"
# Generous bounds for "promptly": far below the timeouts they race against.
PROMPT = 2.0
WAIT = 10.0


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path] | None:
    """A self-signed certificate for 127.0.0.1 (cert, key); None without the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run(
        [openssl, *request, "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@pytest.fixture(scope="module")
def ports(certificate: tuple[Path, Path] | None) -> Iterator[tuple[int, int, int]]:
    """(websocket port, raw port, TLS websocket port or 0) of a server process started for this module."""
    command = [sys.executable, str(SERVER_SCRIPT), "--lifetime", "300"]
    if certificate is not None:
        command += ["--tls", str(certificate[0]), str(certificate[1])]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "the test server did not start within 20 s"
        words = proc.stdout.readline().split()
        assert words[:1] == ["PORTS"], f"unexpected server output: {words}"
        yield int(words[1]), int(words[2]), int(words[3])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def url(ports: tuple[int, int, int]) -> Callable[[str], str]:
    return lambda path: f"ws://127.0.0.1:{ports[0]}{path}"


@pytest.fixture
def raw_url(ports: tuple[int, int, int]) -> Callable[[str], str]:
    return lambda path: f"ws://127.0.0.1:{ports[1]}{path}"


@pytest.fixture
def connections() -> Iterator[list[Connection]]:
    """Connections opened by a test, closed (bounded) at its end."""
    opened: list[Connection] = []
    yield opened
    for conn in opened:
        conn.close(timeout=1)


@pytest.fixture
def connect(connections: list[Connection]) -> Callable[..., Connection]:
    def open_connection(target: str, **kwargs: object) -> Connection:
        kwargs.setdefault("timeout", 5.0)
        conn = Connection.connect(target, **kwargs)  # type: ignore[arg-type]
        connections.append(conn)
        return conn

    return open_connection


def message(body: str, cid: str) -> Frame:
    return Frame(
        type=FrameType.MESSAGE, conversation_uuid=CONV, message=ConversationMessage(body=body, client_message_id=cid)
    )


def ack_of(cid: str) -> Callable[[Frame], bool]:
    return lambda f: f.type is FrameType.MESSAGE and f.message is not None and f.message.client_message_id == cid


def is_typing(frame: Frame) -> bool:
    return frame.event_type is EventType.TYPING


def kinds(frames: list[Frame]) -> list[str]:
    return [str(f.event_type or f.type) for f in frames]


# ---------------------------------------------------------------------------
# Sending and waiting


def test_send_and_wait_for_ack(url: Callable[[str], str], connect: Callable[..., Connection]) -> None:
    conn = connect(url("/chat"))
    conn.send(message("hello", "m1"))
    ack = conn.wait_for(ack_of("m1"), WAIT, description="ack of m1")
    assert ack.message is not None
    assert ack.message.body == "hello"
    assert ack.message.conversation_message_uuid == "m-1"
    # The events sent before the ack wait in the inbox, in arrival order.
    assert kinds(conn.frames()) == ["typing", "queue position"]
    assert conn.received == 3
    assert not conn.closed


def test_inbox_is_searched_first_and_only_the_match_is_consumed(
    url: Callable[[str], str], connect: Callable[..., Connection]
) -> None:
    conn = connect(url("/chat"))
    conn.send(message("one", "m1"))
    conn.send(message("two", "m2"))
    conn.wait_for(ack_of("m2"), WAIT)  # m1's ack and both rounds of events are now in the inbox
    assert kinds(conn.frames()) == ["typing", "queue position", "message", "typing", "queue position"]
    ack1 = conn.wait_for(ack_of("m1"), 0)  # no waiting: it is in the inbox
    assert ack1.message is not None
    assert ack1.message.client_message_id == "m1"
    typing = conn.wait_for(is_typing, 0)
    assert typing.event_typing is not None
    assert typing.event_typing.value == "typing..."
    assert kinds(conn.frames()) == ["queue position", "typing", "queue position"]
    assert kinds(conn.frames(consume=True)) == ["queue position", "typing", "queue position"]
    assert conn.frames() == []


def test_concurrent_waiters_each_get_their_frame(url: Callable[[str], str], connect: Callable[..., Connection]) -> None:
    conn = connect(url("/chat"))
    # Registered in the opposite order of the answers.
    second = gevent.spawn(conn.wait_for, ack_of("m2"), WAIT)
    first = gevent.spawn(conn.wait_for, ack_of("m1"), WAIT)
    gevent.sleep(0)  # let both register (a yield, not a delay)
    assert conn.waiting == 2
    conn.send(message("one", "m1"))
    conn.send(message("two", "m2"))
    gevent.joinall([first, second], timeout=WAIT, raise_error=True)
    assert first.value.message.client_message_id == "m1"
    assert second.value.message.client_message_id == "m2"
    # Nothing dropped: the interleaved events of both rounds are all there.
    assert kinds(conn.frames()) == ["typing", "queue position", "typing", "queue position"]
    assert conn.waiting == 0
    assert conn.dropped == 0


def test_a_frame_goes_to_the_first_matching_waiter(
    url: Callable[[str], str], connect: Callable[..., Connection]
) -> None:
    conn = connect(url("/chat"))
    waiters = [gevent.spawn(conn.wait_for, is_typing, WAIT) for _ in range(3)]
    gevent.sleep(0)
    conn.send(message("burst 3", "m1"))
    gevent.joinall(waiters, timeout=WAIT, raise_error=True)
    assert [w.value.event_typing.value for w in waiters] == ["0", "1", "2"]
    conn.wait_for(ack_of("m1"), WAIT)
    assert conn.frames() == []


def test_inbox_limit_discards_the_oldest_and_counts(
    url: Callable[[str], str], connect: Callable[..., Connection]
) -> None:
    conn = connect(url("/chat"), inbox_limit=3)
    conn.send(message("burst 5", "m1"))
    conn.wait_for(ack_of("m1"), WAIT)
    assert [f.event_typing.value for f in conn.frames() if f.event_typing] == ["2", "3", "4"]
    assert conn.dropped == 2
    assert conn.received == 6


def test_frames_sent_with_the_handshake_response_are_kept(
    url: Callable[[str], str], connect: Callable[..., Connection]
) -> None:
    conn = connect(url("/hello"))
    hello = conn.wait_for(is_typing, WAIT)
    assert hello.conversation_uuid == "c-hello"


def test_fragmented_message_is_reassembled(url: Callable[[str], str], connect: Callable[..., Connection]) -> None:
    conn = connect(url("/chat"))
    conn.send(message("fragmented", "m1"))
    ack = conn.wait_for(ack_of("m1"), WAIT)
    assert ack.message is not None
    assert ack.message.body == "fragmented"


def test_echo_round_trip_of_frames_and_raw_bytes(url: Callable[[str], str], connect: Callable[..., Connection]) -> None:
    conn = connect(url("/echo"))
    frame = decode(b'{"type": "ping", "x_extra": {"kept": true}}')
    conn.send(frame)
    echoed = conn.wait_for(lambda f: f.type is FrameType.PING, WAIT)
    assert encode(echoed) == encode(frame)
    conn.send(encode(message("raw", "m1")))  # bytes go out as a text frame, as they are
    assert conn.wait_for(ack_of("m1"), WAIT) == message("raw", "m1")


def test_compression(url: Callable[[str], str], connect: Callable[..., Connection]) -> None:
    conn = connect(url("/echo"), compression=True)
    big = message("x" * 50_000, "m1")
    conn.send(big)
    assert conn.wait_for(ack_of("m1"), WAIT) == big


def test_wss(
    ports: tuple[int, int, int], certificate: tuple[Path, Path] | None, connect: Callable[..., Connection]
) -> None:
    if certificate is None:
        pytest.skip("no openssl command to make a certificate")
    target = f"wss://127.0.0.1:{ports[2]}/chat"
    context = gevent.ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(certificate[0]))
    conn = connect(target, ssl=context)
    conn.send(message("secret", "m1"))
    ack = conn.wait_for(ack_of("m1"), WAIT)
    assert ack.message is not None
    assert ack.message.body == "secret"
    conn.close()
    assert conn.close_code == 1000
    with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        Connection.connect(target, timeout=5)  # the default context does not trust it
    with pytest.raises(ValueError, match="gevent"):
        Connection.connect(target, ssl=ssl.create_default_context())  # a blocking stdlib context


def test_on_frame_observes_every_valid_frame_on_arrival(
    url: Callable[[str], str], connect: Callable[..., Connection]
) -> None:
    seen: list[tuple[str, float]] = []
    conn = connect(url("/chat"), on_frame=lambda f, arrived: seen.append((str(f.event_type or f.type), arrived)))
    before = time.perf_counter()
    conn.send(message("hello", "m1"))
    conn.wait_for(ack_of("m1"), WAIT)
    assert [kind for kind, _ in seen] == ["typing", "queue position", "message"]
    assert all(before <= arrived <= time.perf_counter() for _, arrived in seen)


# ---------------------------------------------------------------------------
# Invalid frames


def test_invalid_frame_is_reported_and_the_session_carries_on(
    url: Callable[[str], str], connect: Callable[..., Connection]
) -> None:
    reported: list[tuple[FrameError, bytes | str]] = []
    conn = connect(url("/chat"), on_invalid=lambda error, raw: reported.append((error, raw)))
    conn.send(message("bad", "m1"))
    conn.wait_for(ack_of("m1"), WAIT)
    [(error, raw)] = reported
    assert error.path == "event_queue_position.position"
    assert error.reason == 'expected integer, got string "2"'
    assert error.code == "invalid_type"
    assert b'"position": "2"' in bytes(raw if isinstance(raw, bytes) else raw.encode())
    assert conn.invalid == 1
    # Still usable.
    conn.send(message("again", "m2"))
    conn.wait_for(ack_of("m2"), WAIT)


def test_binary_frame_is_reported_as_invalid(url: Callable[[str], str], connect: Callable[..., Connection]) -> None:
    reported: list[FrameError] = []
    conn = connect(url("/chat"), on_invalid=lambda error, raw: reported.append(error))
    conn.send(message("binary", "m1"))
    conn.wait_for(ack_of("m1"), WAIT)
    [error] = reported
    assert error.code == "binary_frame"
    assert "binary frame of 8 bytes" in str(error)


def test_validate_false_skips_the_context_check(url: Callable[[str], str], connect: Callable[..., Connection]) -> None:
    strict_errors: list[FrameError] = []
    strict = connect(url("/chat"), on_invalid=lambda error, raw: strict_errors.append(error))
    lax = connect(url("/chat"), validate=False, on_invalid=lambda error, raw: pytest.fail(str(error)))
    for conn in (strict, lax):
        conn.send(message("nocontext", "m1"))
        conn.wait_for(ack_of("m1"), WAIT)
    assert [(e.path, e.code) for e in strict_errors] == [("conversation_uuid", "missing_field")]
    assert any(f.message is not None and f.message.body == "no conversation" for f in lax.frames())


def test_failing_handler_does_not_break_the_connection(
    url: Callable[[str], str], connect: Callable[..., Connection]
) -> None:
    def explode(error: FrameError, raw: bytes | str) -> None:
        raise RuntimeError("handler bug")

    conn = connect(url("/chat"), on_invalid=explode)
    conn.send(message("bad", "m1"))
    conn.wait_for(ack_of("m1"), WAIT)
    assert conn.invalid == 1
    assert not conn.closed


def test_predicate_error_goes_to_its_waiter_only(url: Callable[[str], str], connect: Callable[..., Connection]) -> None:
    conn = connect(url("/chat"))

    def broken(frame: Frame) -> bool:
        raise KeyError("predicate bug")

    failing = gevent.spawn(conn.wait_for, broken, WAIT)
    gevent.sleep(0)
    conn.send(message("hello", "m1"))
    ack = conn.wait_for(ack_of("m1"), WAIT)
    failing.join(timeout=WAIT)
    assert isinstance(failing.exception, KeyError)
    assert ack.message is not None
    assert kinds(conn.frames()) == ["typing", "queue position"]  # the frame it choked on was kept


# ---------------------------------------------------------------------------
# Timeouts


def test_wait_times_out_within_its_bound(url: Callable[[str], str], connect: Callable[..., Connection]) -> None:
    conn = connect(url("/silent"))
    conn.send(message("anyone?", "m1"))
    start = time.monotonic()
    with pytest.raises(WaitTimeout, match="waiting for the answer") as info:
        conn.wait_for(lambda f: True, 0.3, description="the answer")
    elapsed = time.monotonic() - start
    assert 0.29 <= elapsed < 0.3 + PROMPT  # a timer may round its deadline down by a hair
    assert info.value.timeout == 0.3
    assert conn.waiting == 0
    assert not conn.closed


def test_an_outer_timeout_withdraws_the_waiter(url: Callable[[str], str], connect: Callable[..., Connection]) -> None:
    conn = connect(url("/silent"))
    with pytest.raises(gevent.Timeout), gevent.Timeout(0.1):
        conn.wait_for(lambda f: True, WAIT)
    assert conn.waiting == 0


def test_ping_measures_a_round_trip(url: Callable[[str], str], connect: Callable[..., Connection]) -> None:
    conn = connect(url("/silent"))
    rtt = conn.ping(WAIT)
    assert 0 < rtt < PROMPT


def test_ping_times_out_on_a_peer_that_does_not_answer(
    raw_url: Callable[[str], str], connect: Callable[..., Connection]
) -> None:
    conn = connect(raw_url("/stall"), close_timeout=0.5)
    start = time.monotonic()
    with pytest.raises(WaitTimeout, match="pong"):
        conn.ping(0.2)
    assert time.monotonic() - start < 0.2 + PROMPT


# ---------------------------------------------------------------------------
# Closing


def test_server_close_fails_waiters_promptly(url: Callable[[str], str], connect: Callable[..., Connection]) -> None:
    conn = connect(url("/chat"))
    conn.send(message("close 4001 bye now", "m1"))
    start = time.monotonic()
    with pytest.raises(ConnectionClosedError) as info:
        conn.wait_for(ack_of("m1"), WAIT)
    assert time.monotonic() - start < PROMPT
    assert (info.value.code, info.value.reason) == (4001, "bye now")
    assert str(info.value) == "connection closed with code 4001 (application code): bye now"
    assert conn.closed
    assert (conn.close_code, conn.close_reason) == (4001, "bye now")
    with pytest.raises(ConnectionClosedError):
        conn.send(message("too late", "m2"))
    with pytest.raises(ConnectionClosedError):
        conn.wait_for(lambda f: True, WAIT)  # at once, not after WAIT
    assert kinds(conn.frames()) == []  # "close" sends no events first


def test_connection_lost_fails_waiters_promptly(url: Callable[[str], str], connect: Callable[..., Connection]) -> None:
    conn = connect(url("/chat"))
    waiter = gevent.spawn(conn.wait_for, ack_of("m1"), WAIT)
    gevent.sleep(0)
    conn.send(message("drop", "m1"))
    waiter.join(timeout=PROMPT)
    assert isinstance(waiter.exception, ConnectionClosedError)
    assert waiter.exception.code == 1006
    assert conn.closed
    assert conn.close_code == 1006


def test_close_handshake(url: Callable[[str], str], connect: Callable[..., Connection]) -> None:
    conn = connect(url("/echo?id=handshake-1"), close_timeout=5)
    waiter = gevent.spawn(conn.wait_for, lambda f: False, WAIT)
    gevent.sleep(0)
    start = time.monotonic()
    conn.close(1000, "done")
    assert time.monotonic() - start < PROMPT  # completed, not timed out
    assert conn.closed
    assert (conn.close_code, conn.close_reason) == (1000, "done")  # the server's echo
    waiter.join(timeout=PROMPT)
    assert isinstance(waiter.exception, ConnectionClosedError)
    assert waiter.exception.code == 1000
    conn.close()  # idempotent
    with pytest.raises(ConnectionClosedError):
        conn.send(message("too late", "m1"))
    # The server saw a clean close with our code and reason.
    info = connect(url("/closeinfo?id=handshake-1")).wait_for(is_typing, WAIT)
    assert info.event_typing is not None
    assert info.event_typing.value == "1000 done"


def test_close_is_bounded_when_the_peer_never_answers(
    raw_url: Callable[[str], str], connect: Callable[..., Connection]
) -> None:
    conn = connect(raw_url("/stall"))
    waiter = gevent.spawn(conn.wait_for, lambda f: True, WAIT)
    gevent.sleep(0)
    start = time.monotonic()
    conn.close(timeout=0.3)
    assert 0.3 <= time.monotonic() - start < 0.3 + PROMPT
    assert conn.closed
    assert conn.close_code == 1006  # no close frame came back
    waiter.join(timeout=PROMPT)
    assert isinstance(waiter.exception, ConnectionClosedError)
    assert waiter.exception.code == 1000  # the close frame we sent


def test_context_manager_closes(url: Callable[[str], str]) -> None:
    with Connection.connect(url("/echo"), timeout=5) as conn:
        conn.send(message("hi", "m1"))
        conn.wait_for(ack_of("m1"), WAIT)
    assert conn.closed
    assert conn.close_code == 1000


# ---------------------------------------------------------------------------
# Connecting


def test_connect_to_a_closed_port_fails_fast() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(ConnectError, match="connection refused") as info:
        Connection.connect(f"ws://127.0.0.1:{port}/ws", timeout=WAIT)
    assert time.monotonic() - start < PROMPT
    assert not isinstance(info.value, ConnectTimeout)
    assert isinstance(info.value, TransportError)


def test_connect_times_out_when_the_handshake_is_never_answered(raw_url: Callable[[str], str]) -> None:
    start = time.monotonic()
    with pytest.raises(ConnectTimeout, match=r"timed out after 0\.3 s"):
        Connection.connect(raw_url("/mute"), timeout=0.3)
    assert time.monotonic() - start < 0.3 + PROMPT


def test_handshake_refused(url: Callable[[str], str]) -> None:
    with pytest.raises(HandshakeError, match="HTTP 403") as info:
        Connection.connect(url("/reject"), timeout=5)
    assert info.value.status == 403


def test_invalid_arguments(url: Callable[[str], str]) -> None:
    with pytest.raises(ValueError, match="isn't a valid URI"):
        Connection.connect("http://127.0.0.1:1/")
    with pytest.raises(ValueError, match="inbox_limit"):
        Connection.connect(url("/echo"), inbox_limit=0)


# Failure messages: no per-participant values, stable prefixes -------------------


@pytest.mark.timeout(30)
def test_connect_errors_name_the_url_without_query_or_credentials() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"ws://ann:secret@127.0.0.1:{port}/ws?role=customer&name=Ann+Lee&email=ann%40example.com"
    with pytest.raises(ConnectError) as info:
        Connection.connect(url, timeout=WAIT)
    assert str(info.value) == f"nothing answered at ws://127.0.0.1:{port}/ws (connection refused)"
    assert info.value.url == url and info.value.reason == "connection refused"


@pytest.mark.timeout(30)
def test_a_rejected_handshake_says_http_status_from_the_url(url: Callable[[str], str]) -> None:
    with pytest.raises(HandshakeError) as info:
        Connection.connect(url("/reject?role=customer&name=Ann&email=ann@example.com"), timeout=5)
    assert str(info.value) == f"HTTP 403 from {url('/reject')}"


@pytest.mark.timeout(30)
def test_an_unanswered_handshake_is_nothing_answered(raw_url: Callable[[str], str]) -> None:
    with pytest.raises(ConnectTimeout) as info:
        Connection.connect(raw_url("/mute"), timeout=0.3)
    assert str(info.value) == f"nothing answered at {raw_url('/mute')} (timed out after 0.3 s)"


@pytest.mark.timeout(30)
def test_an_http_1_0_error_page_still_gives_its_status() -> None:
    # http.server answers HTTP/1.0, which websockets does not parse: the status line still says 404
    with gevent.socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def answer() -> None:
            peer, _ = listener.accept()
            with peer:
                peer.recv(65536)
                peer.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Type: text/html\r\n\r\n<h1>nope</h1>")

        server = gevent.spawn(answer)
        with pytest.raises(HandshakeError) as info:
            Connection.connect(f"ws://127.0.0.1:{port}/nope?name=Ann", timeout=WAIT)
        server.join(timeout=WAIT)
    assert info.value.status == 404
    assert str(info.value) == f"HTTP 404 from ws://127.0.0.1:{port}/nope"


def test_redact_url() -> None:
    assert redact_url("wss://u:p@example.com:8443/ws?role=agent&name=Alice#f") == "wss://example.com:8443/ws"
    assert redact_url("ws://127.0.0.1:9/ws") == "ws://127.0.0.1:9/ws"
    assert redact_url("ws://u@[zz/ws?name=Ann") == "ws://[zz/ws"  # not even a valid URL
