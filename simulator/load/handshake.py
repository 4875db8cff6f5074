"""Opening a websocket for the load generator's transport: URL, TCP, TLS and
the opening handshake (websockets' sans-I/O client protocol on a gevent
socket), and the transport's errors.

:func:`open_websocket` does the I/O of :meth:`Connection.connect
<simulator.load.transport.Connection.connect>`, which wraps what it returns.
Every error is a :class:`TransportError`; the messages name URLs without
their query string, fragment or credentials (:func:`redact_url`), so they
carry no per-participant values and the failures of many users group.

No proxy is ever used, whatever the environment says.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import ssl as ssl_module
from collections.abc import Mapping
from typing import Any, Final

import gevent
import gevent.ssl
from gevent import socket as gsocket
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus, InvalidURI
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.http11 import USER_AGENT, Response
from websockets.uri import parse_uri

from ..errors import (
    ConnectError,
    ConnectionClosedError,
    ConnectTimeout,
    HandshakeError,
    TransportError,
    WaitTimeout,
    redact_url,
)

__all__ = [
    "RECV_SIZE",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosedError",
    "HandshakeError",
    "TransportError",
    "WaitTimeout",
    "close_quietly",
    "describe_cause",
    "open_websocket",
    "redact_url",
]

logger = logging.getLogger(__name__)

RECV_SIZE: Final = 65536
"""Bytes asked for by each read of a socket."""


# ---------------------------------------------------------------------------
# Errors


# ---------------------------------------------------------------------------
# The opening handshake


def open_websocket(
    url: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    max_size: int = 2**20,
    compression: bool = False,
    ssl: ssl_module.SSLContext | None = None,
) -> tuple[gsocket.socket, ClientProtocol, list[object]]:
    """Connect to ``url`` and perform the opening handshake within ``timeout``
    seconds; return the socket, the protocol (now ``OPEN``) and the events
    that came with the handshake response (frames the server sent at once).

    See :meth:`Connection.connect <simulator.load.transport.Connection.connect>`
    for the arguments. Raises :class:`ConnectTimeout`, :class:`HandshakeError`
    or :class:`ConnectError`; :class:`ValueError` for a URL that isn't a
    websocket URL or an ``ssl`` that cannot work.
    """
    try:
        wsuri = parse_uri(url)
    except InvalidURI as exc:
        raise ValueError(str(exc)) from None
    if ssl is not None:
        if not wsuri.secure:
            raise ValueError("ssl is incompatible with a ws:// URL")
        if not isinstance(ssl, gevent.ssl.SSLContext):  # its sockets would block the whole process
            raise ValueError("ssl must be a gevent.ssl.SSLContext (ssl.SSLContext once gevent has monkey-patched)")

    protocol = ClientProtocol(
        wsuri,
        extensions=enable_client_permessage_deflate(None) if compression else None,
        max_size=max_size,
    )
    request = protocol.connect()
    request.headers["User-Agent"] = USER_AGENT
    for name, value in (headers or {}).items():
        if name in request.headers:
            del request.headers[name]
        request.headers[name] = value

    deadline = gevent.Timeout(timeout)
    deadline.start()
    sock: Any = None
    try:
        sock = _open_socket(wsuri.host, wsuri.port)  # an OSError until here: nothing answered
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if wsuri.secure:
            sock = (ssl or _default_ssl_context()).wrap_socket(sock, server_hostname=wsuri.host)
        protocol.send_request(request)
        for chunk in protocol.data_to_send():
            sock.sendall(chunk)
        events, head = _read_response(sock, protocol)
    except gevent.Timeout as exc:
        if exc is not deadline:
            raise
        close_quietly(sock)
        raise ConnectTimeout(url, timeout) from None
    except OSError as exc:
        close_quietly(sock)
        raise ConnectError(url, _describe_os_error(exc), answered=sock is not None) from exc
    except BaseException:
        close_quietly(sock)
        raise
    finally:
        deadline.close()

    handshake_exc = protocol.handshake_exc
    if handshake_exc is not None:
        close_quietly(sock)
        if isinstance(handshake_exc, InvalidStatus):
            status: int | None = handshake_exc.response.status_code
        else:  # e.g. an HTTP/1.0 error page, which websockets does not parse: its status still says why
            status = _http_status(head)
        raise HandshakeError(url, str(handshake_exc), status=status) from handshake_exc

    return sock, protocol, events[1:]


# ---------------------------------------------------------------------------
# Helpers


def _open_socket(host: str, port: int) -> gsocket.socket:
    """A connected TCP socket; an IP address is used as it is (gevent's
    ``create_connection`` would resolve even that in its thread pool)."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return gsocket.create_connection((host, port))
    sock = gsocket.socket(family, socket.SOCK_STREAM)
    try:
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _read_response(sock: Any, protocol: ClientProtocol) -> tuple[list[object], bytes]:
    """Read until the handshake response is parsed (or has failed); return the
    events and the first bytes received (the status line of a response that
    could not be parsed)."""
    head = b""
    while True:
        data = sock.recv(RECV_SIZE)
        if len(head) < _STATUS_LINE_LIMIT:
            head += data[: _STATUS_LINE_LIMIT - len(head)]
        if data:
            protocol.receive_data(data)
        else:
            protocol.receive_eof()
        events: list[object] = list(protocol.events_received())
        if events and isinstance(events[0], Response):
            return events, head
        if protocol.handshake_exc is not None or not data:
            return events, head


_STATUS_LINE_LIMIT: Final = 256
_STATUS_LINE: Final = re.compile(rb"HTTP/\d(?:\.\d)? ([1-5]\d\d)\b")


def _http_status(head: bytes) -> int | None:
    """The status code of an HTTP status line at the start of ``head``, if any."""
    match = _STATUS_LINE.match(head)
    return int(match.group(1)) if match else None


def _default_ssl_context() -> ssl_module.SSLContext:
    """Like :func:`ssl.create_default_context` for a client, but cooperative without monkey-patching."""
    context: ssl_module.SSLContext = gevent.ssl.SSLContext(ssl_module.PROTOCOL_TLS_CLIENT)
    context.load_default_certs()
    return context


def close_quietly(sock: Any) -> None:
    if sock is None:
        return
    try:
        sock.close()
    except OSError as exc:  # pragma: no cover - close() of a socket hardly fails
        logger.debug("error closing socket: %s", exc)


def _describe_os_error(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc.strerror or exc})"
    return exc.strerror or str(exc) or type(exc).__name__


def describe_cause(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
        return _describe_os_error(exc)
    return str(exc) or type(exc).__name__
