"""Autopilot agents: simulated support agents that answer customers, sans I/O.

An :class:`AutopilotAgent` sees the frames an agent connection receives
(:meth:`~AutopilotAgent.receive`) and produces, on a schedule, the frames an
agent sends (:meth:`~AutopilotAgent.poll` at
:meth:`~AutopilotAgent.next_deadline`). It owns no socket, clock or global
randomness: ``now`` (epoch seconds) is passed in and every draw comes from the
``random.Random`` and :class:`~simulator.fake.ChatFaker` it is given, so the
same seed and the same frames at the same times give the same output.

:class:`AutopilotHub` hosts agents inside an :class:`~simulator.mock.engine.Engine`
without sockets: it has the engine's interface (the server's ``Core``), gives
the agents negative connection ids and keeps their traffic inside.

What an agent does in one chat:

1. **Taking it.** With manual routing it answers ``queue new member`` (and the
   entries of a ``queue status update``) with ``engage customer`` while it has
   capacity (``max_chats``, engagements in flight included); refused
   engagements (another agent was faster) are dropped. With round-robin it
   waits for the server to assign a chat (``new conversation``).
2. **Reading.** Each new customer message (the question is replayed as the
   first one) gets a ``read message`` after a short delay.
3. **Answering.** After reading and thinking it sends ``typing`` frames
   whose ``value`` is the text typed so far, for a time proportional to the
   reply's length (capped: :attr:`Timing.max_typing`), then the ``message``.
   No ``typing`` with an empty value is sent: the message itself ends the
   typing. The first answer greets and answers the question; the topic is
   ``ChatFaker.topic_of`` of the first customer message, the language the
   customer's (``language_iso_code`` of its participant, or of its latest
   message). Answers repeat what the customer gave (``ChatFaker.extract_slots``
   of each message: the order number, product, e-mail address, tracking
   number, card digits, size, colour; the e-mail of the customer's
   participant too) rather than inventing other values, and are drawn among
   the templates that mention what the messages being answered gave, when
   one does ("Where is my order #48213?" gets an answer about order 48213).
   Messages that arrive while an answer is being typed are answered together
   by one more answer. A chat started without any message gets a greeting
   alone.
4. **Pushing.** In a coupons chat it pushes ``add coupon`` after its first
   answer with probability ``coupon_probability`` (an answer that mentions a
   code mentions that one); in a product chat ``add item`` with probability
   ``item_probability``.
5. **Closing.** When the customer says goodbye (``ChatFaker.is_goodbye``,
   once the agent has answered something: "thanks in advance" in a question
   is no goodbye) or writes again after ``exchanges`` answers (drawn per
   chat), the agent says goodbye, then sends ``conversation closed``. At the
   human pace it also closes a chat whose customer stays silent for two
   minutes after the last answer. It stops acting on a chat once it is
   closed, the customer left, or the server says it is not a participant any
   more.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..errors import FrameError, SimulatorError
from ..fake import ChatFaker, Topic
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
from .engine import ConnId, Delivery, Engine, Identity, Role

__all__ = ["TIMINGS", "AutopilotAgent", "AutopilotHub", "Pace", "Timing"]


class Pace(StrEnum):
    """How fast an autopilot agent acts."""

    HUMAN = "human"
    """Seconds: reads in 0.5–2 s, thinks 1–4 s, types 5–8 characters per second."""
    FAST = "fast"
    """Milliseconds: for tests and load generation."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """Delays of one pace, in seconds; ``(low, high)`` pairs are drawn uniformly."""

    read: tuple[float, float]
    """From a customer message to its ``read message``."""
    think: tuple[float, float]
    """From reading to starting to type."""
    chars_per_second: tuple[float, float]
    """Typing speed, drawn per message."""
    max_typing: float
    """Longest typing time of one message."""
    typing_every: tuple[float, float]
    """Between two ``typing`` frames of one message."""
    engage: tuple[float, float]
    """From ``queue new member`` to ``engage customer`` (manual routing)."""
    push: tuple[float, float]
    """From the first answer to ``add coupon`` / ``add item``."""
    close: tuple[float, float]
    """From the goodbye to ``conversation closed``."""
    greet_alone: float
    """A chat with no customer message this long after joining gets a greeting."""
    idle_close: float | None
    """Close a chat whose ``exchanges`` are done and whose customer is silent
    this long after the last answer (``None``: never)."""


TIMINGS: Mapping[Pace, Timing] = {
    Pace.HUMAN: Timing(
        read=(0.5, 2.0),
        think=(1.0, 4.0),
        chars_per_second=(5.0, 8.0),
        max_typing=45.0,
        typing_every=(1.5, 3.0),
        engage=(1.0, 3.0),
        push=(1.0, 3.0),
        close=(1.0, 3.0),
        greet_alone=5.0,
        idle_close=120.0,
    ),
    Pace.FAST: Timing(
        read=(0.001, 0.005),
        think=(0.002, 0.010),
        chars_per_second=(20_000.0, 40_000.0),
        max_typing=0.02,
        typing_every=(1.0, 1.0),
        engage=(0.001, 0.005),
        push=(0.001, 0.003),
        close=(0.001, 0.005),
        greet_alone=0.05,
        idle_close=None,
    ),
}

# Error codes that mean "this chat is over for you".
_GONE = frozenset({"conversation_closed", "not_a_participant"})

_After = Callable[[float], None]


@dataclass(slots=True, eq=False)
class _Chat:
    """What an agent remembers about one of its conversations."""

    uuid: str
    exchanges: int
    language: str
    customer_name: str | None = None
    customer_arn: str | None = None
    customer_email: str | None = None
    topic: Topic | None = None
    given: dict[str, str] = field(default_factory=dict)  # slot values the customer gave, latest wins
    fresh: set[str] = field(default_factory=set)  # slots given by the messages not answered yet
    greeted: bool = False
    answers: int = 0
    typing: bool = False  # an answer is planned and not sent yet
    unanswered: str | None = None  # last customer text that arrived while typing
    closing: bool = False
    coupon: str | None = None
    push_items: bool = False
    pushed: bool = False
    silence: int = 0  # bumped by every customer message (invalidates idle timers)
    seen: set[str] = field(default_factory=set)
    sent: set[str] = field(default_factory=set)


class AutopilotAgent:
    """A simulated agent (see the module documentation for its behaviour)."""

    def __init__(
        self,
        *,
        name: str,
        queues: tuple[str, ...],
        faker: ChatFaker,
        rng: random.Random,
        pace: Pace = Pace.HUMAN,
        manual_routing: bool = False,
        max_chats: int = 3,
        exchanges: tuple[int, int] = (2, 5),
        coupon_probability: float = 0.2,
        item_probability: float = 0.2,
    ) -> None:
        if max_chats < 1:
            raise ValueError(f"max_chats must be at least 1, got {max_chats}")
        if not 1 <= exchanges[0] <= exchanges[1]:
            raise ValueError(f"exchanges must be (low, high) with 1 <= low <= high, got {exchanges}")
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
        self.identity = Identity(role=Role.AGENT, name=name, queues=queues)
        self.arn: str | None = None
        """This agent's participant ARN, once the server has told it."""
        self.first_name = name.split(" ", 1)[0]
        self.chats: dict[str, _Chat] = {}
        self._engaging: dict[str, ConversationWebchatQueueStatusQueueEntry] = {}  # queue uuid -> entry
        self._tried: dict[str, str | None] = {}  # queue uuids engaged or refused -> queue name
        self._outbox: list[tuple[float, int, str | None, Frame | None, _After | None]] = []
        self._seq = itertools.count()
        self.chats_closed = 0

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
            due, _, conversation, frame, after = heapq.heappop(outbox)
            if conversation is not None and conversation not in self.chats:
                continue  # the chat ended meanwhile
            if frame is not None:
                out.append(frame)
            if after is not None:
                after(due)
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
    # Scheduling

    def _at(self, when: float, conversation: str | None, frame: Frame | None, after: _After | None = None) -> None:
        heapq.heappush(self._outbox, (when, next(self._seq), conversation, frame, after))

    def _draw(self, bounds: tuple[float, float]) -> float:
        low, high = bounds
        return self.rng.uniform(low, high)

    def _type(self, chat: _Chat, text: str, start: float, after: _After | None = None) -> float:
        """Plan ``typing`` frames then the message; return when it is sent."""
        timing = self.timing
        begin = start + self._draw(timing.think)
        duration = min(timing.max_typing, len(text) / self._draw(timing.chars_per_second))
        uuid = chat.uuid
        moment = begin
        while moment < begin + duration:
            typed = max(1, round(len(text) * (moment - begin) / duration)) if duration > 0 else len(text)
            typing = ConversationEventTyping(author_conversation_participant_name=self.name, value=text[:typed])
            self._at(moment, uuid, _event(EventType.TYPING, uuid, event_typing=typing))
            moment += self._draw(timing.typing_every)
        client_id = self.faker.client_message_id()
        chat.sent.add(client_id)
        message = ConversationMessage(body=text, client_message_id=client_id, language_iso_code=chat.language)
        sent_at = begin + duration
        self._at(sent_at, uuid, Frame(type=FrameType.MESSAGE, conversation_uuid=uuid, message=message), after)
        return sent_at

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
        chat = _Chat(
            uuid=uuid,
            exchanges=self.rng.randint(*self.exchanges),
            language=self.faker.language_for(customer.language_iso_code if customer else None),
        )
        if customer is not None:
            chat.customer_arn = customer.conversation_participant_arn
            name = customer.conversation_participant_name
            chat.customer_name = name.split(" ", 1)[0] if name else None
            chat.customer_email = customer.email
            for queue_uuid, entry in list(self._engaging.items()):
                if entry.conversation_participant_arn in (None, chat.customer_arn):
                    del self._engaging[queue_uuid]
                    break
        self.chats[uuid] = chat
        self._at(now + self.timing.greet_alone, uuid, None, lambda at: self._greet_if_silent(chat, at))

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
        if message.conversation_message_uuid is not None:
            if message.conversation_message_uuid in chat.seen:
                return  # replayed
            chat.seen.add(message.conversation_message_uuid)
            read = ConversationEventReadMessage(conversation_message_uuid=message.conversation_message_uuid)
            read_at = now + self._draw(self.timing.read)
            self._at(read_at, chat.uuid, _event(EventType.READ_MESSAGE, chat.uuid, read))
        else:
            read_at = now
        if chat.customer_arn is None:
            chat.customer_arn = author
        if message.language_iso_code:
            chat.language = self.faker.language_for(message.language_iso_code)
        chat.silence += 1
        if chat.closing:
            return
        text = message.body or ""
        if chat.topic is None:
            self._choose_topic(chat, text)
        given = self.faker.extract_slots(text, chat.language)
        chat.given.update(given)
        chat.fresh.update(given)
        if chat.typing:
            chat.unanswered = text
            return
        self._respond(chat, text, read_at)

    def _choose_topic(self, chat: _Chat, text: str) -> None:
        topic = chat.topic = self.faker.topic_of(text)
        if topic is Topic.COUPONS and self.rng.random() < self.coupon_probability:
            chat.coupon = self.faker.coupon_code()
        elif topic is Topic.PRODUCT and self.rng.random() < self.item_probability:
            chat.push_items = True

    def _respond(self, chat: _Chat, text: str, start: float) -> None:
        if chat.answers >= chat.exchanges or (chat.answers > 0 and self.faker.is_goodbye(text)):
            self._say_goodbye(chat, start)
            return
        slots = {"email": chat.customer_email} if chat.customer_email else {}
        slots.update(chat.given)
        if chat.coupon:
            slots["coupon"] = chat.coupon
        prefer, chat.fresh = chat.fresh, set()
        answer = self.faker.agent_reply(
            chat.topic or Topic.PRODUCT,
            chat.language,
            first=not chat.greeted,
            agent_name=self.first_name,
            customer_name=chat.customer_name,
            slots=slots,
            prefer=prefer,
        )
        chat.greeted = True
        chat.answers += 1
        chat.typing = True
        sent_at = self._type(chat, answer, start, lambda at: self._answered(chat, at))
        if not chat.pushed and (chat.coupon or chat.push_items):
            chat.pushed = True
            push_at = sent_at + self._draw(self.timing.push)
            if chat.coupon:
                coupon = ConversationEventAddCoupon(agent_arn=self.arn, agent_name=self.name, coupon_code=chat.coupon)
                self._at(push_at, chat.uuid, _event(EventType.ADD_COUPON, chat.uuid, coupon))
            else:
                items = self.faker.cart_items(language=chat.language)
                add = ConversationEventAddItem(agent_arn=self.arn, agent_name=self.name, items=items)
                self._at(push_at, chat.uuid, _event(EventType.ADD_ITEM, chat.uuid, add))

    def _answered(self, chat: _Chat, at: float) -> None:
        """An answer was sent: answer what came meanwhile, or wait (and maybe close when idle)."""
        chat.typing = False
        if chat.closing:
            return
        if chat.unanswered is not None:
            text, chat.unanswered = chat.unanswered, None
            self._respond(chat, text, at)
            return
        idle = self.timing.idle_close
        if idle is not None and chat.answers >= chat.exchanges:
            silence = chat.silence
            self._at(at + idle, chat.uuid, None, lambda when: self._close_if_silent(chat, silence, when))

    def _greet_if_silent(self, chat: _Chat, at: float) -> None:
        if chat.greeted or chat.typing or chat.closing:
            return
        chat.greeted = True
        chat.typing = True
        greeting = self.faker.greeting(chat.language, agent_name=self.first_name, customer_name=chat.customer_name)
        self._type(chat, greeting, at, lambda when: self._answered(chat, when))

    def _close_if_silent(self, chat: _Chat, silence: int, at: float) -> None:
        if chat.silence == silence and not chat.typing and not chat.closing:
            self._say_goodbye(chat, at)

    def _say_goodbye(self, chat: _Chat, start: float) -> None:
        chat.closing = True
        goodbye = self.faker.goodbye(chat.language, agent=True, name=chat.customer_name)
        sent_at = self._type(chat, goodbye, start)
        close_at = sent_at + self._draw(self.timing.close)
        close = _event(EventType.CONVERSATION_CLOSED, chat.uuid)
        self._at(close_at, chat.uuid, close, lambda _: self._finish(chat.uuid))

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
        if uuid is None or self.chats.pop(uuid, None) is None:
            return
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
