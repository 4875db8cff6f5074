"""``serve --record FILE.jsonl``: the mock's side of a transcript (format:
:mod:`simulator.transcript`).

:class:`RecordingCore` sits between the websocket shell and the core (the
engine or the autopilot hub): it sees each connection arrive with its
identity (its role: ``open``, with the identity's query string), each frame a
client sent (``send``), each delivery the core decided, once per recipient
connection (``recv``), and each connection's end (``close``). The shell
(:mod:`.server`) is unchanged and pays nothing when not recording.

Why not the dashboard's taps (:attr:`.server.WebchatServer.taps`)? They are
per conversation and say neither which connection sent a frame nor which
received it, and frames outside a conversation (pings, an agent's queue
status updates, errors) never reach them; a transcript needs all of that to
be replayed per connection.

What it does not see: frames the shell refuses before the core hears of them
(invalid JSON, binary frames, the rate limit) and deliveries of REST calls.
Deliveries are what the core decided to send, before any ``--fault`` acts
on them. Each recorded frame is encoded once more (the shell encodes its
own copy); lines are buffered and written every second.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from ..errors import FrameError
from ..protocol import Frame, encode
from ..transcript import REDACTED, TranscriptWriter
from .base import Close, Delivery, Identity
from .conversation import ConnId
from .server import Core

__all__ = ["RecordingCore"]


def identity_url(identity: Identity) -> str:
    """The development-mode URL that names ``identity`` (tokens redacted)."""
    params: dict[str, str] = {"role": str(identity.role.value if hasattr(identity.role, "value") else identity.role)}
    if identity.name:
        params["name"] = identity.name
    if identity.email:
        params["email"] = identity.email
    if identity.language_iso_code:
        params["lang"] = identity.language_iso_code
    if identity.queues:
        params["queues"] = ",".join(identity.queues)
    if identity.resume_token:
        params["token"] = REDACTED
    if identity.resume_since is not None:
        params["since"] = str(identity.resume_since)
    return "ws://mock/ws?" + urlencode(params, safe=",")


class RecordingCore:
    """A :class:`~.server.Core` that writes a transcript of what passes through it."""

    def __init__(self, core: Core, writer: TranscriptWriter) -> None:
        self.core = core
        self.writer = writer
        self._roles: dict[ConnId, str] = {}

    @property
    def engine(self) -> Any:
        """The engine (:func:`~.rest_models.engine_of` looks for it)."""
        return getattr(self.core, "engine", self.core)

    def __getattr__(self, name: str) -> Any:  # e.g. the autopilot hub's bots
        return getattr(self.core, name)

    def _delivered(self, deliveries: list[Delivery]) -> list[Delivery]:
        roles = self._roles
        writer = self.writer
        for recipients, frame in deliveries:
            # autopilot agents inside the hub have no role here: not recorded
            known = [(conn, role) for conn in recipients if (role := roles.get(conn)) is not None]
            if known:
                writer.frames(known, "recv", encode(frame))
        return deliveries

    def start(self, now: float) -> list[Delivery]:
        return self._delivered(self.core.start(now))

    def connect(self, conn: ConnId, identity: Identity, now: float) -> list[Delivery]:
        role = "agent" if str(getattr(identity.role, "value", identity.role)) == "agent" else "customer"
        self._roles[conn] = role
        self.writer.opened(conn, role, identity_url(identity))
        return self._delivered(self.core.connect(conn, identity, now))

    def receive(self, conn: ConnId, frame: Frame, now: float) -> list[Delivery]:
        role = self._roles.get(conn)
        if role is not None:
            self.writer.frame(conn, role, "send", encode(frame))
        return self._delivered(self.core.receive(conn, frame, now))

    def disconnect(self, conn: ConnId, now: float) -> list[Delivery]:
        deliveries = self._delivered(self.core.disconnect(conn, now))
        role = self._roles.pop(conn, None)
        if role is not None:
            self.writer.closed_conn(conn, role, None)
        return deliveries

    def tick(self, now: float) -> list[Delivery]:
        return self._delivered(self.core.tick(now))

    def take_closes(self) -> Sequence[Close]:
        return self.core.take_closes()

    def next_deadline(self) -> float | None:
        return self.core.next_deadline()

    def error_frame(self, error: FrameError, *, conversation_uuid: str | None = None) -> Frame:
        return self.core.error_frame(error, conversation_uuid=conversation_uuid)

    def status(self) -> dict[str, Any]:
        return self.core.status()
