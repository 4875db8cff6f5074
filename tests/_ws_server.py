"""Scripted websocket servers for tests/test_transport.py, run in their own process.

asyncio and gevent must not share a process, so the tests start this script
with ``subprocess``. It binds its servers on 127.0.0.1, random free ports,
prints ``PORTS <websocket port> <raw port> <TLS websocket port or 0>`` on one
line and serves until it is terminated (or for at most ``--lifetime``
seconds). With ``--tls CERT KEY`` the websocket server also listens for
``wss://`` on the third port.

The websocket server (websockets' asyncio implementation) dispatches on the
request path:

* ``/echo`` echoes every message as it came (text or binary);
* ``/chat`` answers each ``message`` frame: a ``typing`` event, a
  ``queue position`` event, then the acknowledgement (the message with a
  ``conversation_message_uuid``). Some bodies change the script:
  ``bad`` (an invalid frame first), ``binary`` (a binary frame first),
  ``nocontext`` (a message frame without ``conversation_uuid`` first),
  ``burst N`` (N numbered typing events, no other events),
  ``fragmented`` (the acknowledgement in fragments),
  ``close CODE REASON`` (closes the connection, no acknowledgement),
  ``drop`` (drops the TCP connection, no acknowledgement);
* ``/silent`` reads and never answers;
* ``/hello`` sends a typing event as soon as the connection is open, then
  behaves like ``/chat``;
* ``/reject`` refuses the handshake with HTTP 403;
* ``/closeinfo?id=X`` sends one typing event whose value is the close code
  and reason that the server saw for the connection opened with ``?id=X``.

The raw TCP server accepts the opening handshake of any path except
``/mute`` (never answered) and then reads and ignores everything, closing
handshake included.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import ssl
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# A schema violation: position must be an integer.
INVALID_FRAME = '{"type": "event", "event_type": "queue position", "event_queue_position": {"position": "2"}}'

close_seen: dict[str, str] = {}
close_known: dict[str, asyncio.Event] = {}


def close_event(key: str) -> asyncio.Event:
    return close_known.setdefault(key, asyncio.Event())


def typing_frame(conversation_uuid: str, value: str) -> str:
    frame = {"type": "event", "event_type": "typing", "conversation_uuid": conversation_uuid}
    return json.dumps({**frame, "event_typing": {"value": value}})


def position_frame(conversation_uuid: str) -> str:
    return json.dumps(
        {
            "type": "event",
            "event_type": "queue position",
            "conversation_uuid": conversation_uuid,
            "event_queue_position": {"position": 1, "available": True},
        }
    )


def ack_frame(frame: dict[str, Any], number: int) -> str:
    message = dict(frame.get("message") or {})
    message["conversation_message_uuid"] = f"m-{number}"
    return json.dumps({"type": "message", "conversation_uuid": frame.get("conversation_uuid"), "message": message})


def process_request(connection: ServerConnection, request: Request) -> Response | None:
    if urlsplit(request.path).path == "/reject":
        return connection.respond(403, "go away\n")
    return None


async def chat(ws: ServerConnection) -> None:
    number = 0
    async for data in ws:
        try:
            frame = json.loads(data)
        except ValueError:
            continue
        if not isinstance(frame, dict) or frame.get("type") != "message":
            continue
        number += 1
        conversation = frame.get("conversation_uuid") or "c-1"
        body = str((frame.get("message") or {}).get("body", ""))
        word, _, rest = body.partition(" ")
        if word == "close":
            code, _, reason = rest.partition(" ")
            await ws.close(int(code), reason)
            return
        if word == "drop":
            ws.transport.abort()
            return
        if word == "burst":
            for index in range(int(rest)):
                await ws.send(typing_frame(conversation, str(index)))
        else:
            if word == "bad":
                await ws.send(INVALID_FRAME)
            elif word == "binary":
                await ws.send(b"\x00\x01binary")
            elif word == "nocontext":
                await ws.send('{"type": "message", "message": {"body": "no conversation"}}')
            await ws.send(typing_frame(conversation, "typing..."))
            await ws.send(position_frame(conversation))
        ack = ack_frame(frame, number)
        if word == "fragmented":
            third = len(ack) // 3
            await ws.send([ack[:third], ack[third : 2 * third], ack[2 * third :]])
        else:
            await ws.send(ack)


async def handler(ws: ServerConnection) -> None:
    url = urlsplit(ws.request.path if ws.request is not None else "/")
    query = parse_qs(url.query)
    try:
        if url.path == "/echo":
            async for data in ws:
                await ws.send(data)
        elif url.path in ("/chat", "/hello"):
            if url.path == "/hello":
                await ws.send(typing_frame("c-hello", "hello"))
            await chat(ws)
        elif url.path == "/silent":
            async for _ in ws:
                pass
        elif url.path == "/closeinfo":
            key = query.get("id", [""])[0]
            with contextlib.suppress(TimeoutError):  # that connection may be closing still
                await asyncio.wait_for(close_event(key).wait(), 5)
            await ws.send(typing_frame("c-info", close_seen.get(key, "unknown")))
            async for _ in ws:
                pass
    finally:
        await ws.wait_closed()
        if "id" in query and url.path != "/closeinfo":
            key = query["id"][0]
            close_seen[key] = f"{ws.close_code} {ws.close_reason}"
            close_event(key).set()


async def raw_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept the handshake (except on /mute), then ignore everything."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        key = next(line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("sec-websocket-key:"))
        if path != "/mute":
            accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
            )
        while await reader.read(65536):
            pass
    except (asyncio.IncompleteReadError, ConnectionError, StopIteration, IndexError):
        pass
    finally:
        writer.close()


async def main(lifetime: float, tls: list[str] | None) -> None:
    async with contextlib.AsyncExitStack() as stack:
        ws_server = await stack.enter_async_context(serve(handler, "127.0.0.1", 0, process_request=process_request))
        raw_server = await stack.enter_async_context(await asyncio.start_server(raw_client, "127.0.0.1", 0))
        tls_port = 0
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls[0], tls[1])
            tls_server = await stack.enter_async_context(
                serve(handler, "127.0.0.1", 0, process_request=process_request, ssl=context)
            )
            tls_port = tls_server.sockets[0].getsockname()[1]
        ws_port = ws_server.sockets[0].getsockname()[1]
        raw_port = raw_server.sockets[0].getsockname()[1]
        print(f"PORTS {ws_port} {raw_port} {tls_port}", flush=True)
        await asyncio.sleep(lifetime)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifetime", type=float, default=600.0, help="exit after this many seconds")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="also serve wss:// with this certificate")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.lifetime, args.tls))
    except KeyboardInterrupt:
        sys.exit(0)
