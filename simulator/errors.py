"""Every exception of webchat-sim, in one tree under one base class; each
carries structured fields and builds a readable, one-line message.

::

    SimulatorError
    ├── FrameError               a frame that is not a valid ConversationWebsocketMessage (the peer's fault)
    ├── UsageError               options that cannot work: one line, exit status 2, before anything starts
    │   └── TranscriptError      a transcript (record / replay) that cannot be read: names the file and line
    ├── MockStartError           the embedded mock server did not start
    ├── Interrupted              SIGINT/SIGTERM before a load run started
    ├── ScenarioError            a scenario spec or script that cannot be loaded
    ├── SessionStateError        a session verb called out of order (the scenario's mistake)
    ├── OperationFailed          a chat operation failed; already reported to Locust
    ├── TransportError           the load generator's websocket client
    │   ├── ConnectError         the connection could not be opened
    │   │   ├── ConnectTimeout
    │   │   └── HandshakeError   the server refused or botched the opening handshake
    │   ├── ConnectionClosedError
    │   └── WaitTimeout          no matching frame arrived in time
    ├── Refused                  the engine refuses a client's frame (becomes an error frame; never escapes)
    ├── IdentityError            a websocket URL that does not identify a participant
    ├── AccessDenied             credentials refused at the front door (``status``: 401 or 403)
    │   └── TokenError           a JWT that cannot be accepted
    │       ├── TokenMalformed   not a JWT, or missing claims (401)
    │       ├── TokenForged      bad signature or another issuer (401)
    │       ├── TokenExpired     past its ``exp`` (401)
    │       └── TokenWrongRole   a valid token of the wrong role or merchant (403)
    ├── BindError                the mock server cannot listen where it was told to
    └── StoreError               the database cannot be opened, migrated or written

Peer input never raises anything but :class:`FrameError` (decoding) or
:class:`Refused` (the engine's rules), both turned into error frames; the
load generator's failures are :class:`OperationFailed` measurements. Failure
and error texts carry no per-participant values (:func:`scrub`,
:func:`redact_url`), so many users' failures group into one row.
"""

from __future__ import annotations

import re
import signal
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from .protocol.enums import ErrorCode

__all__ = [
    "AccessDenied",
    "BindError",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosedError",
    "FrameError",
    "HandshakeError",
    "IdentityError",
    "Interrupted",
    "MockStartError",
    "OperationFailed",
    "Refused",
    "ScenarioError",
    "SessionStateError",
    "SimulatorError",
    "StoreError",
    "TokenError",
    "TokenExpired",
    "TokenForged",
    "TokenMalformed",
    "TokenWrongRole",
    "TranscriptError",
    "TransportError",
    "UsageError",
    "WaitTimeout",
    "redact_url",
    "scrub",
]

class SimulatorError(Exception):
    """Base class of every exception raised by webchat-sim."""


class FrameError(SimulatorError):
    """A frame that is not a valid ``ConversationWebsocketMessage``.

    ``path`` locates the offending value (``message.transport_statuses[0].status``,
    empty for the frame as a whole), ``reason`` says what is wrong with it and
    ``code`` is a stable machine-readable kind (``invalid_json``, ``not_object``,
    ``invalid_type``, ``invalid_enum``, ``missing_field``, ``too_large``, …).
    """

    def __init__(self, reason: str, *, path: str = "", code: str = "invalid_frame") -> None:
        self.reason = reason
        self.path = path
        self.code = code
        super().__init__(f"{path}: {reason}" if path else reason)


class UsageError(SimulatorError):
    """Options or arguments that cannot work: the CLI prints the message as one
    line and exits with status 2, before anything is started."""


class TranscriptError(UsageError):
    """A transcript (``--record``, ``replay``, ``import-har``) that
    cannot be read or written; the message names the file (and the line)."""


class MockStartError(SimulatorError):
    """The embedded mock server did not start (or not in time)."""


class Interrupted(SimulatorError):
    """SIGINT or SIGTERM arrived before the load run started (``signal`` is its name)."""

    def __init__(self, signum: int) -> None:
        self.signal = signal.Signals(signum).name
        super().__init__(self.signal)


# Texts without per-participant values -----------------------------------------------

_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MAX_REASON = 300


def scrub(text: str) -> str:
    """``text`` without uuids and email addresses, clipped: a failure reason
    that groups with those of other participants."""
    if "-" in text:
        text = _UUID.sub("<uuid>", text)
    if "@" in text:
        text = _EMAIL.sub("<email>", text)
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def redact_url(url: str) -> str:
    """``url`` without query string, fragment and credentials (``user:password@``):
    what error messages show, free of per-participant values."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:  # e.g. a bad IPv6 literal: cut by hand
        return re.sub(r"(//)[^/?#]*@", r"\1", url.partition("?")[0].partition("#")[0])


def _close_code_name(code: int) -> str:
    from websockets.frames import CloseCode  # the names of the registered close codes

    try:
        return CloseCode(code).name.replace("_", " ").lower()
    except ValueError:
        return "application code" if 3000 <= code <= 4999 else "unknown code"


class ScenarioError(SimulatorError):
    """A scenario spec that cannot be loaded."""


class SessionStateError(SimulatorError, RuntimeError):
    """A verb called when the session cannot do it: the scenario's mistake
    (e.g. ``say`` before ``start_chat``, anything before ``connect``), never
    something a peer sent. Not reported as a measurement."""


class OperationFailed(SimulatorError):
    """A session operation failed; it has already been reported.

    ``reason`` carries no per-participant values (uuids and email addresses
    are replaced, URLs come without their query string), so the failures of
    many users group into one row of Locust's failure table. ``repr()`` is
    the reason alone: Locust shows ``repr(exception)`` as the error of a
    failure (table, CSV, web UI) after the operation's name."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = scrub(reason)
        super().__init__(f"{name}: {self.reason}")

    def __repr__(self) -> str:
        return self.reason

    def __reduce__(self) -> tuple[type[OperationFailed], tuple[str, str]]:
        return (type(self), (self.name, self.reason))


class TransportError(SimulatorError):
    """Base class of the websocket transport's errors."""


class ConnectError(TransportError):
    """The connection to ``url`` could not be opened: ``reason`` says why.

    The message names the URL without its query string, fragment or
    credentials (:func:`redact_url`), so it carries no per-participant values
    and the failures of many users group into one row. It starts with a
    stable form a runner can detect: ``nothing answered at URL (REASON)`` when
    nothing accepted the TCP connection or nothing answered the opening
    handshake in time (refused, unreachable, unresolvable, timed out),
    ``connection to URL failed (REASON)`` when the connection broke during
    TLS or the handshake; :class:`HandshakeError` has its own forms.
    """

    def __init__(self, url: str, reason: str, *, answered: bool = False, message: str | None = None) -> None:
        self.url = url
        self.reason = reason
        where = redact_url(url)
        if message is None:
            if answered:
                message = f"connection to {where} failed ({reason})"
            else:
                message = f"nothing answered at {where} ({reason})"
        super().__init__(message)


class ConnectTimeout(ConnectError):
    """TCP connect, TLS and the opening handshake took longer than ``timeout`` seconds."""

    def __init__(self, url: str, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(url, f"timed out after {timeout:g} s")


class HandshakeError(ConnectError):
    """The server refused or botched the opening handshake.

    ``status`` is the HTTP status code of the response, ``None`` if there was
    no valid response at all. The message is ``HTTP STATUS from URL`` for a
    response other than ``101 Switching Protocols``, else ``invalid handshake
    response from URL (REASON)``.
    """

    def __init__(self, url: str, reason: str, *, status: int | None = None) -> None:
        self.status = status
        where = redact_url(url)
        if status is not None:
            message = f"HTTP {status} from {where}"
        else:
            message = f"invalid handshake response from {where} ({reason})"
        super().__init__(url, reason, message=message)


class ConnectionClosedError(TransportError):
    """The connection is closed (or closing): ``code`` and ``reason`` of the closing handshake.

    ``code`` is 1006 when the connection was lost without a closing handshake.
    """

    def __init__(self, code: int, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        name = _close_code_name(code)
        message = f"connection closed with code {code} ({name})"
        super().__init__(f"{message}: {reason}" if reason else message)


class WaitTimeout(TransportError):
    """No frame matching ``description`` arrived within ``timeout`` seconds."""

    def __init__(self, description: str, timeout: float) -> None:
        self.description = description
        self.timeout = timeout
        super().__init__(f"timed out after {timeout:g} s waiting for {description}")


class Refused(SimulatorError):
    """A client's frame is refused; caught in ``Engine.receive`` and sent back
    as an error frame (never escapes the engine)."""

    def __init__(self, code: ErrorCode, reason: str, *, object_id: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.object_id = object_id


class IdentityError(SimulatorError):
    """The query string does not identify a participant."""


class BindError(SimulatorError):
    """The server cannot listen where it was told to (the message says why, in one line)."""


class StoreError(SimulatorError):
    """The database (``serve --db``, ``webchat-sim db``) cannot be opened,
    migrated or written: the message says why, in one line."""


class AccessDenied(SimulatorError):
    """Credentials refused at the front door (REST call or websocket handshake):
    ``status`` is the HTTP status to answer with (401: none or not valid,
    403: valid but not allowed here); the message is one line, safe to send."""

    status = 401

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status


class TokenError(AccessDenied):
    """A JWT that cannot be accepted."""


class TokenMalformed(TokenError):
    """Not a JWT (three base64url parts), or a claim is missing or of the wrong type."""


class TokenForged(TokenError):
    """The signature does not verify with this server's secret (forged, tampered, another run's)."""


class TokenExpired(TokenError):
    """A genuine token past its ``exp``."""


class TokenWrongRole(TokenError):
    """A genuine token of the wrong role (or merchant) for what it is used on."""

    status = 403
