"""The conversation engine: the mock webchat server's behaviour, sans I/O.

The engine is a plain object. The websocket server (glue) hands it *who*,
*a decoded frame* and *now*; it returns :class:`Delivery` values — a frame and
the connections that must receive it — which the server encodes once each and
sends. Nothing here touches a socket, the clock or global randomness: time is
the ``now`` argument (seconds since the Unix epoch) and every uuid and resume
token comes from the ``random.Random`` it is given, so a run is reproducible.

Behaviour is protocol.md part B, row by row (see each ``_on_*`` handler). Work
per event is O(participants of the conversation + log(queue length));
``queue position`` pushes and ``queue status update`` broadcasts are
coalesced and emitted by :meth:`Engine.tick`, which the server calls at
:meth:`Engine.next_deadline`.

Policies this dialect adds (documented here, tested in tests/test_engine*.py):

* The customer's question (``event_engage_customer.question``) is stored as
  the conversation's first customer message, so the agent who engages sees it.
* An agent who joins a conversation gets ``new conversation`` and
  ``participant join``, then the stored messages (the last
  ``history_replay_limit``), the held ``webchat context`` and the held rrweb
  recording (since the latest ``init``, up to ``rrweb_hold_bytes``).
* Resume: a customer gets a resume token (additional property
  ``resume_token`` of its ``new conversation``); connecting with it, or as an
  agent with the same name, within ``reconnect_grace`` rebinds the
  participant and replays, per conversation: ``new conversation``, the
  messages newer than ``resume_since``, the queue position if still waiting,
  ``conversation closed`` if it closed meanwhile.
* Message epochs are strictly increasing within a conversation (a message
  written in the same millisecond as the previous one gets the next
  millisecond), so "replay messages newer than X" never misses one.
* A participant leaves explicitly by sending ``event``/``participant left``
  with ``conversation_uuid`` (its payloads are ignored), or when its reconnect
  grace period ends. When the last customer or the last agent of an engaged
  conversation leaves, the conversation is closed. A customer who leaves or
  closes while queued abandons.
* ``participant update`` (summary to everyone in the conversation) is sent
  when a participant's connection drops or comes back (participant
  ``status`` ``disconnected`` / ``active``) and when a participant writes in
  another language than before (``language_iso_code``).
* A second connection with the same agent name, or with the resume token of a
  customer who is still connected, takes the session over; the old
  connection gets an error frame ``session_replaced`` and is forgotten.
* Agents are ``available`` when connected and below ``max_chats_per_agent``,
  ``busy`` at the limit and ``unavailable`` while disconnected (grace).
  ``next_round_robin`` marks the available agent whose turn is next (none
  when routing is manual or nobody is available).

Error codes (:data:`ERROR_CODES`), sent to the offender alone in an envelope
``{"type": "event", "error": {...}}``:

``not_connected``, ``session_replaced``, ``resume_failed``,
``unsupported_frame``, ``forbidden_for_role``, ``missing_field``,
``unknown_queue``, ``not_a_participant`` (also for a conversation that does
not exist: outsiders cannot tell), ``conversation_closed``,
``too_many_conversations``, ``queue_entry_not_found``, ``already_engaged``,
``not_in_queue``, ``agent_at_capacity``, ``empty_message``,
``message_too_long``, ``too_many_media_urls``, ``conversation_full``,
``message_not_found``, ``invalid_rrweb``, ``rrweb_hash_mismatch``,
``rrweb_out_of_order``, ``rrweb_too_large``, plus the codec's codes
(``invalid_json``, ``invalid_type``, …) through :meth:`Engine.error_frame`.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from ..errors import FrameError, SimulatorError
from ..protocol import (
    ConversationEventAddCoupon,
    ConversationEventAddItem,
    ConversationEventQueuePosition,
    ConversationEventReadMessage,
    ConversationEventRRWeb,
    ConversationEventTyping,
    ConversationEventWebchatContext,
    ConversationWebchatQueueStatusQueueEntry,
    Error,
    EventType,
    Frame,
    FrameType,
    epoch_ms,
)
from .conversation import (
    Client,
    ConnId,
    Conversation,
    Member,
    Role,
    RRWebStream,
    State,
    cached_dts,
    conversation_arn,
    participant_arn,
)
from .queues import PositionPushes, WebchatQueue

__all__ = [
    "ERROR_CODES",
    "ConnId",
    "Delivery",
    "Engine",
    "EngineConfig",
    "Identity",
    "Role",
    "Routing",
]

ERROR_CODES: Mapping[str, str] = {
    # code: the user_message sent with it
    "not_connected": "This connection is not signed in any more.",
    "session_replaced": "You signed in from another connection.",
    "resume_failed": "Your previous chat could not be resumed.",
    "unsupported_frame": "That action is not supported.",
    "forbidden_for_role": "That action is not allowed for you.",
    "missing_field": "Something required is missing.",
    "unknown_queue": "That chat queue does not exist.",
    "not_a_participant": "You are not in that conversation.",
    "conversation_closed": "That conversation is closed.",
    "too_many_conversations": "You already have too many open chats.",
    "queue_entry_not_found": "That customer is no longer waiting.",
    "already_engaged": "Another agent already took that customer.",
    "not_in_queue": "You are not signed in to that queue.",
    "agent_at_capacity": "You have reached your limit of chats.",
    "empty_message": "The message is empty.",
    "message_too_long": "The message is too long.",
    "too_many_media_urls": "The message has too many attachments.",
    "conversation_full": "This conversation cannot take more messages.",
    "message_not_found": "That message does not exist.",
    "invalid_rrweb": "The session recording could not be accepted.",
    "rrweb_hash_mismatch": "The session recording could not be accepted.",
    "rrweb_out_of_order": "The session recording could not be accepted.",
    "rrweb_too_large": "The session recording is too large.",
}
"""Every error code the engine itself sends, with its ``user_message``."""

_DEFAULT_USER_MESSAGE = "The message could not be processed."

# Version 4 and the RFC 4122 variant, set on 128 random bits as uuid.UUID(version=4) does.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (4 << 76) | (0x8000 << 48)


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
    """Customers: the token given at start, to resume after a reconnect."""
    resume_since: int | None = None
    """Epoch ms: on resume, replay messages newer than this (``None`` = all)."""


class Delivery(NamedTuple):
    """One frame and the connections to send it to (encode it once)."""

    recipients: tuple[ConnId, ...]
    frame: Frame


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    """Engine settings; the defaults suit a local mock server."""

    # Queues and routing
    queues: tuple[str, ...] = ("support",)
    routing: Routing = Routing.ROUND_ROBIN
    max_chats_per_agent: int = 3
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
    max_body_length: int = 10_000
    max_media_urls: int = 10
    max_messages_per_conversation: int = 10_000
    max_open_conversations_per_customer: int = 3
    history_replay_limit: int = 200
    """Messages replayed to an agent who joins a conversation."""
    max_rrweb_parts: int = 1_000
    max_rrweb_bytes: int = 16 * 1024 * 1024
    """Largest rrweb payload (sum of its parts' ``data``)."""
    rrweb_hold_bytes: int = 1024 * 1024
    """rrweb ``data`` held per conversation for agents who join later."""
    closed_conversations_kept: int = 10_000
    """Closed conversations remembered (to answer ``conversation_closed``)."""
    # Identity
    merchant_id: str = "DEMO"

    def __post_init__(self) -> None:
        if not self.queues or len(set(self.queues)) != len(self.queues):
            raise ValueError(f"queues: need one or more distinct names, got {self.queues!r}")
        if self.max_chats_per_agent < 1:
            raise ValueError(f"max_chats_per_agent: must be >= 1, got {self.max_chats_per_agent}")
        for name in ("position_interval", "status_interval", "reconnect_grace"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")


class _Refused(SimulatorError):
    """A client's frame is refused; caught in :meth:`Engine.receive` and sent
    back as an error frame (never escapes the engine)."""

    def __init__(self, code: str, reason: str, *, object_id: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.object_id = object_id


_Handler = Callable[[Client, Frame, float], list[Delivery]]
_Key = tuple[FrameType | None, EventType | None]
_BOTH = frozenset(Role)
_CUSTOMER = frozenset({Role.CUSTOMER})
_AGENT = frozenset({Role.AGENT})

# The frames a client may send, and who may send them: (type, event_type) -> roles.
_ACCEPTED: Mapping[_Key, frozenset[Role]] = {
    (FrameType.PING, None): _BOTH,
    (FrameType.CHECK_QUEUE_POSITION, None): _BOTH,
    (FrameType.MESSAGE, None): _BOTH,
    (FrameType.EVENT, EventType.WEBCHAT_START_CONVERSATION): _CUSTOMER,
    (FrameType.EVENT, EventType.ENGAGE_CUSTOMER): _AGENT,
    (FrameType.EVENT, EventType.TYPING): _BOTH,
    (FrameType.EVENT, EventType.READ_MESSAGE): _BOTH,
    (FrameType.EVENT, EventType.ADD_COUPON): _AGENT,
    (FrameType.EVENT, EventType.ADD_ITEM): _AGENT,
    (FrameType.EVENT, EventType.WEBCHAT_CONTEXT): _CUSTOMER,
    (FrameType.EVENT, EventType.RRWEB): _CUSTOMER,
    (FrameType.EVENT, EventType.CONVERSATION_CLOSED): _BOTH,
    (FrameType.EVENT, EventType.PARTICIPANT_LEFT): _BOTH,
}


def _clip(text: str) -> str:
    """A client-chosen string, shortened for an error message."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


class Engine:
    """Conversations, queues and routing of the mock webchat server."""

    def __init__(self, config: EngineConfig, *, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self._conns: dict[ConnId, Client] = {}
        self._agents_by_name: dict[str, Client] = {}
        self._customers_by_token: dict[str, Client] = {}
        self._conversations: dict[str, Conversation] = {}  # open ones and the last closed ones
        self._closed: dict[str, None] = {}  # retained closed conversations, oldest first
        self._entries: dict[str, Conversation] = {}  # queue uuid -> queued or engaged conversation
        self._queues = {name: WebchatQueue(name, PositionPushes(config.position_interval)) for name in config.queues}
        self._graces: list[tuple[float, int, Client]] = []  # heap; stale entries skipped
        self._seq = itertools.count(1)
        self._open_count = 0
        self._closed_count = 0
        self._ping = Frame(type=FrameType.PING)
        self._handlers: dict[_Key, _Handler] = {
            (FrameType.PING, None): self._on_ping,
            (FrameType.CHECK_QUEUE_POSITION, None): self._on_check_queue_position,
            (FrameType.MESSAGE, None): self._on_message,
            (FrameType.EVENT, EventType.WEBCHAT_START_CONVERSATION): self._on_start,
            (FrameType.EVENT, EventType.ENGAGE_CUSTOMER): self._on_engage,
            (FrameType.EVENT, EventType.TYPING): self._on_typing,
            (FrameType.EVENT, EventType.READ_MESSAGE): self._on_read,
            (FrameType.EVENT, EventType.ADD_COUPON): self._on_add_coupon,
            (FrameType.EVENT, EventType.ADD_ITEM): self._on_add_item,
            (FrameType.EVENT, EventType.WEBCHAT_CONTEXT): self._on_webchat_context,
            (FrameType.EVENT, EventType.RRWEB): self._on_rrweb,
            (FrameType.EVENT, EventType.CONVERSATION_CLOSED): self._on_close,
            (FrameType.EVENT, EventType.PARTICIPANT_LEFT): self._on_leave,
        }
        assert self._handlers.keys() == _ACCEPTED.keys()

    # ------------------------------------------------------------------
    # The server's API

    def connect(self, conn: ConnId, identity: Identity, now: float) -> list[Delivery]:
        """A connection was opened by ``identity``; resume its session if it has one."""
        out: list[Delivery] = []
        if conn in self._conns:  # the server reused a handle: forget the old binding first
            out += self.disconnect(conn, now)
        if identity.role is Role.AGENT:
            self._connect_agent(conn, identity, now, out)
        else:
            self._connect_customer(conn, identity, now, out)
        return out

    def receive(self, conn: ConnId, frame: Frame, now: float) -> list[Delivery]:
        """Handle one decoded frame from ``conn``."""
        client = self._conns.get(conn)
        try:
            if client is None:
                raise _Refused("not_connected", f"connection {conn} is not connected to the engine")
            key: _Key = (frame.type, frame.event_type if frame.type is FrameType.EVENT else None)
            what = f'event "{key[1]}"' if key[1] is not None else f'type "{key[0]}"'
            roles = _ACCEPTED.get(key)
            if roles is None:
                if key == (FrameType.EVENT, None):
                    what = "an event without event_type"
                raise _Refused("unsupported_frame", f"{what} is not accepted from clients")
            if client.role not in roles:
                raise _Refused("forbidden_for_role", f"{what} is not accepted from a {client.role}")
            return self._handlers[key](client, frame, now)
        except _Refused as refusal:
            error = self._error_frame(
                refusal.code, refusal.reason, conversation_uuid=frame.conversation_uuid, object_id=refusal.object_id
            )
            return [Delivery((conn,), error)]

    def disconnect(self, conn: ConnId, now: float) -> list[Delivery]:
        """``conn`` is gone; its participant may reconnect within the grace period."""
        client = self._conns.pop(conn, None)
        if client is None:
            return []
        out: list[Delivery] = []
        client.conn = None
        if client.role is Role.AGENT:
            for queue_name in client.queues:
                self._online_delta(self._queues[queue_name], -1, now)
            self._refresh_availability(client, now)
            keep = self._agents_by_name.get(client.name) is client
        else:
            keep = bool(client.conversations)
        if keep and self.config.reconnect_grace > 0:
            deadline = now + self.config.reconnect_grace
            client.grace_until = deadline
            heapq.heappush(self._graces, (deadline, next(self._seq), client))
            self._announce_status(client, out)
        else:
            self._expire(client, now, out)
        return out

    def tick(self, now: float) -> list[Delivery]:
        """End grace periods and flush the coalesced pushes that are due."""
        out: list[Delivery] = []
        graces = self._graces
        while graces and graces[0][0] <= now:
            deadline, _, client = heapq.heappop(graces)
            if client.conn is None and client.grace_until == deadline:
                client.grace_until = None
                self._expire(client, now, out)
        cfg = self.config
        for queue in self._queues.values():
            if queue.pushes.due is not None and queue.pushes.due <= now:
                available = queue.available
                for conv, position in queue.moved(now, cfg.position_interval):
                    payload = ConversationEventQueuePosition(available=available, position=position)
                    frame = conv.event(EventType.QUEUE_POSITION, event_queue_position=payload)
                    out.append(Delivery(self._to(conv.customer), frame))
            if queue.status_due is not None and queue.status_due <= now:
                queue.status_due = None
                queue.status_sent_at = now
                if recipients := queue.agent_conns():
                    out.append(Delivery(recipients, self._status_frame(queue)))
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has work (``None``: nothing pending)."""
        graces = self._graces
        while graces and not (graces[0][2].conn is None and graces[0][2].grace_until == graces[0][0]):
            heapq.heappop(graces)  # stale: the client came back
        best = graces[0][0] if graces else math.inf
        for queue in self._queues.values():
            for due in (queue.pushes.due, queue.status_due):
                if due is not None and due < best:
                    best = due
        return None if best == math.inf else best

    def error_frame(self, error: FrameError, *, conversation_uuid: str | None = None) -> Frame:
        """The error frame for a frame the server could not decode."""
        return self._error_frame(error.code, str(error), conversation_uuid=conversation_uuid)

    def status(self) -> dict[str, Any]:
        """A small JSON-able snapshot for health checks."""
        return {
            "connections": len(self._conns),
            "queues": {
                name: {
                    "waiting": len(q.line),
                    "agents": len(q.agents),
                    "chatting": q.stats.active,
                    "abandoned": q.stats.abandoned,
                }
                for name, q in self._queues.items()
            },
            "conversations": {"open": self._open_count, "closed": self._closed_count},
        }

    # ------------------------------------------------------------------
    # Connections and sessions

    def _connect_agent(self, conn: ConnId, identity: Identity, now: float, out: list[Delivery]) -> None:
        queues = tuple(dict.fromkeys(identity.queues or self.config.queues))
        if unknown := [q for q in queues if q not in self._queues]:
            reason = f"queues: {', '.join(map(_clip, unknown))} not configured; ignored"
            out.append(Delivery((conn,), self._error_frame("unknown_queue", reason, object_id=unknown[0][:200])))
            queues = tuple(q for q in queues if q in self._queues)
        name = identity.name
        agent = self._agents_by_name.get(name) if name else None
        if agent is None:
            agent_uuid = self._uuid()
            agent = Client(
                role=Role.AGENT,
                uuid=agent_uuid,
                arn=participant_arn(self.config.merchant_id, Role.AGENT, agent_uuid),
                name=name or f"Agent {agent_uuid[:8]}",
                email=identity.email,
                language=identity.language_iso_code,
                ring_key=next(self._seq),
            )
            if name:
                self._agents_by_name[name] = agent
            self._bind(agent, conn, out)
            self._set_queues(agent, queues, now)
        else:
            was_offline = agent.conn is None
            agent.email = identity.email or agent.email
            agent.language = identity.language_iso_code or agent.language
            if queues != agent.queues:
                self._set_queues(agent, (), now)
                self._bind(agent, conn, out)
                self._set_queues(agent, queues, now)
            else:
                self._bind(agent, conn, out)
                if was_offline:
                    for queue_name in queues:
                        self._online_delta(self._queues[queue_name], +1, now)
            self._replay(agent, identity.resume_since, out)
            if was_offline:
                self._announce_status(agent, out)
        self._refresh_availability(agent, now)
        for queue_name in agent.queues:  # the agent sees its queues at once
            out.append(Delivery((conn,), self._status_frame(self._queues[queue_name])))
        self._dispatch_for(agent, now, out)

    def _connect_customer(self, conn: ConnId, identity: Identity, now: float, out: list[Delivery]) -> None:
        token = identity.resume_token
        customer = self._customers_by_token.get(token) if token is not None else None
        if token is not None and customer is None:
            reason = "resume_token: unknown or expired; this connection starts afresh"
            out.append(Delivery((conn,), self._error_frame("resume_failed", reason)))
        if customer is None:
            customer_uuid = self._uuid()
            customer = Client(
                role=Role.CUSTOMER,
                uuid=customer_uuid,
                arn=participant_arn(self.config.merchant_id, Role.CUSTOMER, customer_uuid),
                name=identity.name or "Customer",
                email=identity.email,
                language=identity.language_iso_code,
            )
            self._bind(customer, conn, out)
            return
        was_offline = customer.conn is None
        self._bind(customer, conn, out)
        self._replay(customer, identity.resume_since, out)
        if was_offline:
            self._announce_status(customer, out)

    def _bind(self, client: Client, conn: ConnId, out: list[Delivery]) -> None:
        """Attach ``client`` to ``conn``; a previous live connection is replaced."""
        old = client.conn
        if old is not None and old != conn:
            del self._conns[old]
            reason = "another connection took over this session"
            out.append(Delivery((old,), self._error_frame("session_replaced", reason)))
        client.conn = conn
        client.grace_until = None
        self._conns[conn] = client

    def _replay(self, client: Client, since: int | None, out: list[Delivery]) -> None:
        """Bring a reconnected client up to date on each of its conversations:
        ``new conversation``, the messages newer than ``since``, its queue
        position if waiting, ``conversation closed`` if it closed meanwhile."""
        to = self._to(client)
        extra = {"resume_token": client.resume_token} if client.role is Role.CUSTOMER else {}
        for conv in list(client.conversations.values()):
            out.append(
                Delivery(to, conv.event(EventType.NEW_CONVERSATION, event_new_conversation=conv.summary(), **extra))
            )
            out.extend(Delivery(to, m.frame) for m in conv.messages if since is None or m.epoch > since)
            if conv.state is State.QUEUED:
                out.append(Delivery(to, self._position_frame(conv)))
            elif conv.state is State.CLOSED:
                summary = conv.summary()
                out.append(Delivery(to, conv.event(EventType.CONVERSATION_CLOSED, event_conversation_closed=summary)))
                del client.conversations[conv.uuid]

    def _announce_status(self, client: Client, out: list[Delivery]) -> None:
        """``participant update`` to the others when a connection drops or returns."""
        for conv in client.conversations.values():
            member = conv.members[client]
            if conv.state is not State.CLOSED and member.present:
                frame = conv.event(EventType.PARTICIPANT_UPDATE, event_participant_update=conv.summary())
                self._send(out, (m.client for m in conv.present() if m is not member), frame)

    def _expire(self, client: Client, now: float, out: list[Delivery]) -> None:
        """The client is gone for good: it leaves every conversation and queue."""
        for conv in list(client.conversations.values()):
            if conv.state is not State.CLOSED and conv.members[client].present:
                self._leave(conv, client, now, out)
        client.conversations.clear()
        if client.role is Role.CUSTOMER:
            if client.resume_token is not None:
                self._customers_by_token.pop(client.resume_token, None)
        else:
            self._set_queues(client, (), now)
            if self._agents_by_name.get(client.name) is client:
                del self._agents_by_name[client.name]

    # ------------------------------------------------------------------
    # Agents, queues, routing

    def _set_queues(self, agent: Client, queues: tuple[str, ...], now: float) -> None:
        """Log ``agent`` out of all its queues and in to ``queues``."""
        interval = self.config.status_interval
        for queue_name in agent.queues:
            queue = self._queues[queue_name]
            del queue.agents[agent]
            if agent.conn is not None:
                self._online_delta(queue, -1, now)
            queue.ring.discard(agent.ring_key)
            queue.status_changed(now, interval)
        agent.queues = queues
        for queue_name in queues:
            queue = self._queues[queue_name]
            queue.agents[agent] = None
            if agent.conn is not None:
                self._online_delta(queue, +1, now)
            if agent.available:
                queue.ring.add(agent.ring_key, agent)
            queue.status_changed(now, interval)

    def _online_delta(self, queue: WebchatQueue, delta: int, now: float) -> None:
        before = queue.available
        queue.online += delta
        if queue.available is not before and len(queue.line):
            queue.pushes.changed_from(0, now)  # `available` flipped for everyone waiting
        queue.status_changed(now, self.config.status_interval)

    def _refresh_availability(self, agent: Client, now: float) -> None:
        """Re-derive whether the agent can take a chat; its queues' status changed."""
        available = agent.conn is not None and agent.chats < self.config.max_chats_per_agent
        changed = available is not agent.available
        agent.available = available
        for queue_name in agent.queues:
            queue = self._queues[queue_name]
            if changed and available:
                queue.ring.add(agent.ring_key, agent)
            elif changed:
                queue.ring.discard(agent.ring_key)
            queue.status_changed(now, self.config.status_interval)

    def _dispatch_for(self, agent: Client, now: float, out: list[Delivery]) -> None:
        """Round-robin: the agent may take chats; serve its queues, oldest head first."""
        if self.config.routing is not Routing.ROUND_ROBIN or not agent.available:
            return
        queues = [self._queues[name] for name in agent.queues]
        queues.sort(key=lambda q: head[0] if (head := q.line.head()) is not None else math.inf)
        for queue in queues:
            self._dispatch(queue, now, out)

    def _dispatch(self, queue: WebchatQueue, now: float, out: list[Delivery]) -> None:
        """Round-robin: engage waiting customers while an agent is available."""
        if self.config.routing is not Routing.ROUND_ROBIN:
            return
        while (head := queue.line.head()) is not None and (turn := queue.ring.peek()) is not None:
            key, agent = turn
            queue.ring.served(key)
            self._engage(head[1], agent, now, out)

    def _status_frame(self, queue: WebchatQueue) -> Frame:
        cfg = self.config
        turn = queue.ring.peek() if cfg.routing is Routing.ROUND_ROBIN else None
        status = queue.status(
            max_chats=cfg.max_chats_per_agent,
            next_agent=turn[1] if turn is not None else None,
            entries_limit=cfg.status_entries_limit,
        )
        return Frame(type=FrameType.EVENT, event_type=EventType.QUEUE_STATUS_UPDATE, event_queue_status_update=status)

    def _position_frame(self, conv: Conversation) -> Frame:
        """The customer's current queue position (-1 when not waiting), recorded as told."""
        queue = self._queues[conv.queue_name]
        position = queue.position(conv)
        if position > 0:
            conv.told_position = (position, queue.available)
        payload = ConversationEventQueuePosition(available=queue.available, position=position)
        return conv.event(EventType.QUEUE_POSITION, event_queue_position=payload)

    # ------------------------------------------------------------------
    # Frame handlers: protocol.md part B, one per row

    def _on_ping(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Row 13: ``ping`` -> ``{"type": "ping"}`` to the sender."""
        return [Delivery(self._to(client), self._ping)]

    def _on_start(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Row 1: create the conversation and enqueue the customer."""
        cfg = self.config
        request = frame.event_engage_customer
        if request is None:
            raise _Refused("missing_field", "event_engage_customer: required to start a conversation")
        queue_name = request.queue_name or cfg.queues[0]
        queue = self._queues.get(queue_name)
        if queue is None:
            reason = f"event_engage_customer.queue_name: no queue named {_clip(queue_name)}"
            raise _Refused("unknown_queue", reason, object_id=queue_name[:200])
        open_count = sum(1 for c in client.conversations.values() if c.state is not State.CLOSED)
        if open_count >= cfg.max_open_conversations_per_customer:
            limit = cfg.max_open_conversations_per_customer
            raise _Refused("too_many_conversations", f"already {open_count} open conversations (limit {limit})")
        question = request.question
        if question is not None and len(question) > cfg.max_body_length:
            reason = f"event_engage_customer.question: {len(question)} characters, limit {cfg.max_body_length}"
            raise _Refused("message_too_long", reason)
        client.name = request.conversation_participant_name or client.name
        client.email = request.email or client.email
        client.language = request.participant_language_iso_code or client.language
        if client.resume_token is None:
            client.resume_token = f"{self._rng.getrandbits(128):032x}"
            self._customers_by_token[client.resume_token] = client
        now_ms = epoch_ms(now)
        conv_uuid, queue_uuid = self._uuid(), self._uuid()
        entry = ConversationWebchatQueueStatusQueueEntry(
            conversation_participant_arn=client.arn,
            conversation_participant_name=client.name,
            conversation_webchat_queue_uuid=queue_uuid,
            email=client.email,
            join_dts=cached_dts(now_ms),
            participant_language_iso_code=client.language,
            question=question,
            queue_name=queue_name,
        )
        conv = Conversation(
            uuid=conv_uuid,
            arn=conversation_arn(cfg.merchant_id, conv_uuid),
            merchant_id=cfg.merchant_id,
            queue_name=queue_name,
            queue_uuid=queue_uuid,
            seq=next(self._seq),
            start_ms=now_ms,
            joined_at=now,
            customer=client,
            entry=entry,
        )
        member = Member(client=client, joined_ms=now_ms, language=client.language)
        conv.members[client] = member
        client.conversations[conv_uuid] = conv
        self._conversations[conv_uuid] = conv
        self._entries[queue_uuid] = conv
        self._open_count += 1
        stored = conv.store(member, message_uuid=self._uuid(), now_ms=now_ms, body=question) if question else None
        queue.line.push(conv.seq, conv)
        queue.stats.on_join()
        queue.status_changed(now, cfg.status_interval)
        conv.pushed_at = now
        to = self._to(client)
        summary = conv.summary()
        out = [
            Delivery(
                to,
                conv.event(
                    EventType.NEW_CONVERSATION, event_new_conversation=summary, resume_token=client.resume_token
                ),
            )
        ]
        if stored is not None:
            out.append(Delivery(to, stored.frame))
        out.append(Delivery(to, self._position_frame(conv)))
        if agents := queue.agent_conns():
            new_member = Frame(
                type=FrameType.EVENT, event_type=EventType.QUEUE_NEW_MEMBER, event_queue_new_member=entry
            )
            out.append(Delivery(agents, new_member))
        self._dispatch(queue, now, out)
        return out

    def _on_check_queue_position(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Row 2: the sender's position in the queue (-1 when not waiting)."""
        conv, _ = self._member(client, frame, allow_closed=True)
        return [Delivery(self._to(client), self._position_frame(conv))]

    def _on_engage(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Row 3 (manual routing): an agent takes a waiting customer; the first one wins."""
        request = frame.event_engage_customer
        queue_uuid = request.conversation_webchat_queue_uuid if request is not None else None
        if queue_uuid is None:
            raise _Refused("missing_field", "event_engage_customer.conversation_webchat_queue_uuid: required")
        conv = self._entries.get(queue_uuid)
        if conv is None:
            reason = f"no customer is waiting with conversation_webchat_queue_uuid {_clip(queue_uuid)}"
            raise _Refused("queue_entry_not_found", reason, object_id=queue_uuid[:200])
        if client not in self._queues[conv.queue_name].agents:
            reason = f"you are not logged in to queue {conv.queue_name!r}"
            raise _Refused("not_in_queue", reason, object_id=queue_uuid)
        if conv.state is not State.QUEUED:
            raise _Refused("already_engaged", "that customer was already engaged by an agent", object_id=queue_uuid)
        limit = self.config.max_chats_per_agent
        if client.chats >= limit:
            reason = f"you are in {client.chats} chats (limit {limit})"
            raise _Refused("agent_at_capacity", reason, object_id=queue_uuid)
        out: list[Delivery] = []
        self._engage(conv, client, now, out)
        return out

    def _engage(self, conv: Conversation, agent: Client, now: float, out: list[Delivery]) -> None:
        """Row 3: the agent joins; the entry leaves the queue; those behind move up."""
        queue = self._queues[conv.queue_name]
        queue.line.remove(conv.seq)
        queue.pushes.changed_from(conv.seq, now)
        queue.stats.on_engage(now - conv.joined_at)
        conv.state = State.ENGAGED
        conv.engaged_at = now
        now_ms = epoch_ms(now)
        agent.chats += 1
        agent.last_chat_ms = now_ms
        member = Member(client=agent, joined_ms=now_ms, language=agent.language)
        conv.members[agent] = member
        agent.conversations[conv.uuid] = conv
        summary = conv.summary()
        to = self._to(agent)
        out.append(Delivery(to, conv.event(EventType.NEW_CONVERSATION, event_new_conversation=summary)))
        joined = conv.event(
            EventType.PARTICIPANT_JOIN,
            event_participant_join=summary,
            event_participant_join_participant=member.participant(len(conv.messages)),
        )
        self._send(out, (m.client for m in conv.present()), joined)
        out.extend(Delivery(to, m.frame) for m in conv.messages[-self.config.history_replay_limit :])
        if conv.context is not None:
            out.append(Delivery(to, conv.event(EventType.WEBCHAT_CONTEXT, event_webchat_context=conv.context)))
        out.extend(Delivery(to, held) for held in conv.rrweb.held)
        self._refresh_availability(agent, now)

    def _on_message(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Row 4: store, stamp and deliver a chat message to every participant."""
        cfg = self.config
        conv, member = self._member(client, frame)
        message = frame.message
        if message is None:
            raise _Refused("missing_field", 'message: required when type is "message"')
        client_id = message.client_message_id
        if client_id is not None and (earlier := conv.by_client_id.get(client_id)) is not None:
            return [Delivery(self._to(client), earlier.frame)]  # idempotent: the stored one again
        body, media = message.body, message.media_urls
        if not body and not media:
            raise _Refused("empty_message", "message.body: empty, and no message.media_urls", object_id=client_id)
        if body is not None and len(body) > cfg.max_body_length:
            reason = f"message.body: {len(body)} characters, limit {cfg.max_body_length}"
            raise _Refused("message_too_long", reason, object_id=client_id)
        if media is not None and len(media) > cfg.max_media_urls:
            reason = f"message.media_urls: {len(media)} urls, limit {cfg.max_media_urls}"
            raise _Refused("too_many_media_urls", reason, object_id=client_id)
        if len(conv.messages) >= cfg.max_messages_per_conversation:
            reason = f"the conversation has reached {cfg.max_messages_per_conversation} messages"
            raise _Refused("conversation_full", reason, object_id=client_id)
        language = message.language_iso_code
        language_changed = language is not None and language != member.language
        if language_changed:
            member.language = client.language = language
        stored = conv.store(
            member,
            message_uuid=self._uuid(),
            now_ms=epoch_ms(now),
            body=body,
            client_message_id=client_id,
            media_urls=media,
        )
        out: list[Delivery] = []
        present = list(conv.present())
        self._send(out, (m.client for m in present), stored.frame)
        summary = conv.summary()
        new_message = conv.event(EventType.NEW_MESSAGE, event_new_message=summary)
        self._send(out, (m.client for m in present if m.client.role is Role.AGENT), new_message)
        if language_changed:
            update = conv.event(EventType.PARTICIPANT_UPDATE, event_participant_update=summary)
            self._send(out, (m.client for m in present), update)
        return out

    def _on_typing(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Row 5: relay typing to the other participants, stamped with the author."""
        conv, member = self._member(client, frame)
        typing = ConversationEventTyping(
            author_conversation_participant_arn=client.arn,
            author_conversation_participant_name=client.name,
            value=frame.event_typing.value if frame.event_typing is not None else None,
        )
        out: list[Delivery] = []
        others = (m.client for m in conv.present() if m is not member)
        self._send(out, others, conv.event(EventType.TYPING, event_typing=typing))
        return out

    def _on_read(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Row 6: a read receipt; the author's copy gets transport status ``read``."""
        conv, member = self._member(client, frame)
        request = frame.event_read_message
        message_uuid = request.conversation_message_uuid if request is not None else None
        if message_uuid is None:
            raise _Refused("missing_field", "event_read_message.conversation_message_uuid: required")
        stored = conv.by_uuid.get(message_uuid)
        if stored is None:
            reason = f"no message {_clip(message_uuid)} in this conversation"
            raise _Refused("message_not_found", reason, object_id=message_uuid[:200])
        if not conv.mark_read(stored, member):
            return []  # own message, or read before: nothing changes
        receipt = ConversationEventReadMessage(
            conversation_message_uuid=message_uuid, message_dts=stored.model.message_dts, message_epoch=stored.epoch
        )
        out: list[Delivery] = []
        others = (m.client for m in conv.present() if m is not member)
        self._send(out, others, conv.event(EventType.READ_MESSAGE, event_read_message=receipt))
        if stored.author.present:
            updated = conv.event(EventType.UPDATED_MESSAGE, event_updated_message=stored.model)
            self._send(out, (stored.author.client,), updated)
        return out

    def _on_add_coupon(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Row 7: an agent offers a coupon to the customer."""
        conv, _ = self._member(client, frame)
        code = frame.event_add_coupon.coupon_code if frame.event_add_coupon is not None else None
        if not code:
            raise _Refused("missing_field", "event_add_coupon.coupon_code: required")
        payload = ConversationEventAddCoupon(agent_arn=client.arn, agent_name=client.name, coupon_code=code)
        return self._to_customers(conv, conv.event(EventType.ADD_COUPON, event_add_coupon=payload))

    def _on_add_item(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Row 7: an agent adds items to the customer's cart."""
        conv, _ = self._member(client, frame)
        items = frame.event_add_item.items if frame.event_add_item is not None else None
        if not items:
            raise _Refused("missing_field", "event_add_item.items: required, at least one item")
        payload = ConversationEventAddItem(agent_arn=client.arn, agent_name=client.name, items=items)
        return self._to_customers(conv, conv.event(EventType.ADD_ITEM, event_add_item=payload))

    def _on_webchat_context(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Row 8: the customer's page context, to agents now and to agents who join later."""
        conv, _ = self._member(client, frame)
        context = frame.event_webchat_context
        if context is None:
            raise _Refused("missing_field", "event_webchat_context: required")
        conv.context = ConversationEventWebchatContext(cart_id=context.cart_id, ucacid=context.ucacid, url=context.url)
        out: list[Delivery] = []
        self._send(
            out, self._agents_in(conv), conv.event(EventType.WEBCHAT_CONTEXT, event_webchat_context=conv.context)
        )
        return out

    def _on_rrweb(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Row 9: verify an rrweb chunk's hashes, then relay it to the agents."""
        cfg = self.config
        conv, _ = self._member(client, frame)
        part = frame.event_rrweb
        if part is None:
            raise _Refused("missing_field", "event_rrweb: required")
        refusal = conv.rrweb.check(part, max_parts=cfg.max_rrweb_parts, max_bytes=cfg.max_rrweb_bytes)
        if refusal is not None:
            index = str(part.event_index) if part.event_index is not None else None
            raise _Refused(refusal.code, refusal.reason, object_id=index)
        relayed = conv.event(
            EventType.RRWEB,
            event_rrweb=ConversationEventRRWeb(
                data=part.data,
                data_part=part.data_part,
                data_sha256=part.data_sha256,
                data_total_parts=part.data_total_parts,
                data_total_sha256=part.data_total_sha256,
                event_index=part.event_index,
                type=part.type,
            ),
        )
        conv.rrweb.hold(part, relayed, limit=cfg.rrweb_hold_bytes)
        out: list[Delivery] = []
        self._send(out, self._agents_in(conv), relayed)
        return out

    def _on_close(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Row 10: either side closes; a customer closing while queued abandons."""
        conv, _ = self._member(client, frame)
        out: list[Delivery] = []
        self._close(conv, now, out)
        return out

    def _on_leave(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Row 11 (explicit): the sender leaves the conversation."""
        conv, _ = self._member(client, frame)
        out: list[Delivery] = []
        self._leave(conv, client, now, out)
        return out

    # ------------------------------------------------------------------
    # Leaving and closing

    def _leave(self, conv: Conversation, client: Client, now: float, out: list[Delivery]) -> None:
        """Row 11: ``participant left`` to the others (and the leaver); the
        conversation closes when no customer or no agent is left in it."""
        member = conv.members[client]
        if conv.state is State.QUEUED:  # nobody but the customer is in it: an abandon
            self._close(conv, now, out)
            member.left_ms = epoch_ms(now)
            return
        member.left_ms = epoch_ms(now)
        if client.conn is not None:
            client.conversations.pop(conv.uuid, None)
        if client.role is Role.AGENT:
            client.chats -= 1
        left = conv.event(
            EventType.PARTICIPANT_LEFT,
            event_participant_left=conv.summary(),
            event_participant_left_participant=member.participant(len(conv.messages)),
        )
        self._send(out, itertools.chain((m.client for m in conv.present()), (client,)), left)
        roles = {m.client.role for m in conv.present()}
        if Role.CUSTOMER not in roles or Role.AGENT not in roles:
            self._close(conv, now, out)
        if client.role is Role.AGENT:
            self._refresh_availability(client, now)
            self._dispatch_for(client, now, out)

    def _close(self, conv: Conversation, now: float, out: list[Delivery]) -> None:
        """Row 10: ``conversation closed`` to everyone in it; statistics; freed agents route."""
        queue = self._queues[conv.queue_name]
        if conv.state is State.QUEUED:
            queue.line.remove(conv.seq)
            queue.pushes.changed_from(conv.seq, now)
            queue.stats.on_abandon(now - conv.joined_at)
        else:
            queue.stats.on_chat_end(now - (conv.engaged_at if conv.engaged_at is not None else now))
        queue.status_changed(now, self.config.status_interval)
        self._entries.pop(conv.queue_uuid, None)
        conv.state = State.CLOSED
        self._open_count -= 1
        self._closed_count += 1
        present = list(conv.present())
        closed = conv.event(EventType.CONVERSATION_CLOSED, event_conversation_closed=conv.summary())
        self._send(out, (m.client for m in present), closed)
        freed = []
        for member in present:
            participant = member.client
            if participant.conn is not None:  # told now; a disconnected one is told on resume
                participant.conversations.pop(conv.uuid, None)
            if participant.role is Role.AGENT:
                participant.chats -= 1
                freed.append(participant)
        # A closed conversation keeps what a resume replays (summary, messages)
        # and drops the rest: the held recording, context, dedup and read indexes.
        conv.rrweb = RRWebStream()
        conv.context = None
        conv.by_client_id.clear()
        self._closed[conv.uuid] = None
        if len(self._closed) > self.config.closed_conversations_kept:
            oldest = next(iter(self._closed))
            del self._closed[oldest]
            self._conversations.pop(oldest, None)
        for agent in freed:
            self._refresh_availability(agent, now)
            self._dispatch_for(agent, now, out)

    # ------------------------------------------------------------------
    # Helpers

    def _member(self, client: Client, frame: Frame, *, allow_closed: bool = False) -> tuple[Conversation, Member]:
        """The conversation the frame names and the sender's membership in it.
        Refused alike whether the conversation does not exist or the sender is
        not in it, so outsiders learn nothing."""
        conv_uuid = frame.conversation_uuid
        if conv_uuid is None:
            raise _Refused("missing_field", "conversation_uuid: required")
        conv = self._conversations.get(conv_uuid)
        member = conv.members.get(client) if conv is not None else None
        if conv is None or member is None or not member.present:
            reason = f"conversation_uuid: you are not a participant of {_clip(conv_uuid)}"
            raise _Refused("not_a_participant", reason, object_id=conv_uuid[:200])
        if conv.state is State.CLOSED and not allow_closed:
            raise _Refused("conversation_closed", f"conversation {conv_uuid} is closed", object_id=conv_uuid)
        return conv, member

    def _to_customers(self, conv: Conversation, frame: Frame) -> list[Delivery]:
        out: list[Delivery] = []
        self._send(out, (m.client for m in conv.present() if m.client.role is Role.CUSTOMER), frame)
        return out

    @staticmethod
    def _agents_in(conv: Conversation) -> Iterable[Client]:
        return (m.client for m in conv.present() if m.client.role is Role.AGENT)

    @staticmethod
    def _to(client: Client) -> tuple[ConnId, ...]:
        return (client.conn,) if client.conn is not None else ()

    @staticmethod
    def _send(out: list[Delivery], clients: Iterable[Client], frame: Frame) -> None:
        if recipients := tuple(c.conn for c in clients if c.conn is not None):
            out.append(Delivery(recipients, frame))

    @staticmethod
    def _error_frame(
        code: str, reason: str, *, conversation_uuid: str | None = None, object_id: str | None = None
    ) -> Frame:
        user_message = ERROR_CODES.get(code, _DEFAULT_USER_MESSAGE)
        error = Error(error_code=code, developer_message=reason, user_message=user_message, object_id=object_id)
        return Frame(type=FrameType.EVENT, conversation_uuid=conversation_uuid, error=error)

    def _uuid(self) -> str:
        """``str(uuid.UUID(int=rng.getrandbits(128), version=4))``, formatted directly (3x faster)."""
        digits = f"{self._rng.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"
        return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
