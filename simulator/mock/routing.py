"""Queues, routing and the lifecycle of a conversation (part of the engine).

A conversation starts when a customer asks for one (docs/protocol.md,
section 3, row 1) and waits in its queue, whose place the customer may ask
for (row 2); an agent takes it, engaged by hand or assigned round-robin
(row 3); it ends when a participant closes it (row 10) or when its last
customer or last agent leaves (row 11). Between those, agents log in to and
out of queues and become available or busy, and every change schedules the
coalesced ``queue position`` pushes and ``queue status update`` broadcasts
that ``Engine.tick`` emits (section 7).
"""

from __future__ import annotations

import itertools
import math

from ..protocol import (
    ConversationEventQueuePosition,
    ConversationWebchatQueueStatusQueueEntry,
    ErrorCode,
    EventType,
    Frame,
    FrameType,
    encoded_length,
    epoch_ms,
)
from .base import Delivery, EngineBase, Routing
from .conversation import (
    Client,
    Conversation,
    Member,
    Role,
    RRWebStream,
    State,
    StoredMessage,
    cached_dts,
    conversation_arn,
)
from .journal import CONV, MEMBER, MSG, STATE
from .queues import WebchatQueue
from .rules import LIMITS, Refused, check_length, clip

__all__ = ["QueuesMixin"]


class QueuesMixin(EngineBase):
    """Rows 1-3, 10 and 11, agents' queues and round-robin routing."""

    # ------------------------------------------------------------------
    # Row 1: start

    def _on_start(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Row 1: create the conversation and enqueue the customer."""
        cfg = self.config
        request = frame.event_engage_customer
        if request is None:
            raise Refused(ErrorCode.MISSING_FIELD, "event_engage_customer: required to start a conversation")
        check_length(
            "event_engage_customer.conversation_participant_name", request.conversation_participant_name, LIMITS.name
        )
        check_length("event_engage_customer.email", request.email, LIMITS.email)
        check_length(
            "event_engage_customer.participant_language_iso_code",
            request.participant_language_iso_code,
            LIMITS.language,
        )
        check_length("event_engage_customer.queue_name", request.queue_name, LIMITS.queue_name)
        queue_name = request.queue_name or cfg.queues[0]
        queue = self._queues.get(queue_name)
        if queue is None:
            reason = f"event_engage_customer.queue_name: no queue named {clip(queue_name)}"
            raise Refused(ErrorCode.UNKNOWN_QUEUE, reason, object_id=queue_name[:200])
        open_count = sum(1 for c in client.conversations.values() if c.state is not State.CLOSED)
        if open_count >= cfg.max_open_conversations_per_customer:
            limit = cfg.max_open_conversations_per_customer
            reason = f"already {open_count} open conversations (limit {limit})"
            raise Refused(ErrorCode.TOO_MANY_CONVERSATIONS, reason)
        question = request.question
        if question is not None and len(question) > cfg.max_body_length:
            reason = f"event_engage_customer.question: {len(question)} characters, limit {cfg.max_body_length}"
            raise Refused(ErrorCode.MESSAGE_TOO_LONG, reason)
        client.name = request.conversation_participant_name or client.name
        client.email = request.email or client.email
        client.language = request.participant_language_iso_code or client.language
        if client.resume_token is None:
            client.resume_token = self._new_token()
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
            entry_bytes=encoded_length(entry),
            held=self._held,
        )
        member = Member(client=client, joined_ms=now_ms, language=client.language)
        conv.members[client] = member
        client.conversations[conv_uuid] = conv
        self._conversations[conv_uuid] = conv
        self._entries[queue_uuid] = conv
        self._open_count += 1
        stored = conv.store(member, message_uuid=self._uuid(), now_ms=now_ms, body=question) if question else None
        self._retention.wrote(conv)
        if (journal := self.journal) is not None:
            journal.append((CONV, conv))
            if stored is not None:
                journal.append((MSG, stored))
        queue.line.push(conv.seq, conv)
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

    # ------------------------------------------------------------------
    # Row 2: queue position

    def _on_check_queue_position(self, conv: Conversation, member: Member, frame: Frame, now: float) -> list[Delivery]:
        """Row 2: the sender's position in the queue (-1 when not waiting)."""
        return [Delivery(self._to(member.client), self._position_frame(conv))]

    def _position_frame(self, conv: Conversation) -> Frame:
        """The customer's current queue position (-1 when not waiting), recorded as told."""
        queue = self._queues[conv.queue_name]
        position = queue.position(conv)
        if position > 0:
            conv.told_position = (position, queue.available)
        payload = ConversationEventQueuePosition(available=queue.available, position=position)
        return conv.event(EventType.QUEUE_POSITION, event_queue_position=payload)

    # ------------------------------------------------------------------
    # Row 3: engage

    def _on_engage(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Row 3 (manual routing): an agent takes a waiting customer; the first one wins."""
        request = frame.event_engage_customer
        queue_uuid = request.conversation_webchat_queue_uuid if request is not None else None
        if queue_uuid is None:
            reason = "event_engage_customer.conversation_webchat_queue_uuid: required"
            raise Refused(ErrorCode.MISSING_FIELD, reason)
        conv = self._entries.get(queue_uuid)
        if conv is None:
            reason = f"no customer is waiting with conversation_webchat_queue_uuid {clip(queue_uuid)}"
            raise Refused(ErrorCode.QUEUE_ENTRY_NOT_FOUND, reason, object_id=queue_uuid[:200])
        if client not in self._queues[conv.queue_name].agents:
            reason = f"you are not logged in to queue {conv.queue_name!r}"
            raise Refused(ErrorCode.NOT_IN_QUEUE, reason, object_id=queue_uuid)
        if conv.state is not State.QUEUED:
            reason = "that customer was already engaged by an agent"
            raise Refused(ErrorCode.ALREADY_ENGAGED, reason, object_id=queue_uuid)
        self._check_capacity(client, queue_uuid)
        out: list[Delivery] = []
        self._engage(conv, client, now, out)
        return out

    def _replayable(self, conv: Conversation) -> list[StoredMessage]:
        """The latest messages an agent who joins is sent: at most
        ``history_replay_limit`` of them, within ``history_replay_bytes``
        (always the latest one)."""
        cfg = self.config
        chosen: list[StoredMessage] = []
        budget = cfg.history_replay_bytes
        for stored in reversed(conv.messages[-cfg.history_replay_limit :]):
            budget -= stored.size
            if budget < 0 and chosen:
                break
            chosen.append(stored)
        chosen.reverse()
        return chosen

    def _chat_limit(self, agent: Client) -> int:
        """How many chats ``agent`` may be in: its own limit, else the server's."""
        return self.config.max_chats_per_agent

    def _check_capacity(self, agent: Client, object_id: str) -> None:
        limit = self._chat_limit(agent)
        if agent.chats >= limit:
            reason = f"you are in {agent.chats} chats (limit {limit})"
            raise Refused(ErrorCode.AGENT_AT_CAPACITY, reason, object_id=object_id)

    def _engage(self, conv: Conversation, agent: Client, now: float, out: list[Delivery]) -> None:
        """Row 3: the agent joins; the entry leaves the queue; those behind move up."""
        queue = self._queues[conv.queue_name]
        queue.line.remove(conv.seq)
        queue.pushes.changed_from(conv.seq, now)
        queue.stats.on_engage(now - conv.joined_at)
        conv.state = State.ENGAGED
        conv.engaged_at = now
        if self.journal is not None:
            self.journal.append((STATE, conv, now))
        self._add_agent(conv, agent, now, out)

    def _add_agent(self, conv: Conversation, agent: Client, now: float, out: list[Delivery]) -> None:
        """The agent joins ``conv`` (the first by engaging, others by a REST
        join): ``new conversation`` and the history to it, ``participant join``
        to everyone present. An agent who had left comes back as the same member."""
        now_ms = epoch_ms(now)
        agent.chats += 1
        agent.last_chat_ms = now_ms
        member = conv.members.get(agent)
        if member is None:
            member = Member(client=agent, joined_ms=now_ms, language=agent.language)
            conv.members[agent] = member
        else:
            member.left_ms = None
        agent.conversations[conv.uuid] = conv
        if self.journal is not None:
            self.journal.append((MEMBER, conv, member))
        summary = conv.summary()
        to = self._to(agent)
        out.append(Delivery(to, conv.event(EventType.NEW_CONVERSATION, event_new_conversation=summary)))
        joined = conv.event(
            EventType.PARTICIPANT_JOIN,
            event_participant_join=summary,
            event_participant_join_participant=member.participant(conv.message_count),
        )
        self._send(out, (m.client for m in conv.present()), joined)
        out.extend(Delivery(to, m.frame) for m in self._replayable(conv))
        if conv.context is not None:
            out.append(Delivery(to, conv.event(EventType.WEBCHAT_CONTEXT, event_webchat_context=conv.context)))
        out.extend(Delivery(to, held) for held in conv.rrweb.held)
        self._refresh_availability(agent, now)

    # ------------------------------------------------------------------
    # Rows 10 and 11: closing and leaving

    def _on_close(self, conv: Conversation, member: Member, frame: Frame, now: float) -> list[Delivery]:
        """Row 10: either side closes; a customer closing while queued abandons."""
        out: list[Delivery] = []
        self._close(conv, now, out)
        return out

    def _on_leave(self, conv: Conversation, member: Member, frame: Frame, now: float) -> list[Delivery]:
        """Row 11 (explicit): the sender leaves the conversation."""
        out: list[Delivery] = []
        self._leave(conv, member.client, now, out)
        return out

    def _leave(self, conv: Conversation, client: Client, now: float, out: list[Delivery]) -> None:
        """Row 11: ``participant left`` to the others (and the leaver); the
        conversation closes when no customer or no agent is left in it."""
        member = conv.members[client]
        if conv.state is State.QUEUED:  # nobody but the customer is in it: an abandon
            self._close(conv, now, out)
            member.left_ms = epoch_ms(now)
            if self.journal is not None:
                self.journal.append((MEMBER, conv, member))
            return
        member.left_ms = epoch_ms(now)
        if self.journal is not None:
            self.journal.append((MEMBER, conv, member))
        if client.conn is not None:
            client.conversations.pop(conv.uuid, None)
        if client.role is Role.AGENT:
            client.chats -= 1
        left = conv.event(
            EventType.PARTICIPANT_LEFT,
            event_participant_left=conv.summary(),
            event_participant_left_participant=member.participant(conv.message_count),
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
        if self.journal is not None:
            self.journal.append((STATE, conv, now))
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
        # and drops the rest: the held recording, context, dedup and read
        # indexes. It is retained until the byte budget or the count evicts it.
        conv.drop_recording()
        conv.rrweb = RRWebStream()
        conv.context = None
        conv.by_client_id.clear()
        self._retention.closed(conv)
        for agent in freed:
            self._refresh_availability(agent, now)
            self._dispatch_for(agent, now, out)

    # ------------------------------------------------------------------
    # Agents in queues; round-robin

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
        limit = self._chat_limit(agent)
        agent.chat_limit = limit if limit != self.config.max_chats_per_agent else None
        available = agent.conn is not None and not agent.busy and agent.chats < limit
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

    def _status_frame(self, queue: WebchatQueue, **extra: str) -> Frame:
        """The ``queue status update`` of ``queue`` as of now (``extra``: additional properties)."""
        cfg = self.config
        turn = queue.ring.peek() if cfg.routing is Routing.ROUND_ROBIN else None
        status = queue.status(
            max_chats=cfg.max_chats_per_agent,
            next_agent=turn[1] if turn is not None else None,
            entries_limit=cfg.status_entries_limit,
            max_bytes=cfg.status_max_bytes,
        )
        return Frame(
            type=FrameType.EVENT, event_type=EventType.QUEUE_STATUS_UPDATE, event_queue_status_update=status, **extra
        )
