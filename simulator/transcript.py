"""Transcripts: what ``serve --record``, ``load --record`` and ``replay
import-har`` write and ``replay`` reads, one JSON object a line (JSON Lines).

Both wings write them (the mock server through :mod:`simulator.mock.record`,
the load generator through :mod:`simulator.load.record`), so the format lives
here, in neither wing. The first line is a header::

    {"transcript": 1, "source": "load", "started_epoch_ms": 1764600000000, ...}

``source`` is ``load``, ``serve``, ``har`` or ``replay``; what else the header
holds describes the run (the load run's ``seed``, ``pace``, ``queues``; the HAR
file's name). Every other line is one event of one connection::

    {"t": 12.345, "conn": 1, "role": "customer", "dir": "open", "url": "ws://127.0.0.1:8765/ws?role=customer&name=Ann"}
    {"t": 13.100, "conn": 1, "role": "customer", "dir": "send", "frame": {...}}
    {"t": 14.020, "conn": 1, "role": "customer", "dir": "recv", "frame": {...}}
    {"t": 20.000, "conn": 1, "role": "customer", "dir": "close", "code": 1000}

* ``t``: milliseconds since ``started_epoch_ms`` (a monotonic clock while
  recording; the HAR's own times for an import);
* ``conn``: the connection, a number unique within the file;
* ``role``: ``customer`` or ``agent``;
* ``dir``: **always from the participant's (the client's) point of view,
  whoever recorded**: ``send`` is a frame the participant sent to the server,
  ``recv`` one the server sent to the participant (a server transcript's
  "in" frames are ``send``), ``open`` and ``close`` the connection's ends; a
  serve recording and a load recording of the same chat read the same;
* ``frame``: the frame as it went on the wire, redacted (below); a payload
  that was not JSON is kept as the string ``invalid`` instead.

Redaction (:func:`redact`, :func:`redact_url`): the values of sensitive keys
(``resume_token``, ``token``, ``jwt``, ``authorization``, API keys, passwords,
secrets) and any string shaped like a JWT become ``"REDACTED"``; so do the
sensitive query parameters (``token``, ``jwt``, ``api_key``…) of the
connection URL, and user:password@ is dropped. ``replay`` puts the tokens
the new server hands out in their place.

Writing is buffered (:class:`TranscriptWriter`): lines are joined in memory
and written every second or every 256 KiB, and at :meth:`~TranscriptWriter.close`;
a frame with nothing to redact is copied into its line as the bytes it was,
without being parsed again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from .errors import TranscriptError

__all__ = [
    "FORMAT",
    "REDACTED",
    "Entry",
    "Transcript",
    "TranscriptWriter",
    "read_transcript",
    "redact",
    "redact_url",
]

FORMAT: Final = 1
"""The format version, the header's ``transcript`` key."""
REDACTED: Final = "REDACTED"
ROLES: Final = ("customer", "agent")
DIRECTIONS: Final = ("open", "send", "recv", "close")

SENSITIVE_KEYS: Final = frozenset(
    {
        "resume_token",
        "token",
        "jwt",
        "authorization",
        "api_key",
        "apikey",
        "x-ultracart-simple-key",
        "simple_key",
        "access_token",
        "refresh_token",
        "id_token",
        "password",
        "secret",
        "client_secret",
    }
)
"""Keys (compared lower-case) whose values a transcript never holds."""
SENSITIVE_PARAMS: Final = SENSITIVE_KEYS | {"key", "auth", "sig", "signature"}
"""Query parameters of a connection URL that a transcript never holds."""

_JWT: Final = re.compile(r"^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_CAREFUL: Final = (b"oken", b"eyJ", b"\n")
"""While recording (the hot path), a frame holding none of these is copied
into its line as it is: the protocol's secrets are all ``*token`` keys, and
a JWT starts with ``eyJ``. Every other frame is parsed and all of
:data:`SENSITIVE_KEYS` redacted; so is every frame of a ``careful`` writer
(the HAR import). A frame of another backend recorded by ``load`` that held
an ``api_key`` or ``password`` but no token would keep it. Each scan costs
about a microsecond per kilobyte: the fast path stays at three."""
FLUSH_BYTES: Final = 256 * 1024
FLUSH_SECONDS: Final = 1.0


def redact(value: Any) -> Any:
    """``value`` (decoded JSON) with sensitive keys' values and JWT-shaped strings replaced."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and k.lower() in SENSITIVE_KEYS and v else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str) and _JWT.match(value):
        return REDACTED
    return value


def redact_url(url: str) -> str:
    """``url`` with its sensitive query parameters' values replaced and without ``user:password@``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.partition("?")[0]
    query = [(k, REDACTED if k.lower() in SENSITIVE_PARAMS and v else v) for k, v in parse_qsl(parts.query, True)]
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe=","), ""))


def _frame_bytes(data: bytes | str, careful: bool = False) -> bytes:
    """The JSON to put in a line for one frame: the bytes as they are when
    nothing in them may need redacting (:data:`_CAREFUL`), else parsed,
    redacted and dumped; a payload that is not a JSON object becomes
    ``{"invalid": TEXT}``."""
    raw = data.encode() if isinstance(data, str) else data
    plain = raw[:1] == b"{" and raw[-1:] == b"}" and b"oken" not in raw and b"eyJ" not in raw and b"\n" not in raw
    if plain and not careful:
        return raw
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        return orjson.dumps({"invalid": raw[:4096].decode("utf-8", "replace")})
    return orjson.dumps(redact(value))


class TranscriptWriter:
    """Appends a transcript's lines to a file, buffered; one per process.

    Not thread-safe: call it from one thread (the asyncio loop of the mock, the
    gevent hub and greenlets of the load generator). ``lines`` counts what was
    written, the header included; :meth:`close` writes the rest and closes."""

    def __init__(
        self, path: str | Path, *, source: str, meta: dict[str, Any] | None = None, careful: bool = False
    ) -> None:
        try:
            self._file = open(path, "wb")  # noqa: SIM115 - lives until close()
        except OSError as exc:
            raise TranscriptError(f"cannot write the transcript {path}: {exc.strerror or exc}") from None
        self.path = str(path)
        self.careful = careful
        """Parse and redact every frame (an import), not only those that may hold a token."""
        self._clock = time.perf_counter
        self._t0 = self._clock()
        self._buffer: list[bytes] = []
        self._size = 0
        self._flushed_at = self._t0
        self._next_conn = 1
        self.lines = 0
        self.closed = False
        header = {"transcript": FORMAT, "source": source, "started_epoch_ms": int(time.time() * 1000), **(meta or {})}
        self._append(orjson.dumps(header) + b"\n", self._t0)

    def new_conn(self) -> int:
        """A connection number, unique in this transcript."""
        number = self._next_conn
        self._next_conn += 1
        return number

    def _t(self, now: float, at: float | None) -> float:
        return round((now - self._t0) * 1000 if at is None else at, 3)

    def opened(self, conn: int, role: str, url: str, *, at: float | None = None) -> None:
        """A connection opened (``at``: its time in ms, else now; an import gives its own)."""
        now = self._clock()
        entry = {"t": self._t(now, at), "conn": conn, "role": role, "dir": "open"}
        entry["url"] = redact_url(url)
        self._append(orjson.dumps(entry) + b"\n", now)

    def closed_conn(self, conn: int, role: str, code: int | None, *, at: float | None = None) -> None:
        now = self._clock()
        entry = {"t": self._t(now, at), "conn": conn, "role": role, "dir": "close", "code": code}
        self._append(orjson.dumps(entry) + b"\n", now)

    def frame(self, conn: int, role: str, direction: str, data: bytes | str, *, at: float | None = None) -> None:
        """One frame ``send`` (participant to server) or ``recv`` (server to participant)."""
        if self.closed:
            return
        now = self._clock()
        line = b'{"t":%.3f,"conn":%d,"role":"%s","dir":"%s","frame":%s}\n' % (
            (now - self._t0) * 1000 if at is None else at,
            conn,
            role.encode(),
            direction.encode(),
            _frame_bytes(data, self.careful),
        )
        self._append(line, now)

    def frames(self, recipients: list[tuple[int, str]], direction: str, data: bytes) -> None:
        """One frame to several connections ``(conn, role)``: checked for redaction once."""
        if self.closed or not recipients:
            return
        now = self._clock()
        t = (now - self._t0) * 1000
        payload = _frame_bytes(data, self.careful)
        direction_bytes = direction.encode()
        for conn, role in recipients:
            line = b'{"t":%.3f,"conn":%d,"role":"%s","dir":"%s","frame":%s}\n' % (
                t,
                conn,
                role.encode(),
                direction_bytes,
                payload,
            )
            self._append(line, now)

    def _append(self, line: bytes, now: float) -> None:
        if self.closed:
            return
        self._buffer.append(line)
        self._size += len(line)
        self.lines += 1
        if self._size >= FLUSH_BYTES or now - self._flushed_at >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self._buffer and not self.closed:
            self._file.write(b"".join(self._buffer))
            self._file.flush()
        self._buffer.clear()
        self._size = 0
        self._flushed_at = self._clock()

    def close(self) -> None:
        """Write what is buffered and close the file. Idempotent."""
        if self.closed:
            return
        try:
            self.flush()
        finally:
            self.closed = True
            self._file.close()


@dataclass(frozen=True, slots=True)
class Entry:
    """One event line of a transcript; ``line`` is its 1-based line number in the file."""

    line: int
    t: float
    """Milliseconds since the transcript started."""
    conn: int
    role: str
    dir: str
    frame: dict[str, Any] | None = None
    url: str | None = None
    code: int | None = None


@dataclass(frozen=True, slots=True)
class Transcript:
    path: str
    header: dict[str, Any]
    entries: tuple[Entry, ...]

    def connections(self) -> dict[int, list[Entry]]:
        """Each connection's entries, in file order, by connection number (in order of first appearance)."""
        conns: dict[int, list[Entry]] = {}
        for entry in self.entries:
            conns.setdefault(entry.conn, []).append(entry)
        return conns


def _lines(path: str) -> Iterator[tuple[int, bytes]]:
    try:
        with open(path, "rb") as handle:
            yield from enumerate(handle, 1)
    except FileNotFoundError:
        raise TranscriptError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TranscriptError(f"{path}: a folder, not a transcript") from None
    except OSError as exc:
        raise TranscriptError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def _entry(path: str, number: int, value: Any) -> Entry:
    where = f"{path} line {number}"
    if not isinstance(value, dict):
        raise TranscriptError(f"{where}: expected a JSON object")
    t, conn, role, direction = value.get("t"), value.get("conn"), value.get("role"), value.get("dir")
    if not isinstance(t, int | float) or isinstance(t, bool) or t < 0:
        raise TranscriptError(f'{where}: "t" must be a number of milliseconds >= 0')
    if not isinstance(conn, int) or isinstance(conn, bool):
        raise TranscriptError(f'{where}: "conn" must be a connection number')
    if role not in ROLES:
        raise TranscriptError(f'{where}: "role" must be customer or agent (got {role!r})')
    if direction not in DIRECTIONS:
        raise TranscriptError(f'{where}: "dir" must be open, send, recv or close (got {direction!r})')
    frame = value.get("frame")
    if direction in ("send", "recv") and not isinstance(frame, dict):
        raise TranscriptError(f'{where}: a {direction} line needs a "frame" object')
    url = value.get("url")
    code = value.get("code")
    return Entry(
        line=number,
        t=float(t),
        conn=conn,
        role=role,
        dir=direction,
        frame=frame if isinstance(frame, dict) else None,
        url=url if isinstance(url, str) else None,
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
    )


def read_transcript(path: str | Path) -> Transcript:
    """Read and check a transcript; :class:`TranscriptError` (one line naming
    the file and the line) for anything that is not one."""
    name = str(path)
    header: dict[str, Any] | None = None
    entries: list[Entry] = []
    for number, line in _lines(name):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise TranscriptError(f"{name} line {number}: not JSON ({exc})") from None
        if header is None:
            if not isinstance(value, dict) or value.get("transcript") != FORMAT:
                raise TranscriptError(
                    f"{name} line {number}: not a webchat-sim transcript (the first line must be a header with "
                    f'"transcript": {FORMAT}; a HAR file is imported with `webchat-sim import-har`)'
                )
            header = value
            continue
        entries.append(_entry(name, number, value))
    if header is None:
        raise TranscriptError(f"{name}: empty, not a transcript")
    if not any(e.dir == "send" for e in entries):
        raise TranscriptError(f"{name}: no frame sent by any participant: nothing to replay")
    return Transcript(name, header, tuple(entries))
