"""The engine's vocabulary and state, shared by the parts it is built from.

* The values the shell exchanges with the engine: :class:`Identity` (who a
  new connection is), :class:`Delivery` (a frame and its recipients) and
  :class:`Close` (a connection the shell must close), plus
  :class:`EngineConfig` and :class:`Routing`.
* :class:`EngineBase`: what every part of :class:`~simulator.mock.engine.Engine`
  reads and writes (connections, participants, conversations, queues, the
  grace heap, the pending closes) and the small helpers they share.

The parts are mixins over :class:`EngineBase`, one concept each:
:mod:`.routing` (queues, routing, the lifecycle of a conversation),
:mod:`.sessions` (connect, resume, takeover, reconnect grace) and
:mod:`.relay` (messages, typing, read receipts, coupons, items, context,
rrweb); :mod:`.engine` assembles them into the one public class and
dispatches frames through :data:`.rules.RULES`.
"""

from __future__ import annotations

import itertools
import random
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from ..pace import DEFAULT_MAX_CHATS
from ..protocol import Frame, FrameType, uuid4_text
from .account import Held
from .conversation import Client, ConnId, Conversation, Role
from .journal import Journal
from .queues import PositionPushes, WebchatQueue
from .retention import Retention

__all__ = ["Close", "Delivery", "EngineBase", "EngineConfig", "Identity", "Routing", "new_resume_token"]



class Routing(StrEnum):
    """How waiting customers reach agents."""

    ROUND_ROBIN = "round-robin"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Who a new connection is (established by the server before ``connect``)."""

    role: Role
    name: str | None = None
    """Display name; for agents also their identity across reconnects."""
    email: str | None = None
    language_iso_code: str | None = None
    queues: tuple[str, ...] = ()
    """Agents: the queues they log in to (empty = all queues)."""
    resume_token: str | None = None
    """The resume token the participant was given (customers: at start;
    agents: at first connect), to resume after a reconnect."""
    resume_since: int | None = None
    """Epoch ms: on resume, replay messages newer than this (``None`` = all)."""
    participant_uuid: str | None = None
    """A new participant gets this uuid (and the ARN it makes): its JWT's, or
    for a development-mode agent its REST account's. A customer known by it
    is resumed, as with its resume token (set for customers by a JWT only)."""
    authenticated: bool = False
    """A verified JWT names this participant: an agent may then take over its
    name's session without its resume token."""
    autopilot: bool = False
    """The server's own simulated agent (set by the autopilot hub, never by a
    handshake): no connection may sign in with its name."""


class Delivery(NamedTuple):
    """One frame and the connections to send it to (encode it once)."""

    recipients: tuple[ConnId, ...]
    frame: Frame


class Close(NamedTuple):
    """A connection the shell must close, with this websocket close code and
    reason, once it has sent the deliveries of the same call (so the
    connection gets its last frames first). See ``Engine.take_closes``."""

    conn: ConnId
    code: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    """Engine settings; the defaults suit a local mock server."""

    # Queues and routing
    queues: tuple[str, ...] = ("support",)
    routing: Routing = Routing.ROUND_ROBIN
    max_chats_per_agent: int = DEFAULT_MAX_CHATS
    # Coalescing (seconds)
    position_interval: float = 1.0
    """At most one pushed ``queue position`` per customer per interval."""
    status_interval: float = 1.0
    """At most one ``queue status update`` per queue per interval."""
    # Timeouts (seconds)
    reconnect_grace: float = 10.0
    """How long a disconnected participant may reconnect before it leaves."""
    # Limits
    status_entries_limit: int = 50
    """Queue entries listed in a ``queue status update`` (the oldest), at most."""
    status_max_bytes: int = 128 * 1024
    """Largest encoded ``queue status update``: agents and entries are listed within it (counts stay whole)."""
    max_body_length: int = 10_000
    max_media_urls: int = 10
    max_messages_per_conversation: int = 10_000
    max_open_conversations_per_customer: int = 3
    history_replay_limit: int = 200
    """Messages replayed to an agent who joins a conversation."""
    history_replay_bytes: int = 1024 * 1024
    """An agent who joins gets the latest messages within this many bytes of
    the account too (so a long chat of large messages never makes a replay
    that closes the agent as a slow consumer)."""
    max_rrweb_parts: int = 1_000
    max_rrweb_bytes: int = 16 * 1024 * 1024
    """Largest rrweb payload (sum of its parts' ``data``)."""
    rrweb_hold_bytes: int = 1024 * 1024
    """rrweb ``data`` held per conversation for agents who join later."""
    closed_conversations_kept: int = 10_000
    """Closed conversations remembered (to answer ``conversation_closed``)."""
    retain_bytes: int = 256 * 1024 * 1024
    """Budget of the byte account of what the engine holds (see :mod:`.retention`)."""
    history_hold_bytes: int = 4 * 1024 * 1024
    """One open conversation's messages held in memory, at most (the oldest are dropped)."""
    # Identity
    merchant_id: str = "DEMO"

    def __post_init__(self) -> None:
        if not self.queues or len(set(self.queues)) != len(self.queues):
            raise ValueError(f"queues: need one or more distinct names, got {self.queues!r}")
        if self.max_chats_per_agent < 1:
            raise ValueError(f"max_chats_per_agent: must be >= 1, got {self.max_chats_per_agent}")
        for name in ("position_interval", "status_interval", "reconnect_grace", "retain_bytes", "history_hold_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.status_max_bytes < 4096:
            raise ValueError(f"status_max_bytes: must be >= 4096, got {self.status_max_bytes}")


def new_resume_token() -> str:
    """A resume token (a customer's, an agent's): 256 bits from the CSPRNG (``secrets``), never
    from the engine's seeded ``random.Random``, whose state an observer can
    rebuild from the uuids it sees. URL-safe base64: no dot, so it is never
    taken for a JWT."""
    return secrets.token_urlsafe(32)


class EngineBase:
    """The state of the engine and the helpers its parts share (not used alone)."""

    def __init__(
        self, config: EngineConfig, *, rng: random.Random, token_source: Callable[[], str] = new_resume_token
    ) -> None:
        self.config = config
        self._rng = rng
        self._new_token = token_source
        self._conns: dict[ConnId, Client] = {}
        self._agents_by_name: dict[str, Client] = {}
        self._customers_by_token: dict[str, Client] = {}
        self._customers_by_uuid: dict[str, Client] = {}  # customers a token vouched for
        self._conversations: dict[str, Conversation] = {}  # open ones and the last closed ones
        self._held = Held()  # the byte account every conversation keeps up to date
        self._retention = Retention(
            self._held,
            self._conversations,
            budget=config.retain_bytes,
            history_bytes=config.history_hold_bytes,
            closed_kept=config.closed_conversations_kept,
        )
        self._entries: dict[str, Conversation] = {}  # queue uuid -> queued or engaged conversation
        self._queues = {name: WebchatQueue(name, PositionPushes(config.position_interval)) for name in config.queues}
        self._graces: list[tuple[float, int, Client]] = []  # heap; stale entries skipped
        self._closes: list[Close] = []  # decided, not taken by the shell yet
        self._seq = itertools.count(1)
        self._open_count = 0
        self._closed_count = 0
        self._ping = Frame(type=FrameType.PING)
        self.journal: Journal | None = None
        """Storage records of the changes (:mod:`.journal`), when the shell stores them; ``None``: it does not."""

    @staticmethod
    def _to(client: Client) -> tuple[ConnId, ...]:
        """The client's connection as recipients (none while it is disconnected)."""
        return (client.conn,) if client.conn is not None else ()

    @staticmethod
    def _send(out: list[Delivery], clients: Iterable[Client], frame: Frame) -> None:
        """Deliver ``frame`` once to the connected ones among ``clients``."""
        if recipients := tuple(c.conn for c in clients if c.conn is not None):
            out.append(Delivery(recipients, frame))

    @staticmethod
    def _agents_in(conv: Conversation) -> Iterable[Client]:
        return (m.client for m in conv.present() if m.client.role is Role.AGENT)

    def _to_customers(self, conv: Conversation, frame: Frame) -> list[Delivery]:
        out: list[Delivery] = []
        self._send(out, (m.client for m in conv.present() if m.client.role is Role.CUSTOMER), frame)
        return out

    def _uuid(self) -> str:
        """``str(uuid.UUID(int=rng.getrandbits(128), version=4))`` (:func:`~simulator.protocol.uuid4_text`)."""
        return uuid4_text(self._rng.getrandbits(128))
