"""Questions the REST API asks the engine, and its REST-driven actions (part of the engine).

The websocket side addresses the engine by connection; the REST side
(:mod:`.rest`) addresses it by *who* calls: an agent by name, a customer by
participant ARN, whether or not a websocket of theirs is open. This mixin
adds, without changing how frames are handled:

* lookups: :meth:`QueriesMixin.agent_named`, :meth:`QueriesMixin.customer_with_arn`;
* the access rule (the websocket's, for reads): a customer sees only its own
  conversations; an agent the conversations of its queues and the ones it is
  or was in (:meth:`QueriesMixin.visible_conversations`,
  :meth:`QueriesMixin.visible_conversation`); anything else is as if it did
  not exist;
* :meth:`QueriesMixin.act`: a frame on behalf of a participant, checked
  against :data:`.rules.RULES` exactly as ``Engine.receive`` checks it and
  handled by the same handler, so a REST ``join`` or ``markread`` produces
  the same deliveries as the frame would; a refusal is raised
  (:class:`~simulator.errors.Refused`) instead of becoming an error frame;
* queue statuses and an agent's per-queue status (log in to / out of a queue);
* agent profiles (kept per agent name, REST only).
"""

from __future__ import annotations

import heapq
from typing import Any

from ..protocol import AgentStatus, ConversationWebchatQueueStatus, ErrorCode
from .base import Delivery
from .conversation import Client, Conversation, Role
from .routing import QueuesMixin
from .rules import Refused, clip

__all__ = ["QueriesMixin"]


def _activity(conv: Conversation) -> tuple[int, int]:
    """Newest activity first: the latest message (or the start), then the join order."""
    return (conv.last_epoch or conv.start_ms, conv.seq)


class QueriesMixin(QueuesMixin):
    """Lookups, the access rule and actions on behalf of a participant, for REST."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._profiles: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------
    # Who

    def agent_named(self, name: str) -> Client | None:
        """The agent known by ``name`` (connected or within its reconnect grace)."""
        return self._agents_by_name.get(name)

    def connected_clients(self) -> list[Client]:
        """Every participant with an open connection (one entry per connection)."""
        return list(self._conns.values())

    def customer_with_arn(self, arn: str) -> Client | None:
        """The customer whose participant ARN is ``arn``, connected or resumable."""
        for client in self._conns.values():
            if client.arn == arn and client.role is Role.CUSTOMER:
                return client
        for client in self._customers_by_token.values():
            if client.arn == arn:
                return client
        return None

    # ------------------------------------------------------------------
    # The access rule

    def queues_of(self, allowed: tuple[str, ...]) -> tuple[str, ...]:
        """The configured queues among ``allowed`` (empty: every queue)."""
        return tuple(q for q in self._queues if not allowed or q in allowed)

    def may_see(
        self, conv: Conversation, role: Role, *, arn: str | None, name: str | None, queues: tuple[str, ...]
    ) -> bool:
        """Whether the participant may read ``conv``: its customer, an agent of
        its queue (``queues`` empty: every queue), or an agent who is or was in it."""
        if role is Role.CUSTOMER:
            return arn is not None and conv.customer.arn == arn
        if not queues or conv.queue_name in queues:
            return True
        return any(
            c.role is Role.AGENT and ((name is not None and c.name == name) or (arn is not None and c.arn == arn))
            for c in conv.members
        )

    def visible_conversation(
        self, conversation_uuid: str, role: Role, *, arn: str | None, name: str | None, queues: tuple[str, ...]
    ) -> Conversation | None:
        """The conversation, if it exists and the participant may see it (else ``None``, alike)."""
        conv = self._conversations.get(conversation_uuid)
        if conv is None or not self.may_see(conv, role, arn=arn, name=name, queues=queues):
            return None
        return conv

    def visible_conversations(
        self, role: Role, *, arn: str | None, name: str | None, queues: tuple[str, ...]
    ) -> list[Conversation]:
        """Every conversation (open or retained closed) the participant may see, newest activity first."""
        found = [c for c in self._conversations.values() if self.may_see(c, role, arn=arn, name=name, queues=queues)]
        found.sort(key=lambda c: (c.last_epoch or c.start_ms, c.seq), reverse=True)
        return found

    def recent_conversations(self, limit: int) -> list[Conversation]:
        """The ``limit`` conversations (open or retained closed) with the newest
        activity, newest first, whoever may see them (O(n), not a sort of all)."""
        return heapq.nlargest(limit, self._conversations.values(), key=_activity)

    # ------------------------------------------------------------------
    # Acting on behalf of a participant

    # ------------------------------------------------------------------
    # Queues

    def queue_statuses(self, queues: tuple[str, ...]) -> list[ConversationWebchatQueueStatus]:
        """The status of each of ``queues`` (configured ones only), as ``queue status update`` carries it."""
        statuses = []
        for name in self.queues_of(queues):
            status = self._status_frame(self._queues[name]).event_queue_status_update
            if status is not None:
                statuses.append(status)
        return statuses

    def set_queue_status(self, agent: Client, queue_name: str, status: AgentStatus, now: float) -> list[Delivery]:
        """``available``: log ``agent`` in to ``queue_name`` (round-robin may
        hand it a chat at once); ``busy``: logged in as well, but routed no new
        chats until it is ``available`` again (it may still engage by hand; the
        flag is the agent's, for all its queues); ``unavailable``: log it out
        of that queue (its chats go on)."""
        if queue_name not in self._queues:
            raise Refused(ErrorCode.UNKNOWN_QUEUE, f"no queue named {clip(queue_name)}", object_id=queue_name[:200])
        queues = tuple(q for q in agent.queues if q != queue_name)
        if status is not AgentStatus.UNAVAILABLE:
            queues += (queue_name,)
        out: list[Delivery] = []
        busy = status is AgentStatus.BUSY if status is not AgentStatus.UNAVAILABLE else agent.busy
        if queues != agent.queues or busy is not agent.busy:
            agent.busy = busy
            if set(queues) != set(agent.queues):
                self._set_queues(agent, queues, now)
            self._refresh_availability(agent, now)
            self._dispatch_for(agent, now, out)
        return out

    def join_engaged(self, conv: Conversation, agent: Client, now: float) -> list[Delivery]:
        """Another agent joins an engaged conversation (REST ``join``): as the
        first agent did, within its chat limit (:class:`Refused` otherwise)."""
        self._check_capacity(agent, conv.uuid)
        out: list[Delivery] = []
        self._add_agent(conv, agent, now, out)
        return out

    # ------------------------------------------------------------------
    # Agent profiles

    def _chat_limit(self, agent: Client) -> int:
        limit = self._profiles.get(agent.name, {}).get("chat_limit")
        return limit if isinstance(limit, int) and limit > 0 else self.config.max_chats_per_agent

    def agent_profile(self, name: str) -> dict[str, Any]:
        """The stored profile fields of the agent ``name`` (empty if none were set)."""
        return dict(self._profiles.get(name, {}))

    def update_agent_profile(self, name: str, fields: dict[str, Any], now: float = 0.0) -> list[Delivery]:
        """Merge ``fields`` into the agent's profile. A new ``chat_limit`` is
        the agent's from now on (round-robin may hand it chats at once: the
        deliveries)."""
        profile = self._profiles.setdefault(name, {})
        profile.update(fields)
        out: list[Delivery] = []
        agent = self._agents_by_name.get(name)
        if agent is not None and "chat_limit" in fields:
            self._refresh_availability(agent, now)
            self._dispatch_for(agent, now, out)
        return out
