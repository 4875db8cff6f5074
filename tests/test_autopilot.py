"""Autopilot agents hosted in the engine, driven by a scripted customer and a
fake clock: a whole chat, manual routing, pushes, closing rules, determinism,
pace, and validity of every frame the agents send."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from simulator.fake import PHRASEBOOKS, ChatFaker, Persona, Topic
from simulator.mock.autopilot import TIMINGS, AutopilotAgent, AutopilotHub, Pace
from simulator.mock.engine import ConnId, Delivery, Engine, EngineConfig, Identity, Role, Routing
from simulator.protocol import (
    ConversationEventReadMessage,
    ConversationMessage,
    EventType,
    Frame,
    FrameType,
    encode,
)
from tests.engine_harness import seeded_tokens
from tests.phrasebooks import from_book as _from_book
from tests.sdk import validate_frame_bytes

T0 = 1_800_000_000.0
BOT = "Ana Autopilot"


class RecordingAgent(AutopilotAgent):
    """An autopilot agent that checks and records every frame it sends."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.emitted: list[tuple[float, Frame]] = []

    def poll(self, now: float) -> list[Frame]:
        frames = super().poll(now)
        for frame in frames:
            validate_frame_bytes(encode(frame))
            self.emitted.append((now, frame))
        return frames

    def emitted_events(self, event: EventType) -> list[tuple[float, Frame]]:
        return [(t, f) for t, f in self.emitted if f.event_type is event]

    def emitted_messages(self) -> list[tuple[float, str]]:
        return [(t, f.message.body or "") for t, f in self.emitted if f.message is not None]


def make_bot(
    seed: int = 1, *, name: str = BOT, pace: Pace = Pace.FAST, manual: bool = False, **kwargs: object
) -> RecordingAgent:
    return RecordingAgent(
        name=name,
        queues=("support",),
        faker=ChatFaker(seed),
        rng=random.Random(seed),
        pace=pace,
        manual_routing=manual,
        **kwargs,
    )


@dataclass
class Sim:
    """Engine + hub + a fake clock; collects what real connections receive."""

    bots: list[RecordingAgent]
    routing: Routing = Routing.ROUND_ROBIN
    reconnect_grace: float = 10.0
    max_chats: int = 3
    now: float = T0
    inbox: dict[ConnId, list[tuple[float, Frame]]] = field(default_factory=dict)
    conversation: dict[ConnId, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        config = EngineConfig(
            routing=self.routing, reconnect_grace=self.reconnect_grace, max_chats_per_agent=self.max_chats
        )
        self.hub = AutopilotHub(Engine(config, rng=random.Random(7), token_source=seeded_tokens(7)), self.bots)
        self.deliver(self.hub.start(self.now))

    def deliver(self, deliveries: list[Delivery]) -> None:
        for recipients, frame in deliveries:
            assert recipients, "empty delivery"
            assert all(conn > 0 for conn in recipients), "a bot connection leaked out of the hub"
            validate_frame_bytes(encode(frame))
            for conn in recipients:
                self.inbox.setdefault(conn, []).append((self.now, frame))
                if frame.event_type is EventType.NEW_CONVERSATION and frame.conversation_uuid:
                    self.conversation[conn] = frame.conversation_uuid

    # The scripted customer

    def join(self, conn: ConnId, persona: Persona) -> None:
        identity = Identity(role=Role.CUSTOMER, name=persona.name, language_iso_code=persona.language_iso_code)
        self.deliver(self.hub.connect(conn, identity, self.now))

    def start(self, conn: ConnId, fake: ChatFaker, persona: Persona, topic: Topic, *, question: bool = True) -> None:
        self.join(conn, persona)
        entry = fake.queue_entry("support", persona, topic)
        if not question:
            entry.question = None
        frame = Frame(
            type=FrameType.EVENT, event_type=EventType.WEBCHAT_START_CONVERSATION, event_engage_customer=entry
        )
        self.deliver(self.hub.receive(conn, frame, self.now))

    def say(self, conn: ConnId, fake: ChatFaker, text: str, language: str) -> None:
        message = ConversationMessage(body=text, client_message_id=fake.client_message_id(), language_iso_code=language)
        frame = Frame(type=FrameType.MESSAGE, conversation_uuid=self.conversation[conn], message=message)
        self.deliver(self.hub.receive(conn, frame, self.now))

    def read(self, conn: ConnId, message_uuid: str) -> None:
        receipt = ConversationEventReadMessage(conversation_message_uuid=message_uuid)
        frame = Frame(
            type=FrameType.EVENT,
            event_type=EventType.READ_MESSAGE,
            conversation_uuid=self.conversation[conn],
            event_read_message=receipt,
        )
        self.deliver(self.hub.receive(conn, frame, self.now))

    def close(self, conn: ConnId) -> None:
        frame = Frame(
            type=FrameType.EVENT, event_type=EventType.CONVERSATION_CLOSED, conversation_uuid=self.conversation[conn]
        )
        self.deliver(self.hub.receive(conn, frame, self.now))

    # The clock

    def advance(self, seconds: float) -> None:
        """Run every deadline up to ``now + seconds``."""
        end = self.now + seconds
        while (deadline := self.hub.next_deadline()) is not None and deadline <= end:
            self.now = max(self.now, deadline)
            self.deliver(self.hub.tick(self.now))
        self.now = end

    def wait_for(self, conn: ConnId, predicate: Callable[[Frame], bool], limit: float = 600.0) -> Frame:
        """Advance deadline by deadline until ``conn`` receives a matching frame."""
        seen = len(self.inbox.get(conn, []))
        end = self.now + limit
        while True:
            for _, frame in self.inbox.get(conn, [])[seen:]:
                if predicate(frame):
                    return frame
            seen = len(self.inbox.get(conn, []))
            deadline = self.hub.next_deadline()
            assert deadline is not None, "nothing left to happen"
            assert deadline <= end, f"nothing matching within {limit} s"
            self.now = max(self.now, deadline)
            self.deliver(self.hub.tick(self.now))

    def received(self, conn: ConnId, event: EventType | None = None) -> list[Frame]:
        return [
            f
            for _, f in self.inbox.get(conn, [])
            if (event is None and f.type is FrameType.MESSAGE) or (event is not None and f.event_type is event)
        ]


def greets_then_answers(body: str, language: str) -> bool:
    """``body`` is a greeting of that language, a space, then one of its answers."""
    return any(
        _from_book(language, "greetings", body[:i]) and _from_book(language, "replies", body[i + 1 :])
        for i, char in enumerate(body)
        if char == " "
    )


def bot_message(frame: Frame) -> bool:
    return frame.message is not None and frame.message.author_conversation_participant_name == BOT


def closed(frame: Frame) -> bool:
    return frame.event_type is EventType.CONVERSATION_CLOSED


# ---------------------------------------------------------------------------
# A whole chat


def test_chat_from_start_to_close_in_the_customers_language() -> None:
    bot = make_bot(3, pace=Pace.HUMAN)
    sim = Sim([bot])
    fake = ChatFaker(100)
    customer = fake.customer("es")
    sim.start(1, fake, customer, Topic.SHIPPING)
    question = sim.received(1)[0].message
    assert question is not None
    asked_at = sim.now

    # The bot is assigned (round-robin), reads the question, types, greets and answers in Spanish.
    joined = sim.received(1, EventType.PARTICIPANT_JOIN)
    assert joined
    assert joined[0].event_participant_join_participant is not None
    assert joined[0].event_participant_join_participant.conversation_participant_name == BOT
    first = sim.wait_for(1, bot_message).message
    assert first is not None
    assert first.language_iso_code == "es"
    assert first.body is not None
    assert greets_then_answers(first.body, "es")
    assert not greets_then_answers(first.body, "en")
    read = sim.received(1, EventType.READ_MESSAGE)
    assert [r.event_read_message.conversation_message_uuid for r in read if r.event_read_message] == [
        question.conversation_message_uuid
    ]
    # Typing first: values are growing prefixes of the message; typing took time proportional to length.
    typing = [(t, f.event_typing.value or "") for t, f in bot.emitted if f.event_typing is not None]
    assert len(typing) >= 2
    assert all(first.body.startswith(value) and value for _, value in typing)
    assert [len(v) for _, v in typing] == sorted(len(v) for _, v in typing)
    sent_at = bot.emitted_messages()[0][0]
    timing = TIMINGS[Pace.HUMAN]
    low = len(first.body) / timing.chars_per_second[1]
    high = min(timing.max_typing, len(first.body) / timing.chars_per_second[0])
    assert low - 0.01 <= sent_at - typing[0][0] <= high + 0.01
    assert sent_at - asked_at >= timing.read[0] + timing.think[0]

    # A follow-up gets an answer (no greeting) after a read receipt.
    assert first.conversation_message_uuid is not None
    sim.read(1, first.conversation_message_uuid)
    sim.advance(5)
    sim.say(1, fake, fake.customer_message(Topic.SHIPPING, "es"), "es")
    followup = sim.received(1)[-1].message
    assert followup is not None
    second = sim.wait_for(1, bot_message).message
    assert second is not None
    assert second.body is not None
    assert _from_book("es", "replies", second.body)
    assert followup.conversation_message_uuid in [
        r.event_read_message.conversation_message_uuid
        for r in sim.received(1, EventType.READ_MESSAGE)
        if r.event_read_message
    ]

    # Goodbye: the bot says goodbye first, then closes.
    sim.advance(3)
    sim.say(1, fake, fake.goodbye("es"), "es")
    goodbye = sim.wait_for(1, bot_message).message
    assert goodbye is not None
    assert goodbye.body is not None
    assert _from_book("es", "agent_goodbyes", goodbye.body)
    summary = sim.wait_for(1, closed).event_conversation_closed
    assert summary is not None
    assert summary.closed is True
    assert [f.event_type for _, f in bot.emitted][-1] is EventType.CONVERSATION_CLOSED
    assert bot.chats == {}
    # Nothing more from the bot.
    count = len(bot.emitted)
    sim.advance(600)
    assert len(bot.emitted) == count
    assert bot.next_deadline() is None


def test_bot_closes_after_its_exchanges() -> None:
    bot = make_bot(5, exchanges=(2, 2))
    sim = Sim([bot])
    fake = ChatFaker(101)
    customer = fake.customer("en")
    sim.start(1, fake, customer, Topic.ORDER_STATUS)
    sim.wait_for(1, bot_message)  # answer 1 (the question)
    sim.say(1, fake, fake.customer_message(Topic.ORDER_STATUS, "en"), "en")
    answer = sim.wait_for(1, bot_message).message  # answer 2
    assert answer is not None
    assert answer.body is not None
    assert _from_book("en", "replies", answer.body)
    sim.say(1, fake, fake.customer_message(Topic.ORDER_STATUS, "en"), "en")
    goodbye = sim.wait_for(1, bot_message).message
    assert goodbye is not None
    assert goodbye.body is not None
    assert _from_book("en", "agent_goodbyes", goodbye.body)
    sim.wait_for(1, closed)
    assert len(bot.emitted_messages()) == 3


def test_thanks_in_the_question_is_not_a_goodbye() -> None:
    bot = make_bot(4)
    sim = Sim([bot])
    fake = ChatFaker(105)
    persona = fake.customer("en")
    sim.join(1, persona)
    entry = fake.queue_entry("support", persona, Topic.ORDER_STATUS)
    entry.question = "Hi, thanks in advance! Where is my order 1234567? Tracking shows nothing."
    start = Frame(type=FrameType.EVENT, event_type=EventType.WEBCHAT_START_CONVERSATION, event_engage_customer=entry)
    sim.deliver(sim.hub.receive(1, start, sim.now))
    answer = sim.wait_for(1, bot_message).message
    assert answer is not None
    assert answer.body is not None
    assert greets_then_answers(answer.body, "en")
    sim.advance(1)
    assert not sim.received(1, EventType.CONVERSATION_CLOSED)


def test_human_pace_closes_a_silent_chat() -> None:
    bot = make_bot(6, pace=Pace.HUMAN, exchanges=(1, 1))
    sim = Sim([bot])
    fake = ChatFaker(102)
    sim.start(1, fake, fake.customer("de"), Topic.BILLING)
    sim.wait_for(1, bot_message)
    answered = sim.now
    idle = TIMINGS[Pace.HUMAN].idle_close
    assert idle is not None
    sim.wait_for(1, closed, limit=idle + 120)
    goodbye_at = bot.emitted_messages()[-1][0]
    assert goodbye_at >= answered + idle
    assert _from_book("de", "agent_goodbyes", bot.emitted_messages()[-1][1])


def test_greets_a_chat_started_without_question() -> None:
    bot = make_bot(7)
    sim = Sim([bot])
    fake = ChatFaker(103)
    sim.start(1, fake, fake.customer("fr"), Topic.SIZING, question=False)
    greeting = sim.wait_for(1, bot_message).message
    assert greeting is not None
    assert greeting.body is not None
    assert _from_book("fr", "greetings", greeting.body)
    assert sim.now - T0 >= TIMINGS[Pace.FAST].greet_alone


def test_messages_while_typing_are_answered_together() -> None:
    bot = make_bot(8, pace=Pace.HUMAN, exchanges=(5, 5))
    sim = Sim([bot])
    fake = ChatFaker(104)
    sim.start(1, fake, fake.customer("en"), Topic.RETURNS)
    sim.advance(7)  # the bot is typing its first answer (read + think <= 6 s, typing >= 10 s)
    assert bot.emitted_events(EventType.TYPING)
    assert not bot.emitted_messages()
    sim.say(1, fake, "one more thing", "en")
    sim.say(1, fake, "and another", "en")
    sim.wait_for(1, bot_message)
    sim.wait_for(1, bot_message)
    sim.advance(120)
    assert len(bot.emitted_messages()) == 2  # one answer for the question, one for both lines
    reads = bot.emitted_events(EventType.READ_MESSAGE)
    assert len(reads) == 3


# ---------------------------------------------------------------------------
# Routing


def test_manual_routing_engage() -> None:
    bot = make_bot(9, manual=True)
    sim = Sim([bot], routing=Routing.MANUAL)
    fake = ChatFaker(105)
    sim.start(1, fake, fake.customer("en"), Topic.PRODUCT)
    sim.wait_for(1, lambda f: f.event_type is EventType.PARTICIPANT_JOIN)
    engages = bot.emitted_events(EventType.ENGAGE_CUSTOMER)
    assert len(engages) == 1
    entry = engages[0][1].event_engage_customer
    assert entry is not None
    assert entry.conversation_webchat_queue_uuid is not None
    sim.wait_for(1, bot_message)
    assert bot.busy == 1


def test_manual_routing_race() -> None:
    fast, slow = make_bot(10, name=BOT, manual=True), make_bot(11, name="Bo Autopilot", manual=True)
    sim = Sim([fast, slow], routing=Routing.MANUAL)
    fake = ChatFaker(106)
    sim.start(1, fake, fake.customer("en"), Topic.COUPONS)
    sim.advance(1)
    # Both tried; one won, the other was refused and holds no capacity for it.
    assert len(fast.emitted_events(EventType.ENGAGE_CUSTOMER)) == 1
    assert len(slow.emitted_events(EventType.ENGAGE_CUSTOMER)) == 1
    assert sorted(b.busy for b in (fast, slow)) == [0, 1]


def test_manual_routing_respects_capacity_then_takes_the_backlog() -> None:
    bot = make_bot(12, manual=True, max_chats=1, exchanges=(1, 1))
    sim = Sim([bot], routing=Routing.MANUAL)
    fake = ChatFaker(107)
    sim.start(1, fake, fake.customer("en"), Topic.SHIPPING)
    sim.start(2, fake, fake.customer("en"), Topic.BILLING)
    sim.wait_for(1, bot_message)
    sim.advance(1)
    assert len(bot.emitted_events(EventType.ENGAGE_CUSTOMER)) == 1
    assert not sim.received(2, EventType.PARTICIPANT_JOIN)
    sim.say(1, fake, fake.goodbye("en"), "en")
    sim.wait_for(1, closed)
    sim.wait_for(2, lambda f: f.event_type is EventType.PARTICIPANT_JOIN, limit=10)
    assert len(bot.emitted_events(EventType.ENGAGE_CUSTOMER)) == 2


def test_customer_queued_before_the_bot_connects_is_engaged() -> None:
    engine = Engine(EngineConfig(routing=Routing.MANUAL), rng=random.Random(1))
    fake = ChatFaker(108)
    persona = fake.customer("en")
    engine.connect(1, Identity(role=Role.CUSTOMER, name=persona.name), T0)
    entry = fake.queue_entry("support", persona, Topic.SIZING)
    start = Frame(type=FrameType.EVENT, event_type=EventType.WEBCHAT_START_CONVERSATION, event_engage_customer=entry)
    engine.receive(1, start, T0)
    bot = make_bot(13, manual=True)
    hub = AutopilotHub(engine, [bot])
    hub.start(T0 + 1)
    deliveries = hub.tick(T0 + 2)
    assert bot.emitted_events(EventType.ENGAGE_CUSTOMER)
    assert any(f.event_type is EventType.PARTICIPANT_JOIN for _, f in deliveries)


# ---------------------------------------------------------------------------
# Pushes


@pytest.mark.parametrize("probability", [1.0, 0.0])
def test_coupon_push(probability: float) -> None:
    bot = make_bot(14, coupon_probability=probability, item_probability=1.0)
    sim = Sim([bot])
    fake = ChatFaker(109)
    sim.start(1, fake, fake.customer("fr"), Topic.COUPONS)
    sim.wait_for(1, bot_message)
    sim.advance(1)
    coupons = sim.received(1, EventType.ADD_COUPON)
    assert not sim.received(1, EventType.ADD_ITEM)  # items are for product questions
    if probability == 0.0:
        assert coupons == []
        return
    assert len(coupons) == 1
    payload = coupons[0].event_add_coupon
    assert payload is not None
    assert payload.agent_name == BOT
    assert payload.coupon_code
    assert re.fullmatch(r"[A-Z]+(\d{2}|-[A-Z0-9]{4})", payload.coupon_code)
    # Pushed after the answer it belongs to.
    kinds = [f.event_type or f.type for _, f in sim.inbox[1]]
    assert kinds.index(EventType.ADD_COUPON) > kinds.index(FrameType.MESSAGE, 1)


def test_item_push() -> None:
    bot = make_bot(15, item_probability=1.0, coupon_probability=1.0)
    sim = Sim([bot])
    fake = ChatFaker(110)
    sim.start(1, fake, fake.customer("de"), Topic.PRODUCT)
    sim.wait_for(1, lambda f: f.event_type is EventType.ADD_ITEM)
    assert not sim.received(1, EventType.ADD_COUPON)
    pushes = sim.received(1, EventType.ADD_ITEM)
    assert len(pushes) == 1
    payload = pushes[0].event_add_item
    assert payload is not None
    assert payload.agent_name == BOT
    assert payload.items
    for item in payload.items:
        assert item.description in PHRASEBOOKS["de"].products
        assert item.quantity is not None
        assert item.unit_cost is not None
        assert item.total_cost is not None
        assert round(item.quantity * (item.unit_cost.value or 0), 2) == item.total_cost.value


# ---------------------------------------------------------------------------
# Ending


def test_customer_closing_mid_typing_stops_the_bot() -> None:
    bot = make_bot(16, pace=Pace.HUMAN)
    sim = Sim([bot])
    fake = ChatFaker(111)
    sim.start(1, fake, fake.customer("en"), Topic.RETURNS)
    sim.advance(7)
    assert bot.emitted_events(EventType.TYPING)
    assert not bot.emitted_messages()
    sim.close(1)
    assert bot.chats == {}
    count = len(bot.emitted)
    sim.advance(300)
    assert len(bot.emitted) == count
    assert bot.next_deadline() is None


def test_customer_leaving_stops_the_bot() -> None:
    bot = make_bot(17, pace=Pace.HUMAN)
    sim = Sim([bot], reconnect_grace=0.0)
    fake = ChatFaker(112)
    sim.start(1, fake, fake.customer("en"), Topic.BILLING)
    sim.advance(2)
    assert bot.chats
    sim.deliver(sim.hub.disconnect(1, sim.now))
    assert bot.chats == {}
    count = len(bot.emitted)
    sim.advance(300)
    assert len(bot.emitted) == count


# ---------------------------------------------------------------------------
# Determinism and pace


def _scripted_run(bot_seed: int) -> list[tuple[float, ConnId, bytes]]:
    bot = make_bot(bot_seed, pace=Pace.HUMAN, coupon_probability=0.5, item_probability=0.5)
    other = make_bot(bot_seed + 1, name="Bo Autopilot", pace=Pace.HUMAN)
    sim = Sim([bot, other])
    fake = ChatFaker(113)
    for conn, topic in ((1, Topic.COUPONS), (2, Topic.PRODUCT), (3, Topic.SIZING)):
        sim.start(conn, fake, fake.customer(), topic)
        sim.advance(0.5)
    for _ in range(3):
        sim.advance(20)
        for conn in (1, 2, 3):
            language = "en"
            sim.say(conn, fake, fake.customer_message(Topic.PRODUCT, language), language)
    sim.advance(60)
    for conn in (1, 2, 3):
        sim.say(conn, fake, fake.goodbye("en"), "en")
    sim.advance(120)
    return [(t, conn, encode(f)) for conn, frames in sorted(sim.inbox.items()) for t, f in frames]


def test_determinism() -> None:
    first, again = _scripted_run(21), _scripted_run(21)
    assert first == again
    assert sum(1 for *_, raw in first if b'"conversation closed"' in raw) == 3
    assert _scripted_run(22) != first


def test_fast_pace_acts_in_milliseconds() -> None:
    bot = make_bot(23, exchanges=(3, 3))
    sim = Sim([bot])
    fake = ChatFaker(114)
    sim.start(1, fake, fake.customer("en"), Topic.SHIPPING)
    for _ in range(3):
        said = sim.now
        deadline = sim.hub.next_deadline()
        assert deadline is not None
        assert deadline - sim.now < 0.05
        reply = sim.wait_for(1, bot_message, limit=0.1)
        assert reply.message is not None
        assert sim.now - said < 0.05
        sim.say(1, fake, fake.customer_message(Topic.SHIPPING, "en"), "en")
    sim.wait_for(1, closed, limit=0.1)
    times = [t for t, _ in bot.emitted]
    assert max(times) - T0 < 0.5


def test_no_pace_answers_at_once_without_typing() -> None:
    bot = make_bot(26, pace=Pace.NONE, exchanges=(1, 1))
    sim = Sim([bot])
    fake = ChatFaker(115)
    sim.start(1, fake, fake.customer("en"), Topic.ORDER_STATUS)  # answered in the same breath
    assert [f for f in sim.received(1) if bot_message(f)]
    sim.say(1, fake, fake.customer_message(Topic.ORDER_STATUS, "en"), "en")
    assert sim.received(1, EventType.CONVERSATION_CLOSED)
    assert sim.now == T0 and all(t == T0 for t, _ in bot.emitted)
    assert not bot.emitted_events(EventType.TYPING)
    assert len(bot.emitted_messages()) == 2  # the answer, then the goodbye


def test_agent_alone_without_engine() -> None:
    """The agent is usable on its own: frames in, frames out."""
    bot = make_bot(24, pace=Pace.HUMAN)
    assert bot.identity.role is Role.AGENT
    assert bot.identity.name == BOT
    assert bot.identity.queues == ("support",)
    assert bot.next_deadline() is None
    bot.receive(Frame(type=FrameType.MESSAGE, conversation_uuid="nope", message=ConversationMessage(body="hi")), T0)
    assert bot.next_deadline() is None  # not its chat: ignored
    assert bot.poll(T0 + 1000) == []


def test_hub_rejects_bot_connection_ids_and_duplicate_names() -> None:
    bot = make_bot(25)
    hub = AutopilotHub(Engine(EngineConfig(), rng=random.Random(1)), [bot])
    with pytest.raises(ValueError, match="autopilot"):
        hub.receive(-1, Frame(type=FrameType.PING), T0)
    with pytest.raises(ValueError, match="distinct names"):
        AutopilotHub(Engine(EngineConfig(), rng=random.Random(1)), [make_bot(1), make_bot(2)])
    assert hub.status()["autopilot"] == {BOT: {"chats": 0, "closed": 0}}


def test_an_autopilot_agent_cannot_be_claimed_nor_lost_from_its_queue() -> None:
    bot = make_bot(26)
    sim = Sim([bot], reconnect_grace=5)
    fake = ChatFaker(126)
    sim.start(1, fake, fake.customer("en"), Topic.ORDER_STATUS)
    sim.say(1, fake, "my password reset code is 271828", "en")
    claims = [
        Identity(role=Role.AGENT, name=BOT),
        Identity(role=Role.AGENT, name=BOT, queues=("support",), resume_token="f" * 43),
        Identity(role=Role.AGENT, name=BOT, authenticated=True),  # even a token naming it
    ]
    for identity in claims:
        sim.deliver(sim.hub.connect(2, identity, sim.now))
        frames = [f for _, f in sim.inbox.pop(2, [])]
        assert [f.error.error_code for f in frames if f.error is not None] == ["identity_in_use"]
        assert len(frames) == 1 and b"271828" not in encode(frames[0])
        assert [close.conn for close in sim.hub.take_closes()] == [2]
        sim.deliver(sim.hub.disconnect(2, sim.now))
    sim.advance(6)  # longer than the reconnect grace
    assert sim.hub.status()["queues"]["support"]["agents"] == 1
    sim.start(3, fake, fake.customer("en"), Topic.SHIPPING)
    assert sim.received(3, EventType.PARTICIPANT_JOIN)  # served at once by the bot
    sim.wait_for(3, bot_message)


# ---------------------------------------------------------------------------
# Answers repeat what the customer gave

_GIVEN_LINES = {
    # language: (question with an order number, follow-up with an e-mail, product question)
    "en": ("Where is my order #48213?", "Reach me at ann.lee@example.org", "Is the Alpine Shell Jacket waterproof?"),
    "es": ("¿Dónde está mi pedido #48213?", "Mi correo es ann.lee@example.org", "¿La Chaqueta Alpina es impermeable?"),
    "fr": ("Où est ma commande n° 48213 ?", "E-mail : ann.lee@example.org", "La Veste Alpine est-elle imperméable ?"),
    "de": ("Wo ist meine Bestellung Nr. 48213?", "E-Mail: ann.lee@example.org", "Ist die Alpenjacke wasserdicht?"),
}


def _ask(sim: Sim, conn: ConnId, fake: ChatFaker, persona: Persona, question: str) -> None:
    sim.join(conn, persona)
    entry = fake.queue_entry("support", persona, Topic.ORDER_STATUS)
    entry.question = question
    start = Frame(type=FrameType.EVENT, event_type=EventType.WEBCHAT_START_CONVERSATION, event_engage_customer=entry)
    sim.deliver(sim.hub.receive(conn, start, sim.now))


@pytest.mark.parametrize("language", sorted(_GIVEN_LINES))
@pytest.mark.parametrize("seed", range(3))
def test_answers_repeat_the_order_email_and_product_the_customer_gave(language: str, seed: int) -> None:
    order_question, email_line, product_question = _GIVEN_LINES[language]
    bot = make_bot(30 + seed, exchanges=(5, 5))
    sim = Sim([bot])
    fake = ChatFaker(120 + seed)
    customer = fake.customer(language)
    _ask(sim, 1, fake, customer, order_question)
    first = sim.wait_for(1, bot_message).message
    assert first is not None and first.body is not None
    assert "48213" in first.body, first.body  # that order, not a random one
    assert greets_then_answers(first.body, language)
    sim.say(1, fake, email_line, language)
    second = sim.wait_for(1, bot_message).message
    assert second is not None and second.body is not None
    assert "ann.lee@example.org" in second.body, second.body  # the address just given, not the participant's
    assert _from_book(language, "replies", second.body)
    # A product question: the article named, in the customer's language.
    _ask(sim, 2, fake, fake.customer(language), product_question)
    answer = sim.wait_for(2, bot_message).message
    assert answer is not None and answer.body is not None
    assert PHRASEBOOKS[language].products[1] in answer.body, answer.body
    assert greets_then_answers(answer.body, language)


def test_an_order_given_earlier_stays_the_order_of_the_chat() -> None:
    bot = make_bot(33, exchanges=(6, 6))
    sim = Sim([bot])
    fake = ChatFaker(125)
    _ask(sim, 1, fake, fake.customer("en"), "Hi, my order number is 7654321. Where is it?")
    sim.wait_for(1, bot_message)
    for _ in range(4):
        sim.say(1, fake, fake.customer_message(Topic.ORDER_STATUS, "en"), "en")
        sim.wait_for(1, bot_message)
    orders = {number for _, body in bot.emitted_messages() for number in re.findall(r"\b\d{7}\b", body)}
    assert orders <= {"7654321"}
    assert "7654321" in bot.emitted_messages()[0][1]
