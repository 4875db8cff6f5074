"""Sessions: who a connection is, across reconnects (part of the engine).

A connection is bound to one participant (:class:`~.conversation.Client`):
a new customer, a known customer presenting its resume token, or an agent,
known by name (docs/protocol.md, section 4.1). When the connection drops, the
participant is kept for the reconnect grace (4.2) and the others are told
(row 12); a participant who comes back in time is rebound and brought up to
date (4.3); one who does not leaves everything (row 11). A second connection
for a participant who is still connected takes the session over (4.4): the
old connection gets ``session_replaced`` and a :class:`~.base.Close`. An
agent's name, while held, goes only to a connection with that agent's resume
token (issued at its first connect) or a JWT naming it, and an autopilot
agent's to none: others get ``identity_in_use`` and a ``Close`` (4.4).
"""

from __future__ import annotations

import heapq
import hmac
import math

from ..protocol import ErrorCode, EventType
from .base import Close, Delivery, Identity
from .conversation import Client, ConnId, Role, State, participant_arn
from .journal import CLIENT, GONE
from .routing import QueuesMixin
from .rules import clip, error_frame

__all__ = ["SessionsMixin"]


class SessionsMixin(QueuesMixin):
    """Connecting, resuming, taking over and expiring participants."""

    def _connect_agent(self, conn: ConnId, identity: Identity, now: float, out: list[Delivery]) -> None:
        name = identity.name
        agent = self._agents_by_name.get(name) if name else None
        if agent is not None and (refusal := self._claim_refusal(agent, identity)) is not None:
            out.append(Delivery((conn,), error_frame(ErrorCode.IDENTITY_IN_USE, refusal)))
            self._closes.append(Close(conn, 1008, "agent name held by another session"))  # docs/protocol.md, 4.4
            return
        queues = tuple(dict.fromkeys(identity.queues or self.config.queues))
        if unknown := [q for q in queues if q not in self._queues]:
            reason = f"queues: {', '.join(map(clip, unknown))} not configured; ignored"
            out.append(Delivery((conn,), error_frame(ErrorCode.UNKNOWN_QUEUE, reason, object_id=unknown[0][:200])))
            queues = tuple(q for q in queues if q in self._queues)
        if agent is None:
            agent_uuid = identity.participant_uuid or self._uuid()
            agent = Client(
                role=Role.AGENT,
                uuid=agent_uuid,
                arn=participant_arn(self.config.merchant_id, Role.AGENT, agent_uuid),
                name=name or f"Agent {agent_uuid[:8]}",
                email=identity.email,
                language=identity.language_iso_code,
                ring_key=next(self._seq),
                autopilot=identity.autopilot,
            )
            if name:
                self._agents_by_name[name] = agent
                if not identity.autopilot:
                    agent.resume_token = self._new_token()
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
        if self.journal is not None and name:
            self.journal.append((CLIENT, agent))
        # The agent sees its queues at once; these frames carry its resume token.
        extra = {"resume_token": agent.resume_token} if agent.resume_token is not None else {}
        for queue_name in agent.queues:
            out.append(Delivery((conn,), self._status_frame(self._queues[queue_name], **extra)))
        self._dispatch_for(agent, now, out)

    @staticmethod
    def _claim_refusal(agent: Client, identity: Identity) -> str | None:
        """Why a new connection may not take the session of ``agent``, whose
        name it gives (``None``: it may). An autopilot agent's name is never
        given to a connection; anyone else's needs its resume token or a JWT
        naming it (4.4)."""
        if identity.autopilot:
            return None
        name = clip(agent.name)
        if agent.autopilot:
            return f"name: {name} is an autopilot agent of this server; no connection may sign in as it"
        if identity.authenticated:
            return None
        token, secret = identity.resume_token, agent.resume_token
        if token is not None and secret is not None and hmac.compare_digest(token.encode(), secret.encode()):
            return None
        held = "connected" if agent.conn is not None else "within its reconnect grace"
        given = "is not its resume token" if token is not None else "is missing"
        return (
            f"name: agent {name} is {held}; token {given} (to resume it, give token=<the resume_token "
            f"of its first frames> or a JWT naming it)"
        )

    def _connect_customer(self, conn: ConnId, identity: Identity, now: float, out: list[Delivery]) -> None:
        token = identity.resume_token
        customer = self._customers_by_token.get(token) if token is not None else None
        if customer is None and identity.participant_uuid is not None:
            customer = self._customers_by_uuid.get(identity.participant_uuid)
        if token is not None and customer is None:
            reason = "resume_token: unknown or expired; this connection starts afresh"
            out.append(Delivery((conn,), error_frame(ErrorCode.RESUME_FAILED, reason)))
        if customer is None:
            customer_uuid = identity.participant_uuid or self._uuid()
            customer = Client(
                role=Role.CUSTOMER,
                uuid=customer_uuid,
                arn=participant_arn(self.config.merchant_id, Role.CUSTOMER, customer_uuid),
                name=identity.name or "Customer",
                email=identity.email,
                language=identity.language_iso_code,
            )
            if identity.participant_uuid is not None:
                self._customers_by_uuid[customer_uuid] = customer
            self._bind(customer, conn, out)
            return
        was_offline = customer.conn is None
        self._bind(customer, conn, out)
        self._replay(customer, identity.resume_since, out)
        if was_offline:
            self._announce_status(customer, out)

    def _bind(self, client: Client, conn: ConnId, out: list[Delivery]) -> None:
        """Attach ``client`` to ``conn``; a previous live connection is replaced:
        it gets ``session_replaced``, is forgotten, and is to be closed."""
        old = client.conn
        if old is not None and old != conn:
            del self._conns[old]
            reason = "another connection took over this session"
            out.append(Delivery((old,), error_frame(ErrorCode.SESSION_REPLACED, reason)))
            self._closes.append(Close(old, 1000, "session replaced by a new connection"))  # docs/protocol.md, 6
        client.conn = conn
        client.grace_until = None
        self._conns[conn] = client

    def _unbind(self, client: Client, now: float, out: list[Delivery]) -> None:
        """The client's connection is gone: its reconnect grace starts (the
        others are told), or, with nothing to keep or no grace, it expires."""
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

    def _end_graces(self, now: float, out: list[Delivery]) -> None:
        """Expire the clients whose reconnect grace ended by ``now``."""
        graces = self._graces
        while graces and graces[0][0] <= now:
            deadline, _, client = heapq.heappop(graces)
            if client.conn is None and client.grace_until == deadline:
                client.grace_until = None
                self._expire(client, now, out)

    def _next_grace_end(self) -> float:
        """When the next reconnect grace ends (``math.inf``: none is running)."""
        graces = self._graces
        while graces and not (graces[0][2].conn is None and graces[0][2].grace_until == graces[0][0]):
            heapq.heappop(graces)  # stale: the client came back
        return graces[0][0] if graces else math.inf

    def _replay(self, client: Client, since: int | None, out: list[Delivery]) -> None:
        """Bring a reconnected client up to date on each of its conversations:
        ``new conversation``, the messages newer than ``since`` and, for its
        own older messages whose transport status changed after ``since`` (a
        read receipt), ``updated message``; its queue position if waiting,
        ``conversation closed`` if it closed meanwhile. (A scan of the
        messages, once per resume: nothing is kept per event for it.)"""
        to = self._to(client)
        extra = {"resume_token": client.resume_token} if client.resume_token is not None else {}
        for conv in list(client.conversations.values()):
            out.append(
                Delivery(to, conv.event(EventType.NEW_CONVERSATION, event_new_conversation=conv.summary(), **extra))
            )
            for m in conv.messages:
                if since is None or m.epoch > since:
                    out.append(Delivery(to, m.frame))
                elif m.status_epoch > since and m.author.client is client:
                    updated = conv.event(EventType.UPDATED_MESSAGE, event_updated_message=m.model)
                    out.append(Delivery(to, updated))
            if conv.state is State.QUEUED:
                out.append(Delivery(to, self._position_frame(conv)))
            elif conv.state is State.CLOSED:
                summary = conv.summary()
                out.append(Delivery(to, conv.event(EventType.CONVERSATION_CLOSED, event_conversation_closed=summary)))
                del client.conversations[conv.uuid]

    def _announce_status(self, client: Client, out: list[Delivery]) -> None:
        """Row 12: ``participant update`` to the others when a connection drops or returns."""
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
        if self.journal is not None:
            self.journal.append((GONE, client))
        if client.role is Role.CUSTOMER:
            if client.resume_token is not None:
                self._customers_by_token.pop(client.resume_token, None)
            if self._customers_by_uuid.get(client.uuid) is client:
                del self._customers_by_uuid[client.uuid]
        else:
            self._set_queues(client, (), now)
            if self._agents_by_name.get(client.name) is client:
                del self._agents_by_name[client.name]
