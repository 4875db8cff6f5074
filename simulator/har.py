"""``webchat-sim import-har FILE.har -o FILE.jsonl``: a browser session
(Chrome DevTools, Network panel, "Save all as HAR with content") captured
against any backend becomes a transcript (:mod:`simulator.transcript`).

Chrome puts each websocket in ``log.entries[]`` with ``_resourceType:
"websocket"``, its URL in ``request.url`` and its messages in
``_webSocketMessages``: ``{"type": "send" | "receive", "time": <epoch
seconds, float>, "opcode": 1, "data": "<text>"}``. Each websocket is one
connection of the transcript; ``send`` is the browser's frame (``send``),
``receive`` the server's (``recv``). The role comes from the URL: ``role=agent``
in the query string, else the ``role`` claim of a JWT (``token`` parameter or
``Authorization`` header; read, not verified), else a customer (a webchat
page is the customer). Websockets whose text messages are no webchat frames
(JSON objects with a frame ``type``) are left out, with a note; so are binary
and control messages. Tokens are redacted as in every transcript.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

import orjson

from .errors import TranscriptError
from .transcript import TranscriptWriter

__all__ = ["import_har", "role_of"]

FRAME_TYPES: Final = frozenset({"message", "event", "ping", "check queue position"})


def _jwt_role(token: str) -> str | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    role = claims.get("role") if isinstance(claims, dict) else None
    return role if role in ("customer", "agent") else None


def role_of(url: str, headers: list[Any] | None = None) -> str:
    """``agent`` or ``customer``, from the connection URL (and its request headers)."""
    try:
        query = dict(parse_qsl(urlsplit(url).query))
    except ValueError:
        query = {}
    if query.get("role") in ("customer", "agent"):
        return query["role"]
    tokens = [query.get("token", ""), query.get("jwt", "")]
    for header in headers or ():
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "authorization":
            tokens.append(str(header.get("value", "")).removeprefix("Bearer ").strip())
    for token in tokens:
        if token and (role := _jwt_role(token)) is not None:
            return role
    return "customer"


def _is_frame(text: str) -> bool:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return isinstance(value, dict) and value.get("type") in FRAME_TYPES


def _started(entry: dict[str, Any]) -> float | None:
    text = entry.get("startedDateTime")
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _load(path: str) -> list[Any]:
    try:
        with open(path, "rb") as handle:
            document = orjson.loads(handle.read())
    except FileNotFoundError:
        raise TranscriptError(f"{path}: no such file") from None
    except OSError as exc:
        raise TranscriptError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except orjson.JSONDecodeError as exc:
        raise TranscriptError(f"{path}: not a HAR file (not JSON: {exc})") from None
    entries = document.get("log", {}).get("entries") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise TranscriptError(f'{path}: not a HAR file (no "log": {{"entries": [...]}})')
    return entries


def import_har(path: str, output: str) -> str:
    """Write the transcript of ``path``'s webchat websockets to ``output``; a
    one-line summary (with the websockets left out). :class:`TranscriptError` when there is nothing to import."""
    entries = _load(path)
    sockets: list[tuple[str, str, float, list[tuple[float, str, str]]]] = []
    notes: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("_resourceType") != "websocket":
            continue
        raw_request = entry.get("request")
        request: dict[str, Any] = raw_request if isinstance(raw_request, dict) else {}
        url = str(request.get("url", ""))
        messages = entry.get("_webSocketMessages")
        texts: list[tuple[float, str, str]] = []
        for message in messages if isinstance(messages, list) else ():
            if not isinstance(message, dict) or message.get("opcode", 1) != 1:
                continue
            kind, at, data = message.get("type"), message.get("time"), message.get("data")
            if kind in ("send", "receive") and isinstance(at, int | float) and isinstance(data, str):
                texts.append((float(at), "send" if kind == "send" else "recv", data))
        frames = [m for m in texts if _is_frame(m[2])]
        if not frames:
            notes.append(f"{url.partition('?')[0] or '(no URL)'} ({len(texts)} message(s), none a webchat frame)")
            continue
        opened = _started(entry)
        opened = min(opened, frames[0][0]) if opened is not None else frames[0][0]
        sockets.append((url, role_of(url, request.get("headers")), opened, frames))
    if not sockets:
        left = f"; left out: {', '.join(notes)}" if notes else ""
        raise TranscriptError(f"{path}: no webchat websocket with messages (DevTools saves them with the HAR){left}")
    t0 = min(s[2] for s in sockets)
    lines: list[tuple[float, int, int, str, str, str | None]] = []  # (t ms, order, conn, role, dir, data)
    for number, (url, role, opened, frames) in enumerate(sockets, 1):
        lines.append(((opened - t0) * 1000, len(lines), number, role, "open", url))
        for at, direction, data in frames:
            lines.append(((at - t0) * 1000, len(lines), number, role, direction, data))
        lines.append(((frames[-1][0] - t0) * 1000, len(lines), number, role, "close", None))
    lines.sort(key=lambda line: (line[0], line[1]))
    meta = {"har": path, "started_epoch_ms": int(t0 * 1000)}
    writer = TranscriptWriter(output, source="har", meta=meta, careful=True)  # another backend's frames
    sent = received = 0
    try:
        for at_ms, _, conn, role, direction, data in lines:
            at_ms = max(0.0, at_ms)
            if direction == "open":
                writer.opened(conn, role, data or "", at=at_ms)
            elif direction == "close":
                writer.closed_conn(conn, role, None, at=at_ms)
            else:
                writer.frame(conn, role, direction, data or "", at=at_ms)
                sent += direction == "send"
                received += direction == "recv"
    finally:
        writer.close()
    roles = sorted({s[1] for s in sockets})
    summary = (
        f"{output}: {len(sockets)} websocket(s) ({', '.join(roles)}), {sent} frame(s) sent, {received} received"
    )
    if notes:
        summary += f"; left out (not webchat): {', '.join(notes)}"
    return summary
