"""The conversation engine: the mock webchat server's behaviour, sans I/O.

The engine is a plain object. The websocket server (glue) hands it *who*,
*a decoded frame* and *now*; it returns :class:`Delivery` values — a frame and
the connections that must receive it — which the server encodes once each and
sends; a connection the server must close is a :class:`Close`, taken with
:meth:`Engine.take_closes` after each call. Nothing here touches a socket,
the clock or global randomness: time is the ``now`` argument (seconds since
the Unix epoch) and every uuid comes from the ``random.Random`` it is given,
so a run is reproducible. Resume tokens, which grant a session, come from
the ``token_source`` it is given (default: ``secrets``, a CSPRNG, whatever
the seed), never from that ``random.Random``.

Behaviour is docs/protocol.md, section 3, row by row. :data:`.rules.RULES` is
the accept policy as one table: which frames are accepted from which role,
in which conversation state, and the ``_on_*`` handler of each row. The
handlers live in the engine's parts, one concept each: :mod:`.routing`
(queues, routing, start, engage, leave, close), :mod:`.sessions` (connect,
resume, takeover, reconnect grace) and :mod:`.relay` (messages, typing, read
receipts, coupons, items, context, rrweb); :mod:`.base` holds the shared
state. Work per event is O(participants of the conversation + log(queue
length)); ``queue position`` pushes and ``queue status update`` broadcasts
are coalesced and emitted by :meth:`Engine.tick`, which the server calls at
:meth:`Engine.next_deadline`.

Policies this dialect adds (documented here, tested in tests/test_engine*.py):

* The customer's question (``event_engage_customer.question``) is stored as
  the conversation's first customer message, so the agent who engages sees it.
* A message whose ``client_message_id`` its sender already used in the
  conversation is a resend: not stored again, the stored one goes back to
  the sender alone. Another participant may use the same id.
* An agent who joins a conversation gets ``new conversation`` and
  ``participant join``, then the stored messages (the last
  ``history_replay_limit``), the held ``webchat context`` and the held rrweb
  recording (since the latest ``init``, up to ``rrweb_hold_bytes``).
* Resume: a customer gets a resume token (additional property
  ``resume_token`` of its ``new conversation``), an agent one at its first
  connect (``resume_token`` of the ``queue status update`` frames it gets
  then); connecting with it (an agent: with its name and its token, or with
  a JWT naming it) within ``reconnect_grace`` rebinds the participant and
  replays, per conversation: ``new conversation``, the
  messages newer than ``resume_since`` (and ``updated message`` for its own
  older ones whose transport status changed after it: read while it was away),
  the queue position if still waiting, ``conversation closed`` if it closed
  meanwhile.
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
* A second connection with the resume token of a customer or agent who is
  still connected (an agent: or a JWT naming it) takes the session over; the
  old connection gets an error frame ``session_replaced``, is forgotten, and
  is to be closed with 1000 (a :class:`Close` from :meth:`Engine.take_closes`).
* A connection for an agent name that is held (connected or in its grace)
  without its resume token or a JWT naming it, or for an autopilot agent's
  name (``Identity.autopilot``, set by the hub alone), is refused: an error
  frame ``identity_in_use`` and a :class:`Close` with 1008; nothing changes
  for the session that holds the name.
* What the engine holds is on a byte account kept within ``retain_bytes``
  (:mod:`.retention`): the oldest closed conversations are forgotten first,
  then the least recently active open conversations are cut to their latest
  message; one open conversation holds at most ``history_hold_bytes`` of
  messages. Dropped messages still count but are no longer replayed.
* Every field a client names has a length limit (:data:`.rules.LIMITS`),
  and a ``queue status update`` lists agents and entries within
  ``status_max_bytes`` (its counts always cover everyone).
* Agents are ``available`` when connected and below ``max_chats_per_agent``,
  ``busy`` at the limit and ``unavailable`` while disconnected (grace).
  ``next_round_robin`` marks the available agent whose turn is next (none
  when routing is manual or nobody is available).

Error codes (:class:`~simulator.protocol.ErrorCode`; those the engine sends,
with their ``user_message``, in :data:`ERROR_CODES`), sent to the offender
alone in an envelope ``{"type": "event", "error": {...}}``:

``not_connected``, ``session_replaced``, ``resume_failed``, ``identity_in_use``,
``unsupported_frame``, ``forbidden_for_role``, ``missing_field``,
``field_too_long`` (a field a client names over its :data:`.rules.LIMITS`),
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

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from ..errors import FrameError
from ..protocol import ConversationEventQueuePosition, ErrorCode, EventType, Frame, FrameType
from .base import Close, Delivery, EngineConfig, Identity, Routing, new_resume_token
from .conversation import Client, ConnId, Role, State
from .queries import QueriesMixin
from .relay import RelayMixin
from .restore import RestoreMixin
from .rules import (
    ERROR_CODES,
    RULES,
    STATE_REFUSALS,
    Kind,
    Refused,
    clip,
    error_frame,
    forbidden,
    not_in_state,
    unsupported,
)
from .sessions import SessionsMixin

__all__ = [
    "ERROR_CODES",
    "Close",
    "ConnId",
    "Delivery",
    "Engine",
    "EngineConfig",
    "Identity",
    "Role",
    "Routing",
]


class _Route(NamedTuple):
    """A row of :data:`.rules.RULES` with its handler bound to one engine."""

    roles: frozenset[Role]
    states: tuple[State, ...] | None
    """:attr:`.rules.Rule.states` as a tuple, the most frequent state first:
    ``in`` on a short tuple compares identities, while a set of plain
    ``Enum`` members calls ``Enum.__hash__`` in Python (6x slower)."""
    handler: Callable[..., list[Delivery]]


_STATE_ORDER = (State.ENGAGED, State.QUEUED, State.CLOSED)
_ECHO_LIMIT = 200  # a refused frame's conversation_uuid is echoed only if it could be one
_NO_CLOSES: Sequence[Close] = ()


class Engine(SessionsMixin, RelayMixin, QueriesMixin, RestoreMixin):
    """Conversations, queues and routing of the mock webchat server."""

    def __init__(
        self, config: EngineConfig, *, rng: random.Random, token_source: Callable[[], str] = new_resume_token
    ) -> None:
        super().__init__(config, rng=rng, token_source=token_source)
        self._routes: Mapping[Kind, _Route] = {
            kind: _Route(
                rule.roles,
                None if rule.states is None else tuple(sorted(rule.states, key=_STATE_ORDER.index)),
                getattr(self, rule.handler),
            )
            for kind, rule in RULES.items()
        }

    # ------------------------------------------------------------------
    # The server's API

    def start(self, now: float) -> list[Delivery]:
        """The server started; the engine itself has nothing to send (a core
        hosting simulated participants logs them in here)."""
        return []

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
        """Handle one decoded frame from ``conn``: checked against :data:`.rules.RULES`,
        then handed to the handler of its row; a refusal becomes an error frame to ``conn``."""
        client = self._conns.get(conn)
        try:
            if client is None:
                raise Refused(ErrorCode.NOT_CONNECTED, f"connection {conn} is not connected to the engine")
            return self.act(client, frame, now)
        except Refused as refusal:
            conv_uuid = frame.conversation_uuid
            echoed = conv_uuid if conv_uuid is None or len(conv_uuid) <= _ECHO_LIMIT else None
            error = error_frame(refusal.code, refusal.reason, conversation_uuid=echoed, object_id=refusal.object_id)
            return [Delivery((conn,), error)]

    def act(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Handle ``frame`` as ``client`` sent it (the websocket, or REST on its
        behalf): the checks of :data:`.rules.RULES`, then its row's handler;
        raises :class:`~simulator.errors.Refused`."""
        kind: Kind = (frame.type, frame.event_type if frame.type is FrameType.EVENT else None)
        route = self._routes.get(kind)
        if route is None:
            raise Refused(ErrorCode.UNSUPPORTED_FRAME, unsupported(kind))
        roles, states, handler = route
        if client.role not in roles:
            raise Refused(ErrorCode.FORBIDDEN_FOR_ROLE, forbidden(kind, client.role))
        if states is None:  # a frame that names no conversation
            return handler(client, frame, now)
        # The conversation it names, and the sender's place in it: refused
        # alike whether it does not exist or the sender is not in it.
        conv_uuid = frame.conversation_uuid
        if conv_uuid is None:
            raise Refused(ErrorCode.MISSING_FIELD, "conversation_uuid: required")
        conv = self._conversations.get(conv_uuid)
        member = conv.members.get(client) if conv is not None else None
        if conv is None or member is None or member.left_ms is not None:
            reason = f"conversation_uuid: you are not a participant of {clip(conv_uuid)}"
            raise Refused(ErrorCode.NOT_A_PARTICIPANT, reason, object_id=conv_uuid[:200])
        if conv.state not in states:
            reason = not_in_state(kind, client.role, conv.state, conv_uuid)
            raise Refused(STATE_REFUSALS[conv.state], reason, object_id=conv_uuid)
        return handler(conv, member, frame, now)

    def disconnect(self, conn: ConnId, now: float) -> list[Delivery]:
        """``conn`` is gone; its participant may reconnect within the grace period."""
        client = self._conns.pop(conn, None)
        if client is None:
            return []
        out: list[Delivery] = []
        self._unbind(client, now, out)
        return out

    def tick(self, now: float) -> list[Delivery]:
        """End grace periods and flush the coalesced pushes that are due."""
        out: list[Delivery] = []
        self._end_graces(now, out)
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
        best = self._next_grace_end() if self._graces else math.inf  # per frame: no call, no tuple
        for queue in self._queues.values():
            if (due := queue.pushes.due) is not None and due < best:
                best = due
            if (due := queue.status_due) is not None and due < best:
                best = due
        return None if best == math.inf else best

    def take_closes(self) -> Sequence[Close]:
        """The connections to close, decided since the last call, oldest first
        (usually none; today only session takeovers). The server calls it
        after each call above, once it has sent that call's deliveries (so a
        replaced connection gets its ``session_replaced`` before the close).
        Closes are kept until taken; a caller that never closes sockets may
        ignore them."""
        closes = self._closes
        if not closes:
            return _NO_CLOSES
        self._closes = []
        return closes

    def error_frame(self, error: FrameError, *, conversation_uuid: str | None = None) -> Frame:
        """The error frame for a frame the server could not decode."""
        return error_frame(error.code, str(error), conversation_uuid=conversation_uuid)

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
            "held": self._retention.status(self._open_count),
        }
