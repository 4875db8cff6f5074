"""Fake chat data: seeding, languages, topics, carts, rrweb chunks, variety and
validity of every frame built from it (UltraCart SDK + our JSON Schema)."""

from __future__ import annotations

import itertools
import json
import random
import re
import zoneinfo
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from simulator.fake import (
    LANGUAGES,
    PHRASEBOOKS,
    ChatFaker,
    Persona,
    Topic,
    join_recording,
    sha256_hex,
    split_recording,
)
from simulator.fake.phrasebook import template_slots
from simulator.fake.providers import CATALOG, LOCALE_TIMEZONES, format_money
from simulator.protocol import (
    ConversationEventAddCoupon,
    ConversationEventAddItem,
    ConversationEventRRWeb,
    ConversationEventTyping,
    ConversationMessage,
    ConversationParticipant,
    ConversationSummary,
    EventType,
    Frame,
    FrameType,
    RRWebType,
    decode,
    encode,
)
from tests.phrasebooks import from_book as _from_book
from tests.sdk import validate_frame_bytes

# ---------------------------------------------------------------------------
# Helpers


def _script(fake: ChatFaker) -> list[Any]:
    """A sample of every kind of output, as plain data."""
    out: list[Any] = []
    for language in LANGUAGES:
        persona = fake.customer(language)
        topic, question = fake.question(language=language)
        out += [
            persona,
            fake.agent(language),
            topic,
            question,
            fake.customer_message(topic, language),
            fake.agent_reply(topic, language, first=True, agent_name="Sam", customer_name=persona.first_name),
            fake.goodbye(language),
            fake.goodbye(language, agent=True),
        ]
    out += [fake.uuid(), fake.arn(), fake.arn("conversation"), fake.client_message_id(), fake.coupon_code()]
    out += [item.model_dump() for item in fake.cart_items(3, currency="EUR")]
    out.append(fake.webchat_context().model_dump())
    out.append(fake.queue_entry().model_dump())
    out += [chunk.model_dump() for chunk in fake.rrweb_recording(events=10, chunk_size=512)]
    return out


# ---------------------------------------------------------------------------
# Seeding


def test_same_seed_same_payloads() -> None:
    assert _script(ChatFaker(1234)) == _script(ChatFaker(1234))


def test_different_seeds_differ() -> None:
    a, b = _script(ChatFaker(1)), _script(ChatFaker(2))
    differing = sum(1 for x, y in zip(a, b, strict=True) if x != y)
    assert differing > len(a) * 0.8


def test_unseeded_instances_differ() -> None:
    assert ChatFaker().uuid() != ChatFaker().uuid()


def test_instances_do_not_interfere() -> None:
    expected = _script(ChatFaker(99))
    a, other = ChatFaker(99), ChatFaker(99)
    # Interleave another instance with the same seed and the global random.
    for _ in range(3):
        other.question()
        other.cart_items()
        random.random()
    results = _script(a)
    assert results == expected


def test_global_random_untouched() -> None:
    random.seed(7)
    state = random.getstate()
    fake = ChatFaker(5)
    _script(fake)
    assert random.getstate() == state


def test_uuids_and_arns_are_well_formed() -> None:
    fake = ChatFaker(3)
    uuid_re = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    ids = [fake.uuid() for _ in range(200)]
    assert all(uuid_re.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)
    arn = fake.arn("participant")
    assert re.fullmatch(r"arn:webchat-sim:DEMO:participant/" + uuid_re.pattern, arn)
    assert fake.arn("conversation").startswith("arn:webchat-sim:DEMO:conversation/")


# ---------------------------------------------------------------------------
# Languages and personas


@pytest.mark.parametrize("language", LANGUAGES)
def test_persona_consistent_with_locale(language: str) -> None:
    fake = ChatFaker(11)
    for persona in [fake.customer(language) for _ in range(30)] + [fake.agent(language) for _ in range(10)]:
        assert persona.language_iso_code == language
        assert persona.locale in PHRASEBOOKS[language].locales
        assert persona.timezone in LOCALE_TIMEZONES[persona.locale]
        zoneinfo.ZoneInfo(persona.timezone)  # a real time zone
        assert re.fullmatch(r"[a-z0-9.]+@[a-z0-9.-]+\.[a-z]+", persona.email), persona.email
        assert " " in persona.name


def test_customer_language_drawn_from_configured_languages() -> None:
    fake = ChatFaker(8, languages=("fr", "de"))
    seen = Counter(fake.customer().language_iso_code for _ in range(200))
    assert set(seen) == {"fr", "de"}
    with pytest.raises(ValueError, match="unsupported language"):
        fake.question(language="en")


def test_agents_have_profile_images_customers_none() -> None:
    fake = ChatFaker(2)
    assert fake.agent().profile_image_url is not None
    assert fake.agent().profile_image_url.startswith("https://")  # type: ignore[union-attr]
    assert fake.customer().profile_image_url is None


@pytest.mark.parametrize("language", LANGUAGES)
def test_text_comes_from_the_language_phrasebook(language: str) -> None:
    fake = ChatFaker(21)
    others = [other for other in LANGUAGES if other != language]
    for _ in range(60):
        topic, question = fake.question(language=language)
        assert _from_book(language, "questions", question), question
        assert not any(_from_book(other, "questions", question) for other in others), question
        assert _from_book(language, "followups", fake.customer_message(topic, language))
        assert _from_book(language, "replies", fake.agent_reply(topic, language))
        assert _from_book(language, "customer_goodbyes", fake.goodbye(language))
        assert _from_book(language, "agent_goodbyes", fake.goodbye(language, agent=True))


@pytest.mark.parametrize("language", LANGUAGES)
def test_queue_entry_matches_persona(language: str) -> None:
    fake = ChatFaker(4)
    persona = fake.customer(language)
    entry = fake.queue_entry("sales", persona, Topic.RETURNS)
    assert entry.conversation_participant_name == persona.name
    assert entry.email == persona.email
    assert entry.participant_language_iso_code == language
    assert entry.queue_name == "sales"
    assert entry.question is not None
    assert _from_book(language, "questions", entry.question)
    assert fake.topic_of(entry.question) is Topic.RETURNS
    # Server-assigned fields stay absent.
    assert entry.conversation_webchat_queue_uuid is None
    assert entry.join_dts is None
    assert entry.conversation_participant_arn is None


def test_locale_and_language_codes() -> None:
    fake = ChatFaker(6)
    assert fake.language_for("es-MX") == "es"
    assert fake.language_for("FR") == "fr"
    assert fake.language_for("ja") == "en"
    assert fake.language_for(None) == "en"
    _, text = fake.question(Topic.SIZING, "fr_CA")
    assert _from_book("fr", "questions", text)
    _, text = fake.question(Topic.SIZING, "de-AT")
    assert _from_book("de", "questions", text)
    with pytest.raises(ValueError, match="unsupported language"):
        fake.customer("ja")


def test_first_reply_greets_and_names() -> None:
    fake = ChatFaker(10)
    replies = [
        fake.agent_reply(Topic.ORDER_STATUS, "en", first=True, agent_name="Zelda", customer_name="Quentin")
        for _ in range(40)
    ]
    assert any("Zelda" in r for r in replies)
    assert any("Quentin" in r for r in replies)
    # Without names no template leaves a slot unfilled.
    for _ in range(40):
        assert "{" not in fake.agent_reply(Topic.ORDER_STATUS, "de", first=True)
        assert "{" not in fake.goodbye("es")


# ---------------------------------------------------------------------------
# Topics and goodbyes


@pytest.mark.parametrize("language", LANGUAGES)
def test_topic_of_classifies_generated_questions(language: str) -> None:
    fake = ChatFaker(31)
    right: Counter[Topic] = Counter()
    total = 0
    for topic in Topic:
        for _ in range(80):
            _, question = fake.question(topic, language)
            right[topic] += fake.topic_of(question) is topic
            total += 1
    assert sum(right.values()) / total >= 0.95
    assert all(right[topic] / 80 >= 0.9 for topic in Topic), right


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("where is my package? tracking says nothing", Topic.ORDER_STATUS),
        ("¿Cuánto cuesta el envío a Sevilla?", Topic.SHIPPING),
        ("Je voudrais un remboursement", Topic.RETURNS),
        ("Welche Größe soll ich nehmen?", Topic.SIZING),
        ("Do you have a coupon?", Topic.COUPONS),
        ("Mir wurde doppelt abgebucht", Topic.BILLING),
        ("hello", Topic.PRODUCT),
    ],
)
def test_topic_of_handwritten(text: str, topic: Topic) -> None:
    assert ChatFaker(0).topic_of(text) is topic


@pytest.mark.parametrize("language", LANGUAGES)
def test_is_goodbye(language: str) -> None:
    fake = ChatFaker(41)
    for _ in range(100):
        assert fake.is_goodbye(fake.goodbye(language, name="Robin"))
        topic, question = fake.question(language=language)
        assert not fake.is_goodbye(question), question
        followup = fake.customer_message(topic, language)
        assert not fake.is_goodbye(followup), followup


def test_is_goodbye_handwritten() -> None:
    fake = ChatFaker(0)
    assert fake.is_goodbye("ok THANKS bye")
    assert fake.is_goodbye("Merci beaucoup !")
    assert fake.is_goodbye("Tschüss")
    assert not fake.is_goodbye("Where is my order?")
    assert not fake.is_goodbye("Gedanken zur Größe")


# ---------------------------------------------------------------------------
# Variety


@pytest.mark.parametrize("language", LANGUAGES)
def test_phrasebook_has_enough_templates(language: str) -> None:
    book = PHRASEBOOKS[language]
    for topic in Topic:
        assert len(book.questions[topic]) >= 8
        assert len(book.followups[topic]) >= 8
        assert len(book.replies[topic]) >= 8
    for lines in (book.greetings, book.customer_goodbyes, book.agent_goodbyes):
        assert len(lines) >= 8
    assert len(book.products) == len(CATALOG)


@pytest.mark.parametrize("language", LANGUAGES)
def test_variety(language: str) -> None:
    fake = ChatFaker(51)
    questions = [fake.question(language=language)[1] for _ in range(200)]
    assert len(set(questions)) >= 50
    # Many templates, not only slot values: mask digits and compare shapes.
    shapes = {re.sub(r"\d+", "#", q) for q in questions}
    assert len(shapes) >= 50
    replies = {fake.agent_reply(Topic.SHIPPING, language) for _ in range(100)}
    assert len(replies) >= 30


# ---------------------------------------------------------------------------
# Cart items, coupons, context


@pytest.mark.parametrize("currency", ["USD", "EUR", "GBP", "CHF", "COP"])
def test_cart_item_arithmetic(currency: str) -> None:
    fake = ChatFaker(61)
    seen = Counter[str]()
    for _ in range(60):
        items = fake.cart_items(currency=currency)
        assert 1 <= len(items) <= 3
        assert [item.position for item in items] == list(range(1, len(items) + 1))
        assert len({item.item_oid for item in items}) == len(items)
        for item in items:
            assert isinstance(item.item_oid, int)
            assert item.quantity is not None
            assert item.unit_cost is not None
            assert item.total_cost is not None
            assert item.unit_cost.value is not None
            assert item.total_cost.value is not None
            assert round(item.quantity * item.unit_cost.value, 2) == item.total_cost.value
            assert item.unit_cost.value > 0
            assert item.unit_cost.currency_code == item.total_cost.currency_code == currency
            assert item.total_cost.localized_formatted == format_money(item.total_cost.value, currency)
            for url in (item.view_url, item.default_image_url, item.default_thumbnail_url):
                assert url is not None
                assert url.startswith("https://")
            seen.update(k for k in ("attributes", "options", "variations") if getattr(item, k))
    assert all(seen[k] > 0 for k in ("attributes", "options", "variations")), seen


def test_cart_items_count_and_language() -> None:
    fake = ChatFaker(62)
    assert len(fake.cart_items(5)) == 5
    assert fake.cart_items(0) == []
    names = {item.description for _ in range(20) for item in fake.cart_items(3, language="de")}
    assert names <= set(PHRASEBOOKS["de"].products)
    with pytest.raises(ValueError, match="count"):
        fake.cart_items(len(CATALOG) + 1)


def test_format_money() -> None:
    assert format_money(1234.5, "USD") == "$1,234.50"
    assert format_money(1234.5, "EUR") == "1.234,50 €"
    assert format_money(1234.5, "EUR", "fr") == "1\u202f234,50 €"
    assert format_money(1234.5, "CHF") == "CHF 1’234.50"
    assert format_money(120000, "COP") == "120.000 $"


def test_coupon_codes_and_context() -> None:
    fake = ChatFaker(71)
    codes = {fake.coupon_code() for _ in range(100)}
    assert len(codes) > 30
    assert all(re.fullmatch(r"[A-Z]+(\d{2}|-[A-Z0-9]{4})", code) for code in codes)
    context = fake.webchat_context()
    assert re.fullmatch(r"[0-9A-F]{32}", context.cart_id or "")
    assert re.fullmatch(r"[0-9a-f]{32}", context.ucacid or "")
    assert (context.url or "").startswith(f"https://{fake.store_domain}/")


# ---------------------------------------------------------------------------
# rrweb


def _recordings(chunks: list[ConversationEventRRWeb]) -> dict[int, list[ConversationEventRRWeb]]:
    by_index: dict[int, list[ConversationEventRRWeb]] = {}
    for chunk in chunks:
        assert chunk.event_index is not None
        by_index.setdefault(chunk.event_index, []).append(chunk)
    return by_index


@pytest.mark.parametrize(("events", "chunk_size", "language"), [(50, 4096, "en"), (60, 300, "de"), (7, 5, "fr")])
def test_rrweb_chunks(events: int, chunk_size: int, language: str) -> None:
    chunks = ChatFaker(81).rrweb_recording(events=events, chunk_size=chunk_size, language=language)
    by_index = _recordings(chunks)
    # init first, then events recordings with increasing indexes, in order.
    assert chunks[0].type is RRWebType.INIT
    assert [c.event_index for c in chunks] == sorted(c.event_index or 0 for c in chunks)
    assert sorted(by_index) == list(range(len(by_index)))
    assert all(c.type is RRWebType.INIT for c in by_index[0])
    assert all(c.type is RRWebType.EVENTS for i in by_index if i for c in by_index[i])
    timestamps: list[int] = []
    incremental = 0
    for index, parts in by_index.items():
        total = parts[0].data_total_parts
        assert [p.data_part for p in parts] == list(range(1, (total or 0) + 1))
        whole = ""
        for part in parts:
            assert part.data is not None
            assert part.data_total_parts == total
            assert len(part.data.encode()) <= chunk_size
            assert part.data_sha256 == sha256_hex(part.data)
            whole += part.data
        assert all(p.data_total_sha256 == sha256_hex(whole) for p in parts)
        assert join_recording(reversed(parts)) == whole
        recording = json.loads(whole)
        if index == 0:
            assert [e["type"] for e in recording] == [4, 2]
            assert recording[1]["data"]["node"]["type"] == 0
        else:
            assert all(e["type"] == 3 for e in recording)
            assert len(recording) <= 25
            incremental += len(recording)
        timestamps += [e["timestamp"] for e in recording]
    assert incremental == events
    assert all(a < b for a, b in itertools.pairwise(timestamps))


def test_rrweb_sources_and_start_time() -> None:
    chunks = ChatFaker(82).rrweb_recording(events=200, start_ms=1_800_000_000_000)
    by_index = _recordings(chunks)
    init = json.loads(join_recording(by_index[0]))
    assert init[0]["timestamp"] == 1_800_000_000_000
    sources = Counter(e["data"]["source"] for i in by_index if i for e in json.loads(join_recording(by_index[i])))
    assert {1, 2, 3, 5} <= set(sources)  # mouse moves, clicks, scrolls, inputs


def test_split_recording_keeps_code_points() -> None:
    data = "añ€😀" * 50
    parts = split_recording(data, kind=RRWebType.EVENTS, event_index=3, chunk_size=5)
    assert "".join(p.data or "" for p in parts) == data
    assert all(1 <= len((p.data or "").encode()) <= 5 for p in parts)
    assert {p.event_index for p in parts} == {3}
    with pytest.raises(ValueError, match="chunk_size"):
        split_recording(data, kind=RRWebType.EVENTS, event_index=0, chunk_size=3)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda ps: ps[0].model_copy(update={"data": f"{ps[0].data}x"}),
        lambda ps: ps[0].model_copy(update={"data_total_sha256": "0" * 64}),
        lambda ps: ps[0].model_copy(update={"data_part": 2}),
    ],
)
def test_join_recording_rejects_tampering(tamper: Callable[[list[ConversationEventRRWeb]], Any]) -> None:
    parts = split_recording("x" * 100, kind=RRWebType.INIT, event_index=0, chunk_size=30)
    with pytest.raises(ValueError, match=r"part|sha"):
        join_recording([tamper(parts), *parts[1:]])
    with pytest.raises(ValueError, match=r"1\.\.4"):
        join_recording(parts[:-1])


# ---------------------------------------------------------------------------
# Every frame built from fake data is valid for UltraCart's SDK and our schema


def _participant(fake: ChatFaker, persona: Persona) -> ConversationParticipant:
    return ConversationParticipant(
        conversation_participant_arn=fake.arn(),
        conversation_participant_name=persona.name,
        conversation_participant_uuid=fake.uuid(),
        email=persona.email,
        language_iso_code=persona.language_iso_code,
        profile_image_url=persona.profile_image_url,
        timezone=persona.timezone,
        status="active",
        unread_messages=0,
    )


def _frames(fake: ChatFaker) -> list[Frame]:
    conv = fake.uuid()
    agent = fake.agent()
    customer = fake.customer()
    topic, question = fake.question(language=customer.language_iso_code)
    frames = [
        Frame(
            type=FrameType.EVENT,
            event_type=EventType.WEBCHAT_START_CONVERSATION,
            event_engage_customer=fake.queue_entry("support", customer, topic),
        ),
        Frame(
            type=FrameType.MESSAGE,
            conversation_uuid=conv,
            message=ConversationMessage(
                body=question, client_message_id=fake.client_message_id(), language_iso_code=customer.language_iso_code
            ),
        ),
        Frame(
            type=FrameType.EVENT,
            event_type=EventType.ADD_ITEM,
            conversation_uuid=conv,
            event_add_item=ConversationEventAddItem(
                agent_arn=fake.arn(), agent_name=agent.name, items=fake.cart_items()
            ),
        ),
        Frame(
            type=FrameType.EVENT,
            event_type=EventType.ADD_COUPON,
            conversation_uuid=conv,
            event_add_coupon=ConversationEventAddCoupon(
                agent_arn=fake.arn(), agent_name=agent.name, coupon_code=fake.coupon_code()
            ),
        ),
        Frame(
            type=FrameType.EVENT,
            event_type=EventType.WEBCHAT_CONTEXT,
            conversation_uuid=conv,
            event_webchat_context=fake.webchat_context(),
        ),
        Frame(
            type=FrameType.EVENT,
            event_type=EventType.TYPING,
            conversation_uuid=conv,
            event_typing=ConversationEventTyping(value=fake.agent_reply(topic, customer.language_iso_code)[:12]),
        ),
        Frame(
            type=FrameType.EVENT,
            event_type=EventType.PARTICIPANT_JOIN,
            conversation_uuid=conv,
            event_participant_join=ConversationSummary(
                conversation_uuid=conv,
                conversation_arn=fake.arn("conversation"),
                participants=[_participant(fake, customer), _participant(fake, agent)],
            ),
            event_participant_join_participant=_participant(fake, agent),
        ),
    ]
    frames += [
        Frame(type=FrameType.EVENT, event_type=EventType.RRWEB, conversation_uuid=conv, event_rrweb=chunk)
        for chunk in fake.rrweb_recording(events=30, chunk_size=1024, language=customer.language_iso_code)
    ]
    return frames


@pytest.mark.parametrize("seed", range(6))
def test_frames_validate_against_sdk_and_schema(seed: int) -> None:
    for frame in _frames(ChatFaker(seed)):
        raw = encode(frame)
        validate_frame_bytes(raw)
        assert decode(raw) == frame


# ---------------------------------------------------------------------------
# What the customer gave, repeated in the answer

_GIVEN = ("order", "email", "product", "product2", "tracking", "last4", "size", "size2", "color")


@pytest.mark.parametrize("language", LANGUAGES)
def test_extract_slots_finds_what_every_customer_line_gives(language: str) -> None:
    """Each question and follow-up template, filled as the fake customers fill
    it (in each locale): the values it carries are found, and nothing else."""
    fake = ChatFaker(61)
    book = PHRASEBOOKS[language]
    templates = [t for table in (book.questions, book.followups) for ts in table.values() for t in ts]
    for template in templates:
        for locale in book.locales:
            provider = fake._kit(locale).text  # the values behind the line are needed, not only the line
            values: dict[str, str] = {}
            for slot in sorted(template_slots(template)):
                values[slot] = provider._slot(slot, values)
            line = template.format_map(values)
            expected = {slot: values[slot] for slot in _GIVEN if slot in values}
            for pair in ("size", "product"):  # a lone second one is the first one named
                if f"{pair}2" in expected and pair not in expected:
                    expected[pair] = expected.pop(f"{pair}2")
            assert fake.extract_slots(line, language) == expected, line


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        ("en", "Where is my order #48213?", {"order": "48213"}),
        ("en", "order no. 48213, Ann.Lee+shop@example.co", {"order": "48213", "email": "Ann.Lee+shop@example.co"}),
        (
            "en",
            "is the alpine shell jacket warmer than the fleece half zip?",
            {"product": "Alpine Shell Jacket", "product2": "Fleece Half-Zip"},
        ),
        ("en", "card ending in 4242, I wear a L, in navy please", {"last4": "4242", "size": "L", "color": "navy"}),
        ("en", "my tracking number is 1z999aa10123456784", {"tracking": "1Z999AA10123456784"}),
        ("es", "¿Dónde está mi pedido n.º 48213?", {"order": "48213"}),
        ("es", "Mi correo es ana@example.es y el pedido es el 48213", {"order": "48213", "email": "ana@example.es"}),
        ("es", "Is the Alpine Shell Jacket waterproof?", {"product": "Chaqueta Alpina"}),
        ("fr", "Où est ma commande n°48213 ?", {"order": "48213"}),
        ("fr", "C'est pour le t shirt en coton bio, en taille m", {"product": "T-shirt en Coton Bio", "size": "M"}),
        ("de", "Wo bleibt Bestellung 48213? E-Mail: jan@example.de", {"order": "48213", "email": "jan@example.de"}),
        ("de", "Die Bestellnummer lautet 48213.", {"order": "48213"}),
        ("de", "Gibt es die Alpenjacke in Marineblau?", {"product": "Alpenjacke", "color": "Marineblau"}),
    ],
)
def test_extract_slots_handwritten(language: str, text: str, expected: dict[str, str]) -> None:
    assert ChatFaker(0).extract_slots(text, language) == expected


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "Do you ship to Canada?",
        "I ordered 3 shirts and want to order 12 more",
        "My chest is 98 cm and I'm 180 cm tall",
        "It cost $89.00 on May 12, 2025",
        "Where is my package? It's been 10 days.",
        "L'article est arrivé abîmé, s'il vous plaît aidez-moi",
        "Mir wurde doppelt abgebucht",
    ],
)
def test_extract_slots_finds_nothing_in_lines_without_values(text: str) -> None:
    fake = ChatFaker(0)
    assert all(fake.extract_slots(text, language) == {} for language in ("en", "es", "de"))


_REUSE = {
    # language: (order question, product question, e-mail line)
    "en": ("Where is my order #48213?", "Is the Alpine Shell Jacket waterproof?", "It's ann.lee@example.org"),
    "es": ("¿Dónde está mi pedido #48213?", "¿La Chaqueta Alpina es impermeable?", "Es ann.lee@example.org"),
    "fr": ("Où est ma commande n° 48213 ?", "La Veste Alpine est-elle imperméable ?", "C'est ann.lee@example.org"),
    "de": ("Wo ist meine Bestellung Nr. 48213?", "Ist die Alpenjacke wasserdicht?", "Das ist ann.lee@example.org"),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_agent_reply_repeats_the_values_the_customer_gave(language: str) -> None:
    fake = ChatFaker(62)
    order_question, product_question, email_line = _REUSE[language]
    product = PHRASEBOOKS[language].products[1]  # the Alpine Shell Jacket, in this language
    assert fake.topic_of(order_question) is Topic.ORDER_STATUS
    assert fake.topic_of(product_question) is Topic.PRODUCT
    cases = [
        (Topic.ORDER_STATUS, order_question, "48213"),
        (Topic.PRODUCT, product_question, product),
        (Topic.ORDER_STATUS, email_line, "ann.lee@example.org"),
        (Topic.RETURNS, email_line, "ann.lee@example.org"),
        (Topic.BILLING, email_line, "ann.lee@example.org"),
    ]
    for topic, text, value in cases:
        given = fake.extract_slots(text, language)
        for first in (True, False):
            for _ in range(20):
                reply = fake.agent_reply(topic, language, first=first, agent_name="Sam", slots=given, prefer=given)
                assert value in reply, reply
                assert "{" not in reply
                if not first:
                    assert _from_book(language, "replies", reply), reply


@pytest.mark.parametrize("language", LANGUAGES)
def test_agent_reply_keeps_drawing_values_the_customer_did_not_give(language: str) -> None:
    fake = ChatFaker(63)
    replies = [fake.agent_reply(topic, language) for topic in Topic for _ in range(30)]
    assert all("@" not in reply and "{" not in reply for reply in replies)  # {email} templates need an address
    orders = {number for reply in replies for number in re.findall(r"\b\d{7}\b", reply)}
    assert len(orders) >= 10  # random order numbers, as before
    # An address known (the customer's participant) but not just given: usable, not forced.
    address = "ann.lee@example.org"
    with_email = [fake.agent_reply(Topic.ORDER_STATUS, language, slots={"email": address}) for _ in range(100)]
    assert 0 < sum(address in reply for reply in with_email) < 50


def test_names_are_the_draws_fakers_own_methods_make(monkeypatch: pytest.MonkeyPatch) -> None:
    """Personas name people as Faker's ``first_name()``/``last_name()`` would,
    draw for draw, in every locale (only without rebuilding the weights)."""
    from simulator.fake import chat

    def personas(seed: int) -> list[tuple[str, str | None]]:
        faker = ChatFaker(seed=seed)
        out = []
        for locale in faker.locales:
            out += [(p.name, p.email) for p in (faker.customer(locale) for _ in range(30))]
            out += [(p.name, p.email) for p in (faker.agent(locale) for _ in range(5))]
        return out

    fast = personas(11)
    assert any(
        kit.first_names.cum_weights
        for kit in (chat._shared_kit(loc, "DEMO", ChatFaker().store_domain) for loc in ChatFaker().locales)
    )
    monkeypatch.setattr(chat._Names, "pick", lambda self, rng: self.faker())
    assert personas(11) == fast


def test_uuids_are_the_shop_providers_draws() -> None:
    """``ChatFaker.uuid()`` draws what its first locale's ``shop_uuid()`` would."""
    fast, slow = ChatFaker(seed=5), ChatFaker(seed=5)
    drawn = [fast.uuid() for _ in range(50)]
    assert drawn == [slow.generator(slow.locales[0]).shop_uuid() for _ in range(50)]
    assert len(set(drawn)) == 50
