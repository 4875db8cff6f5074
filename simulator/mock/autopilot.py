"""Autopilot agents: simulated support agents that answer customers, sans I/O.

An :class:`AutopilotAgent` sees the frames an agent connection receives
(:meth:`~AutopilotAgent.receive`) and produces, on a schedule, the frames an
agent sends (:meth:`~AutopilotAgent.poll` at
:meth:`~AutopilotAgent.next_deadline`). It owns no socket, clock or global
randomness: ``now`` (epoch seconds) is passed in and every draw comes from the
``random.Random`` and :class:`~simulator.fake.ChatFaker` it is given, so the
same seed and the same frames at the same times give the same output.

It is a thin shell: what to say in a chat and when is decided by one
:class:`~simulator.brain.ChatBrain` per chat (see :mod:`simulator.brain`:
reading, answering in the customer's language with what the customer gave,
pushing coupons and items, closing), the brain the load generator's Locust
agents use too. The agent turns the brain's actions into frames when they are
planned and keeps them in one heap until they are due; it adds what concerns
the connection:

* **Taking chats.** With manual routing it answers ``queue new member`` (and
  the entries of a ``queue status update``) with ``engage customer`` while it
  has capacity (``max_chats``, engagements in flight included); refused
  engagements (another agent was faster) are dropped. With round-robin it
  waits for the server to assign a chat (``new conversation``), whose
  customer participant gives the brain its language, name and e-mail.
* **Recognising its own messages** (echoed as acknowledgements) and the
  customer's, whose messages it hands to the brain.
* **Ending.** It stops acting on a chat once it closed it, the customer closed
  it or left, or the server says it is not a participant any more.

:class:`AutopilotHub` hosts agents inside an :class:`~simulator.mock.engine.Engine`
without sockets: it has the engine's interface (the server's ``Core``), gives
the agents negative connection ids and keeps their traffic inside.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..brain import Action, AgentStyle, ChatBrain, Close, PushCoupon, PushItems, Read, Send, Typing, Wake
from ..errors import FrameError, SimulatorError
from ..fake import ChatFaker
from ..pace import (
    AGENT_TIMINGS,
    DEFAULT_COUPON_PROBABILITY,
    DEFAULT_EXCHANGES,
    DEFAULT_ITEM_PROBABILITY,
    DEFAULT_MAX_CHATS,
    DEFAULT_PACE,
    Pace,
    Timing,
)
from ..protocol import (
    ConversationEventAddCoupon,
    ConversationEventAddItem,
    ConversationEventReadMessage,
    ConversationEventTyping,
    ConversationMessage,
    ConversationParticipant,
    ConversationWebchatQueueStatusQueueEntry,
    EventType,
    Frame,
    FrameType,
)
from .engine import Close as EngineClose
from .engine import ConnId, Delivery, Engine, Identity, Role

__all__ = ["TIMINGS", "AutopilotAgent", "AutopilotHub", "Pace", "Timing"]

TIMINGS: Mapping[Pace, Timing] = AGENT_TIMINGS
"""The agents' timings per pace (:data:`simulator.pace.AGENT_TIMINGS`)."""

# Error codes that mean "this chat is over for you".
_GONE = frozenset({"conversation_closed", "not_a_participant"})

# An outbox entry: due, tie-breaker, conversation (None: engage), frame to send
# (None: a wake-up), the brain's action (None: engage).
_Entry = tuple[float, int, str | None, Frame | None, Action | None]


@dataclass(slots=True, eq=False)
class _Chat:
    """What an agent remembers about one of its conversations."""

    uuid: str
    brain: ChatBrain
    customer_arn: str | None = None
    sent: set[str] = field(default_factory=set)  # client message ids of our messages


class AutopilotAgent:
    """A simulated agent (see the module documentation for its behaviour)."""

    def __init__(
        self,
        *,
        name: str,
        queues: tuple[str, ...],
        faker: ChatFaker,
        rng: random.Random,
        pace: Pace | str = DEFAULT_PACE,
        manual_routing: bool = False,
        max_chats: int = DEFAULT_MAX_CHATS,
        exchanges: tuple[int, int] = DEFAULT_EXCHANGES,
        coupon_probability: float = DEFAULT_COUPON_PROBABILITY,
        item_probability: float = DEFAULT_ITEM_PROBABILITY,
    ) -> None:
        if max_chats < 1:
            raise ValueError(f"max_chats must be at least 1, got {max_chats}")
        self.name = name
        self.queues = queues
        self.faker = faker
        self.rng = rng
        self.pace = Pace(pace)
        self.timing = TIMINGS[self.pace]
        self.manual_routing = manual_routing
        self.max_chats = max_chats
        self.exchanges = exchanges
        self.coupon_probability = coupon_probability
        self.item_probability = item_probability
        self.first_name = name.split(" ", 1)[0]
        self.style = AgentStyle(
            agent_name=self.first_name,
            timing=self.timing,
            exchanges=exchanges,
            coupon_probability=coupon_probability,
            item_probability=item_probability,
        )
        self.identity = Identity(role=Role.AGENT, name=name, queues=queues, autopilot=True)
        self.arn: str | None = None
        """This agent's participant ARN, once the server has told it."""
        self.chats: dict[str, _Chat] = {}
        self._engaging: dict[str, ConversationWebchatQueueStatusQueueEntry] = {}  # queue uuid -> entry
        self._tried: dict[str, str | None] = {}  # queue uuids engaged or refused -> queue name
        self._outbox: list[_Entry] = []
        self._seq = itertools.count()
        self.chats_closed = 0
        self.extra_think: Callable[[], float] | None = None
        """Extra think time (seconds) drawn before each planned action (the
        ``slow-agent`` fault, :mod:`.faults`); ``None``: none."""

    # ------------------------------------------------------------------
    # The sans-I/O interface

    def receive(self, frame: Frame, now: float) -> None:
        """React to one frame delivered to this agent's connection."""
        if frame.error is not None:
            self._on_error(frame)
        elif frame.type is FrameType.MESSAGE:
            self._on_message(frame, now)
        elif frame.type is FrameType.EVENT:
            event = frame.event_type
            if event is EventType.NEW_CONVERSATION:
                self._on_new_conversation(frame, now)
            elif event is EventType.PARTICIPANT_JOIN:
                self._learn_arn(frame.event_participant_join_participant)
            elif event is EventType.PARTICIPANT_LEFT:
                self._on_left(frame)
            elif event is EventType.CONVERSATION_CLOSED:
                self._finish(frame.conversation_uuid)
            elif event is EventType.QUEUE_NEW_MEMBER and frame.event_queue_new_member is not None:
                self._consider(frame.event_queue_new_member, now)
            elif event is EventType.QUEUE_STATUS_UPDATE and frame.event_queue_status_update is not None:
                self._on_status(frame, now)

    def poll(self, now: float) -> list[Frame]:
        """The frames due at or before ``now``, in sending order."""
        out: list[Frame] = []
        outbox = self._outbox
        while outbox and outbox[0][0] <= now:
            due, _, conversation, frame, action = heapq.heappop(outbox)
            chat = self.chats.get(conversation) if conversation is not None else None
            if conversation is not None and chat is None:
                continue  # the chat ended meanwhile
            if frame is not None:
                out.append(frame)
            if chat is not None and action is not None:
                more = chat.brain.done(action, due)
                if chat.brain.over:
                    self._finish(chat.uuid)
                else:
                    self._plan(chat, more)
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`poll` next has something to send (``None``: nothing planned)."""
        outbox = self._outbox
        while outbox and outbox[0][2] is not None and outbox[0][2] not in self.chats:
            heapq.heappop(outbox)
        return outbox[0][0] if outbox else None

    @property
    def busy(self) -> int:
        """Chats in progress plus engagements in flight."""
        return len(self.chats) + len(self._engaging)

    # ------------------------------------------------------------------
    # Scheduling: the brain's actions become frames when they are planned

    def _at(self, when: float, conversation: str | None, frame: Frame | None, action: Action | None = None) -> None:
        heapq.heappush(self._outbox, (when, next(self._seq), conversation, frame, action))

    def _plan(self, chat: _Chat, actions: Iterable[Action]) -> None:
        extra, late = self.extra_think, 0.0
        for action in actions:
            if isinstance(action, Send):
                chat.sent.add(action.client_message_id)
            if extra is not None:
                late += extra()  # cumulated: the actions keep their order
            self._at(action.at + late, chat.uuid, self._frame(chat.uuid, action), action)

    def _frame(self, uuid: str, action: Action) -> Frame | None:
        """The frame that carries ``action`` out (``None`` for a wake-up)."""
        if isinstance(action, Typing):
            typing = ConversationEventTyping(author_conversation_participant_name=self.name, value=action.text)
            return _event(EventType.TYPING, uuid, typing)
        if isinstance(action, Send):
            message = ConversationMessage(
                body=action.text, client_message_id=action.client_message_id, language_iso_code=action.language
            )
            return Frame(type=FrameType.MESSAGE, conversation_uuid=uuid, message=message)
        if isinstance(action, Read):
            read = ConversationEventReadMessage(conversation_message_uuid=action.message_id)
            return _event(EventType.READ_MESSAGE, uuid, read)
        if isinstance(action, PushCoupon):
            coupon = ConversationEventAddCoupon(agent_arn=self.arn, agent_name=self.name, coupon_code=action.code)
            return _event(EventType.ADD_COUPON, uuid, coupon)
        if isinstance(action, PushItems):
            add = ConversationEventAddItem(agent_arn=self.arn, agent_name=self.name, items=list(action.items))
            return _event(EventType.ADD_ITEM, uuid, add)
        if isinstance(action, Close):
            return _event(EventType.CONVERSATION_CLOSED, uuid)
        assert isinstance(action, Wake)
        return None

    def _draw(self, bounds: tuple[float, float]) -> float:
        return self.timing.draw(bounds, self.rng)

    # ------------------------------------------------------------------
    # Taking chats

    def _consider(self, entry: ConversationWebchatQueueStatusQueueEntry, now: float) -> None:
        """Manual routing: engage a waiting customer if there is room."""
        queue_uuid = entry.conversation_webchat_queue_uuid
        if not self.manual_routing or queue_uuid is None or queue_uuid in self._tried:
            return
        if self.queues and entry.queue_name is not None and entry.queue_name not in self.queues:
            return
        if self.busy >= self.max_chats:
            return
        self._tried[queue_uuid] = entry.queue_name
        self._engaging[queue_uuid] = entry
        request = ConversationWebchatQueueStatusQueueEntry(conversation_webchat_queue_uuid=queue_uuid)
        self._at(now + self._draw(self.timing.engage), None, _event(EventType.ENGAGE_CUSTOMER, None, request))

    def _on_status(self, frame: Frame, now: float) -> None:
        status = frame.event_queue_status_update
        if not self.manual_routing or status is None:
            return
        entries = status.queue_entries or []
        listed = {e.conversation_webchat_queue_uuid for e in entries}
        for queue_uuid, queue_name in list(self._tried.items()):  # forget entries that left the queue
            if queue_name == status.queue_name and queue_uuid not in listed and queue_uuid not in self._engaging:
                del self._tried[queue_uuid]
        for entry in entries:
            self._consider(entry, now)

    def _on_new_conversation(self, frame: Frame, now: float) -> None:
        summary = frame.event_new_conversation
        uuid = frame.conversation_uuid or (summary.conversation_uuid if summary is not None else None)
        if uuid is None or uuid in self.chats or summary is None or summary.closed:
            return
        participants = summary.participants or []
        for participant in participants:
            if participant.conversation_participant_name == self.name:
                self._learn_arn(participant)
        customer = next((p for p in participants if not self._is_me(p)), None)
        brain = ChatBrain(
            self.style,
            faker=self.faker,
            rng=self.rng,
            language=customer.language_iso_code if customer else None,
            customer_name=customer.conversation_participant_name if customer else None,
            customer_email=customer.email if customer else None,
        )
        chat = _Chat(uuid=uuid, brain=brain)
        if customer is not None:
            chat.customer_arn = customer.conversation_participant_arn
            for queue_uuid, entry in list(self._engaging.items()):
                if entry.conversation_participant_arn in (None, chat.customer_arn):
                    del self._engaging[queue_uuid]
                    break
        self.chats[uuid] = chat
        self._plan(chat, brain.assigned(now))

    def _learn_arn(self, participant: ConversationParticipant | None) -> None:
        if participant is not None and participant.conversation_participant_name == self.name:
            self.arn = participant.conversation_participant_arn or self.arn

    def _is_me(self, participant: ConversationParticipant) -> bool:
        if self.arn is not None and participant.conversation_participant_arn is not None:
            return participant.conversation_participant_arn == self.arn
        return participant.conversation_participant_name == self.name

    # ------------------------------------------------------------------
    # Talking

    def _on_message(self, frame: Frame, now: float) -> None:
        message = frame.message
        chat = self.chats.get(frame.conversation_uuid or "")
        if message is None or chat is None:
            return
        if message.client_message_id in chat.sent:  # our own message, echoed as the acknowledgement
            self.arn = message.author_conversation_participant_arn or self.arn
            return
        author = message.author_conversation_participant_arn
        if author is not None and author == self.arn:
            return
        actions = chat.brain.customer_message(
            message.body or "",
            now,
            message_id=message.conversation_message_uuid,
            language=message.language_iso_code,
        )
        if chat.customer_arn is None:
            chat.customer_arn = author
        self._plan(chat, actions)

    # ------------------------------------------------------------------
    # Ending

    def _on_left(self, frame: Frame) -> None:
        chat = self.chats.get(frame.conversation_uuid or "")
        participant = frame.event_participant_left_participant
        if chat is None or participant is None:
            return
        if self._is_me(participant) or participant.conversation_participant_arn == chat.customer_arn:
            self._finish(chat.uuid)

    def _on_error(self, frame: Frame) -> None:
        error = frame.error
        assert error is not None
        object_id = error.object_id
        if object_id is not None and object_id in self._engaging:
            del self._engaging[object_id]
            if error.error_code == "agent_at_capacity":
                del self._tried[object_id]  # try again when there is room
        if error.error_code in _GONE:
            self._finish(frame.conversation_uuid or object_id)

    def _finish(self, uuid: str | None) -> None:
        """Stop acting on a chat and drop what was planned for it."""
        chat = self.chats.pop(uuid, None) if uuid is not None else None
        if chat is None:
            return
        chat.brain.end()
        self.chats_closed += 1
        self._outbox = [entry for entry in self._outbox if entry[2] != uuid]
        heapq.heapify(self._outbox)


def _event(event_type: EventType, conversation_uuid: str | None, payload: Any = None, **fields: Any) -> Frame:
    """An event frame with its payload under the key its event type uses."""
    keys = {
        EventType.TYPING: "event_typing",
        EventType.READ_MESSAGE: "event_read_message",
        EventType.ADD_COUPON: "event_add_coupon",
        EventType.ADD_ITEM: "event_add_item",
        EventType.ENGAGE_CUSTOMER: "event_engage_customer",
    }
    if payload is not None:
        fields[keys[event_type]] = payload
    return Frame(type=FrameType.EVENT, event_type=event_type, conversation_uuid=conversation_uuid, **fields)


# ---------------------------------------------------------------------------
# Hosting agents inside the engine


class AutopilotHub:
    """An :class:`~simulator.mock.engine.Engine` with autopilot agents inside.

    It offers the engine's interface (``connect``, ``receive``, ``disconnect``,
    ``tick``, ``next_deadline``, ``error_frame``, ``status``), so the server
    can use it in place of the engine. The agents get connection ids
    ``first_conn``, ``first_conn - 1``, … (negative by default, so they never
    collide with real ones); deliveries to them are handed to them, the frames
    they send are fed to the engine, and every list returned names only real
    connections (empty deliveries are dropped). After each call the hub runs
    the agents until none has a frame due.
    """

    def __init__(self, engine: Engine, bots: Sequence[AutopilotAgent], *, first_conn: int = -1) -> None:
        self.engine = engine
        self.bots: dict[ConnId, AutopilotAgent] = {first_conn - i: bot for i, bot in enumerate(bots)}
        # Each agent's next deadline, in a heap (stale entries are skipped), so
        # a frame costs O(log agents), not a scan of every agent.
        self._heap: list[tuple[float, ConnId]] = []
        self._scheduled: dict[ConnId, float] = {}
        names = [bot.name for bot in bots]
        if len(set(names)) != len(names):
            raise ValueError("autopilot agents need distinct names (the engine identifies agents by name)")

    def start(self, now: float) -> list[Delivery]:
        """Log every agent in to the engine."""
        out: list[Delivery] = []
        for conn, bot in self.bots.items():
            out += self._route(self.engine.connect(conn, bot.identity, now), now)
        return out + self._run(now)

    def connect(self, conn: ConnId, identity: Identity, now: float) -> list[Delivery]:
        """A real connection opened (see :meth:`Engine.connect`)."""
        self._check_real(conn)
        return self._route(self.engine.connect(conn, identity, now), now) + self._run(now)

    def receive(self, conn: ConnId, frame: Frame, now: float) -> list[Delivery]:
        """A frame from a real connection (see :meth:`Engine.receive`)."""
        self._check_real(conn)
        return self._route(self.engine.receive(conn, frame, now), now) + self._run(now)

    def disconnect(self, conn: ConnId, now: float) -> list[Delivery]:
        """A real connection closed (see :meth:`Engine.disconnect`)."""
        self._check_real(conn)
        return self._route(self.engine.disconnect(conn, now), now) + self._run(now)

    def tick(self, now: float) -> list[Delivery]:
        """The engine's timers, then every agent frame due by ``now``."""
        return self._route(self.engine.tick(now), now) + self._run(now)

    def next_deadline(self) -> float | None:
        """The earliest of the engine's and the agents' deadlines."""
        heap, scheduled = self._heap, self._scheduled
        while heap and scheduled.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)  # stale
        engine = self.engine.next_deadline()
        if not heap:
            return engine
        return heap[0][0] if engine is None else min(engine, heap[0][0])

    def error_frame(self, error: FrameError, *, conversation_uuid: str | None = None) -> Frame:
        """See :meth:`Engine.error_frame`."""
        return self.engine.error_frame(error, conversation_uuid=conversation_uuid)

    def take_closes(self) -> Sequence[EngineClose]:
        """The engine's close instructions (see :meth:`Engine.take_closes`);
        a bot's connection has no socket, so the shell skips those."""
        return self.engine.take_closes()

    def status(self) -> dict[str, Any]:
        """The engine's status plus the agents' chats."""
        bots = {bot.name: {"chats": len(bot.chats), "closed": bot.chats_closed} for bot in self.bots.values()}
        return {**self.engine.status(), "autopilot": bots}

    # Internals

    def _check_real(self, conn: ConnId) -> None:
        if conn in self.bots:
            raise ValueError(f"connection id {conn} belongs to an autopilot agent")

    def _schedule(self, conn: ConnId, bot: AutopilotAgent) -> None:
        deadline = bot.next_deadline()
        if deadline is None:
            self._scheduled.pop(conn, None)
        elif self._scheduled.get(conn) != deadline:
            self._scheduled[conn] = deadline
            heapq.heappush(self._heap, (deadline, conn))

    def _route(self, deliveries: Iterable[Delivery], now: float) -> list[Delivery]:
        """Hand the agents their frames; keep the rest for real connections."""
        out: list[Delivery] = []
        bots = self.bots
        for recipients, frame in deliveries:
            real = tuple(conn for conn in recipients if conn not in bots)
            if len(real) != len(recipients):
                for conn in recipients:
                    if (bot := bots.get(conn)) is not None:
                        bot.receive(frame, now)
                        self._schedule(conn, bot)
            if real:
                out.append(Delivery(real, frame))
        return out

    def _run(self, now: float, *, limit: int = 100_000) -> list[Delivery]:
        """Feed the agents' due frames to the engine until none is due."""
        out: list[Delivery] = []
        heap, scheduled = self._heap, self._scheduled
        for _ in range(limit):
            if not heap or heap[0][0] > now:
                return out
            deadline, conn = heapq.heappop(heap)
            if scheduled.get(conn) != deadline:
                continue  # stale entry
            del scheduled[conn]
            bot = self.bots[conn]
            for frame in bot.poll(now):
                out += self._route(self.engine.receive(conn, frame, now), now)
            self._schedule(conn, bot)
        raise SimulatorError(f"autopilot agents still busy after {limit} rounds at {now}")
