"""The agent brain without sockets, engine or gevent: events in, timed actions
out, on a fake clock; the pace/timing model and the defaults it shares."""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass, field

import pytest

from simulator.brain import (
    Action,
    Agenda,
    AgentStyle,
    ChatBrain,
    Close,
    PushCoupon,
    PushItems,
    Read,
    Say,
    Send,
    Typing,
    Wake,
    WakeReason,
)
from simulator.fake import PHRASEBOOKS, ChatFaker, Topic
from simulator.pace import (
    AGENT_TIMINGS,
    CUSTOMER_TIMINGS,
    DEFAULT_COUPON_PROBABILITY,
    DEFAULT_EXCHANGES,
    DEFAULT_ITEM_PROBABILITY,
    DEFAULT_MAX_CHATS,
    DEFAULT_PACE,
    Pace,
    Pacing,
    Timing,
)
from tests.phrasebooks import from_book as _from_book

T0 = 1_000.0


def make_brain(
    seed: int = 1,
    *,
    pace: Pace = Pace.FAST,
    language: str | None = "en",
    customer_name: str | None = "Ann Lee",
    customer_email: str | None = None,
    **style: object,
) -> ChatBrain:
    kwargs: dict[str, object] = {"agent_name": "Ana", "timing": AGENT_TIMINGS[pace], **style}
    return ChatBrain(
        AgentStyle(**kwargs),  # type: ignore[arg-type]
        faker=ChatFaker(seed),
        rng=random.Random(seed),
        language=language,
        customer_name=customer_name,
        customer_email=customer_email,
    )


@dataclass
class Driver:
    """Carries a brain's actions out instantly at their times, as a shell would."""

    brain: ChatBrain
    now: float = T0
    agenda: Agenda = field(default_factory=Agenda)
    log: list[Action] = field(default_factory=list)
    _ids: int = 0

    def assigned(self) -> list[Action]:
        return self._file(self.brain.assigned(self.now))

    def say(self, text: str, *, language: str | None = None, message_id: str | None = None) -> list[Action]:
        if message_id is None:
            self._ids += 1
            message_id = f"m{self._ids}"
        return self._file(self.brain.customer_message(text, self.now, message_id=message_id, language=language))

    def run(self, seconds: float = 1000.0) -> list[Action]:
        """Carry out every action due within ``seconds``; return them."""
        end, done = self.now + seconds, len(self.log)
        while (deadline := self.agenda.next_deadline()) is not None and deadline <= end:
            self.now = max(self.now, deadline)
            action = self.agenda.pop_due(self.now)
            assert action is not None
            self.log.append(action)
            self._file(self.brain.done(action, self.now))
        self.now = end
        return self.log[done:]

    def sends(self) -> list[Send]:
        return [a for a in self.log if isinstance(a, Send)]

    def _file(self, actions: list[Action]) -> list[Action]:
        self.agenda.extend(actions)
        return actions


def greets_then_answers(body: str, language: str) -> bool:
    return any(
        _from_book(language, "greetings", body[:i]) and _from_book(language, "replies", body[i + 1 :])
        for i, char in enumerate(body)
        if char == " "
    )


# ---------------------------------------------------------------------------
# Decisions for each event


def test_taking_a_chat_plans_only_the_greeting_check() -> None:
    brain = make_brain()
    assert brain.assigned(T0) == [Wake(at=T0 + AGENT_TIMINGS[Pace.FAST].greet_alone, reason=WakeReason.GREET)]
    assert brain.done(Wake(at=T0, reason=WakeReason.GREET), T0 + 1) != []  # silent so far: a greeting


def test_a_question_is_read_then_typed_then_answered_with_a_greeting() -> None:
    timing = AGENT_TIMINGS[Pace.HUMAN]
    brain = make_brain(3, pace=Pace.HUMAN, language="es")
    question = "¿Dónde está mi pedido? Lo esperaba ayer."
    actions = brain.customer_message(question, T0, message_id="q1")
    read, *typing, send = actions
    assert isinstance(read, Read) and read.message_id == "q1"
    assert T0 + timing.read[0] <= read.at <= T0 + timing.read[1]
    assert isinstance(send, Send) and send.kind is Say.ANSWER and send.language == "es"
    assert greets_then_answers(send.text, "es")
    assert read.at + timing.think[0] <= send.typing_from <= read.at + timing.think[1]
    # typing: growing prefixes of the text, from typing_from, at the drawn speed, every 1.5-3 s
    assert typing and all(isinstance(t, Typing) for t in typing)
    texts = [t.text for t in typing if isinstance(t, Typing)]
    assert all(send.text.startswith(t) and t for t in texts)
    assert [len(t) for t in texts] == sorted(len(t) for t in texts)
    assert typing[0].at == send.typing_from
    gaps = [b.at - a.at for a, b in itertools.pairwise(typing)]
    assert all(timing.typing_every[0] <= gap <= timing.typing_every[1] for gap in gaps)
    duration = send.at - send.typing_from
    assert len(send.text) / timing.chars_per_second[1] - 1e-9 <= duration
    assert duration <= min(timing.max_typing, len(send.text) / timing.chars_per_second[0]) + 1e-9
    assert brain.topic is Topic.ORDER_STATUS and brain.answers == 1 and brain.typing


def test_the_answer_sent_frees_the_brain_and_a_follow_up_gets_an_answer_without_greeting() -> None:
    drive = Driver(make_brain(4, exchanges=(5, 5)))
    drive.assigned()
    drive.say("Where is my order? It was due yesterday.")
    drive.run()
    assert not drive.brain.typing
    drive.say("Any news on the delivery?")
    drive.run()
    first, second = drive.sends()
    assert greets_then_answers(first.text, "en")
    assert _from_book("en", "replies", second.text)
    assert not any(isinstance(a, Send) and a.kind is Say.GREETING for a in drive.log)  # the question came in time


def test_a_chat_without_a_message_gets_a_greeting_alone() -> None:
    drive = Driver(make_brain(5, language="fr"))
    drive.assigned()
    drive.run(0.01)
    assert drive.sends() == []
    drive.run()
    (greeting,) = drive.sends()
    assert greeting.kind is Say.GREETING and _from_book("fr", "greetings", greeting.text)
    assert greeting.typing_from >= T0 + AGENT_TIMINGS[Pace.FAST].greet_alone
    drive.say("Bonjour, quelle taille choisir pour la veste ?")
    drive.run()
    answer = drive.sends()[-1]
    assert answer.kind is Say.ANSWER and _from_book("fr", "replies", answer.text)  # no second greeting


def test_messages_while_typing_are_answered_together() -> None:
    drive = Driver(make_brain(6, pace=Pace.HUMAN, exchanges=(5, 5)))
    drive.assigned()
    drive.say("I want to return the boots I bought last week, how does it work?")
    drive.run(7)  # reading, thinking, typing the first answer
    assert drive.brain.typing and drive.sends() == []
    assert [a for a in drive.say("one more thing") if not isinstance(a, Read)] == []
    assert [a for a in drive.say("and another") if not isinstance(a, Read)] == []
    drive.run(100)
    assert len(drive.sends()) == 2
    assert len([a for a in drive.log if isinstance(a, Read)]) == 3


def test_a_message_seen_before_is_ignored_and_its_language_is_followed() -> None:
    brain = make_brain(7)
    assert brain.customer_message("Hallo, wo ist meine Bestellung?", T0, message_id="x", language="de-AT")
    assert brain.language == "de"
    assert brain.customer_message("Hallo, wo ist meine Bestellung?", T0 + 1, message_id="x") == []


def test_nothing_is_planned_once_the_chat_ended() -> None:
    brain = make_brain(8)
    pending = brain.customer_message("Where is my order?", T0, message_id="a")
    brain.end()
    assert brain.over
    assert brain.customer_message("hello?", T0 + 1, message_id="b") == []
    assert all(brain.done(action, T0 + 2) == [] for action in pending)


# ---------------------------------------------------------------------------
# Closing


def test_closes_after_its_exchanges() -> None:
    drive = Driver(make_brain(9, exchanges=(2, 2)))
    assert drive.brain.exchanges == 2
    drive.assigned()
    for text in ("Where is my order?", "It still says processing.", "Can you check again?"):
        drive.say(text)
        drive.run()
    answer1, answer2, goodbye = drive.sends()
    assert [answer1.kind, answer2.kind, goodbye.kind] == [Say.ANSWER, Say.ANSWER, Say.GOODBYE]
    assert _from_book("en", "agent_goodbyes", goodbye.text)
    assert isinstance(drive.log[-1], Close) and drive.log[-1].at > goodbye.at
    assert drive.brain.over and drive.brain.closing
    assert drive.say("hello?") == []


def test_exchanges_are_drawn_per_chat_within_bounds() -> None:
    drawn = {make_brain(seed, exchanges=(2, 4)).exchanges for seed in range(40)}
    assert drawn == {2, 3, 4}


def test_goodbye_after_an_answer_is_answered_with_goodbye_then_close() -> None:
    drive = Driver(make_brain(10, language="de", exchanges=(6, 6)))
    drive.assigned()
    drive.say("Wo ist meine Bestellung?")
    drive.run()
    drive.say(ChatFaker(99).goodbye("de"))
    drive.run()
    assert [s.kind for s in drive.sends()] == [Say.ANSWER, Say.GOODBYE]
    assert _from_book("de", "agent_goodbyes", drive.sends()[-1].text)
    assert isinstance(drive.log[-1], Close)


def test_thanks_in_the_question_is_not_a_goodbye() -> None:
    drive = Driver(make_brain(11))
    drive.assigned()
    drive.say("Hi, thanks in advance! Where is my order 1234567? Tracking shows nothing.")
    drive.run()
    (answer,) = drive.sends()
    assert answer.kind is Say.ANSWER and greets_then_answers(answer.text, "en")
    assert not drive.brain.closing


def test_human_pace_closes_a_silent_chat_unless_the_customer_writes() -> None:
    idle = AGENT_TIMINGS[Pace.HUMAN].idle_close
    assert idle is not None
    drive = Driver(make_brain(12, pace=Pace.HUMAN, exchanges=(1, 1)))
    drive.assigned()
    drive.say("Why was I charged twice?")
    drive.run(60)
    answered = drive.sends()[-1].at
    assert len(drive.agenda) == 1 and drive.agenda.next_deadline() == answered + idle  # the idle wake
    drive.run(idle)
    goodbye = drive.sends()[-1]
    assert goodbye.kind is Say.GOODBYE and goodbye.typing_from >= answered + idle
    # the same, but the customer writes meanwhile: that message gets the goodbye, the idle wake is void
    other = Driver(make_brain(12, pace=Pace.HUMAN, exchanges=(1, 1)))
    other.assigned()
    other.say("Why was I charged twice?")
    other.run(60)
    other.say("Hello?")
    other.run(2 * idle)
    assert [s.kind for s in other.sends()] == [Say.ANSWER, Say.GOODBYE]
    assert len([a for a in other.log if isinstance(a, Close)]) == 1


def test_fast_pace_never_closes_a_silent_chat() -> None:
    drive = Driver(make_brain(13, exchanges=(1, 1)))
    drive.assigned()
    drive.say("Why was I charged twice?")
    drive.run(10_000)
    assert [s.kind for s in drive.sends()] == [Say.ANSWER]
    assert len(drive.agenda) == 0 and not drive.brain.over


# ---------------------------------------------------------------------------
# Pushes by topic


def _first_chat(brain: ChatBrain, question: str) -> Driver:
    drive = Driver(brain)
    drive.assigned()
    drive.say(question)
    drive.run()
    return drive


@pytest.mark.parametrize("seed", range(4))
def test_a_coupon_question_gets_the_coupon_its_answer_names(seed: int) -> None:
    fake = ChatFaker(200 + seed)
    _, question = fake.question(Topic.COUPONS, "en")
    drive = _first_chat(make_brain(seed, coupon_probability=1.0, item_probability=1.0), question)
    assert drive.brain.topic is Topic.COUPONS
    pushes = [a for a in drive.log if isinstance(a, PushCoupon | PushItems)]
    assert len(pushes) == 1 and isinstance(pushes[0], PushCoupon)
    assert re.fullmatch(r"[A-Z]+(\d{2}|-[A-Z0-9]{4})", pushes[0].code)
    (answer,) = drive.sends()
    assert pushes[0].at > answer.at  # after the answer it belongs to
    codes = re.findall(r"\b[A-Z]{3,}(?:\d{2}|-[A-Z0-9]{4})\b", answer.text)
    assert set(codes) <= {pushes[0].code}


def test_a_product_question_gets_items_once_and_other_topics_get_nothing() -> None:
    drive = _first_chat(
        make_brain(14, language="de", coupon_probability=1.0, item_probability=1.0, exchanges=(4, 4)),
        "Ist die Alpenjacke wasserdicht?",
    )
    drive.say("Und gibt es sie in Blau?")
    drive.run()
    pushes = [a for a in drive.log if isinstance(a, PushCoupon | PushItems)]
    assert len(pushes) == 1 and isinstance(pushes[0], PushItems)
    assert pushes[0].items and all(item.description in PHRASEBOOKS["de"].products for item in pushes[0].items)
    shipping = _first_chat(make_brain(15, coupon_probability=1.0, item_probability=1.0), "When will my parcel ship?")
    assert shipping.brain.topic is Topic.SHIPPING
    assert not [a for a in shipping.log if isinstance(a, PushCoupon | PushItems)]


def test_no_push_at_probability_zero() -> None:
    drive = _first_chat(make_brain(16, coupon_probability=0.0, item_probability=0.0), "Do you have a discount code?")
    assert drive.brain.topic is Topic.COUPONS
    assert not [a for a in drive.log if isinstance(a, PushCoupon | PushItems)]


# ---------------------------------------------------------------------------
# What the customer gave


@pytest.mark.parametrize("seed", range(3))
def test_answers_reuse_the_order_number_and_email_the_customer_gave(seed: int) -> None:
    drive = _first_chat(make_brain(30 + seed, exchanges=(6, 6)), "Where is my order #48213?")
    (first,) = drive.sends()
    assert "48213" in first.text, first.text
    assert drive.brain.given["order"] == "48213"
    drive.say("Reach me at ann.lee@example.org")
    drive.run()
    assert "ann.lee@example.org" in drive.sends()[-1].text
    for _ in range(3):  # later answers name no other order
        drive.say("Any update?")
        drive.run()
    numbers = {n for s in drive.sends() for n in re.findall(r"\b\d{5,8}\b", s.text)}  # not tracking numbers
    assert numbers <= {"48213"}


def test_answers_may_use_the_customers_participant_email() -> None:
    found = False
    for seed in range(30):
        question = "I was charged twice for my order, can I get the invoice?"
        drive = _first_chat(make_brain(seed, customer_email="zoe.doe@example.net", exchanges=(6, 6)), question)
        assert drive.brain.topic is Topic.BILLING
        for _ in range(3):
            drive.say("And my invoice?")
            drive.run()
        texts = [s.text for s in drive.sends()]
        assert not any(re.search(r"[\w.]+@[\w.]+", t) and "zoe.doe@example.net" not in t for t in texts)
        found = found or any("zoe.doe@example.net" in t for t in texts)
    assert found


# ---------------------------------------------------------------------------
# Determinism


def _scripted(seed: int) -> list[Action]:
    drive = Driver(make_brain(seed, pace=Pace.HUMAN, coupon_probability=0.5, item_probability=0.5))
    drive.assigned()
    for text in ("Do you have a coupon for the jackets?", "Great, and for boots?", "ok", "thanks, bye!"):
        drive.say(text)
        drive.run(40)
    drive.run(600)
    return drive.log


def test_same_seed_same_actions_other_seed_other_actions() -> None:
    first = _scripted(21)
    assert first == _scripted(21)
    assert first != _scripted(22)
    assert isinstance(first[-1], Close)


# ---------------------------------------------------------------------------
# The agenda


def test_the_agenda_gives_actions_by_time_then_in_the_order_added() -> None:
    agenda = Agenda()
    a, b, c = Close(at=2.0), Typing(at=1.0, text="h"), Wake(at=1.0, reason=WakeReason.GREET)
    agenda.extend([a, b, c])
    agenda.add(Close(at=5.0), at=0.5)
    assert agenda.next_deadline() == 0.5
    assert agenda.pop_due(0.4) is None
    assert [agenda.pop_due(10.0) for _ in range(4)] == [Close(at=5.0), b, c, a]
    assert agenda.pop_due(10.0) is None and agenda.next_deadline() is None and len(agenda) == 0


# ---------------------------------------------------------------------------
# One pace, one timing model, defaults defined once


def test_pacing_keeps_the_customer_api_of_the_sessions() -> None:
    human = Pacing.of("human")
    assert human == Pacing() and human.pace is Pace.HUMAN is DEFAULT_PACE
    assert human.customer is CUSTOMER_TIMINGS[Pace.HUMAN] and human.agent is AGENT_TIMINGS[Pace.HUMAN]
    assert human.typing_time("x" * 30) == 5.0 and human.typing_time("x" * 1000) == 12.0
    assert human.chars_per_second == 6.0 and human.think == (1.5, 5.0) and human.max_typing == 12.0
    assert 1.5 <= human.think_time(random.Random(1)) <= 5.0
    assert Pacing.of("human", chars_per_second=10).typing_time("x" * 30) == 3.0
    fast = Pacing.of(Pace.FAST)
    assert fast.typing_time("x" * 40) == 0.01 and fast.typing_time("x" * 1000) == 0.05
    assert 0.005 <= fast.think_time(random.Random(1)) <= 0.02
    none = Pacing.of("none")
    rng = random.Random(5)
    state = rng.getstate()
    assert none.typing_time("x" * 1000) == 0.0 and none.think_time(rng) == 0.0
    assert rng.getstate() == state  # no pause, no draw
    with pytest.raises(ValueError, match="slow"):
        Pacing.of("slow")


def test_the_agents_timings_per_pace() -> None:
    human, fast, none = (AGENT_TIMINGS[p] for p in (Pace.HUMAN, Pace.FAST, Pace.NONE))
    assert human.idle_close == 120.0 and fast.idle_close is None and none.idle_close is None
    assert human.read == (0.5, 2.0) and human.chars_per_second == (5.0, 8.0) and human.typing_every == (1.5, 3.0)
    assert fast.max_typing < 0.05 and fast.greet_alone == 0.05
    for span in (none.read, none.think, none.engage, none.push, none.close):
        assert span == (0.0, 0.0)
    assert none.max_typing == 0.0


def test_no_pace_acts_at_once_without_typing_frames() -> None:
    drive = Driver(make_brain(17, pace=Pace.NONE, exchanges=(1, 1)))
    drive.assigned()
    actions = drive.say("Where is my order #48213?")
    assert [type(a) for a in actions] == [Read, Send]
    assert all(a.at == T0 for a in actions)
    drive.run(0)
    drive.say("thanks, bye")
    drive.run(0)
    assert [type(a) for a in drive.log] == [Read, Send, Read, Send, Close]
    assert all(a.at == T0 for a in drive.log)


def test_timing_checks_its_spans() -> None:
    with pytest.raises(ValueError, match="think"):
        Timing(think=(2.0, 1.0), chars_per_second=(5.0, 8.0), max_typing=1.0)
    with pytest.raises(ValueError, match="chars_per_second"):
        Timing(think=(1.0, 2.0), chars_per_second=(0.0, 8.0), max_typing=1.0)
    with pytest.raises(ValueError, match="exchanges"):
        AgentStyle(agent_name="A", timing=AGENT_TIMINGS[Pace.FAST], exchanges=(0, 2))


def test_each_default_is_defined_once() -> None:
    from simulator.cli import build_parser
    from simulator.mock.app import MockOptions
    from simulator.mock.autopilot import AutopilotAgent
    from simulator.mock.engine import EngineConfig

    assert DEFAULT_EXCHANGES == (3, 6)
    assert DEFAULT_COUPON_PROBABILITY == DEFAULT_ITEM_PROBABILITY == 0.3
    serve = build_parser().parse_args(["serve"])
    assert serve.exchanges == DEFAULT_EXCHANGES
    assert serve.coupon_probability == DEFAULT_COUPON_PROBABILITY
    assert serve.item_probability == DEFAULT_ITEM_PROBABILITY
    assert serve.pace == DEFAULT_PACE.value
    assert serve.max_chats_per_agent == DEFAULT_MAX_CHATS == EngineConfig().max_chats_per_agent
    options = MockOptions()
    assert (options.exchanges, options.coupon_probability, options.item_probability, options.pace) == (
        DEFAULT_EXCHANGES,
        DEFAULT_COUPON_PROBABILITY,
        DEFAULT_ITEM_PROBABILITY,
        DEFAULT_PACE,
    )
    bot = AutopilotAgent(name="A B", queues=("support",), faker=ChatFaker(1), rng=random.Random(1))
    assert (bot.exchanges, bot.coupon_probability, bot.item_probability, bot.pace, bot.max_chats) == (
        DEFAULT_EXCHANGES,
        DEFAULT_COUPON_PROBABILITY,
        DEFAULT_ITEM_PROBABILITY,
        DEFAULT_PACE,
        DEFAULT_MAX_CHATS,
    )
    style = AgentStyle(agent_name="A", timing=AGENT_TIMINGS[Pace.FAST])
    assert (style.exchanges, style.coupon_probability, style.item_probability) == (
        DEFAULT_EXCHANGES,
        DEFAULT_COUPON_PROBABILITY,
        DEFAULT_ITEM_PROBABILITY,
    )
