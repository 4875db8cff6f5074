"""``ChatFaker``: the one object the rest of webchat-sim asks for fake data.

One :class:`ChatFaker` owns one seeded ``random.Random`` per locale of its
languages (seed and locale combined, exactly what ``seed_instance`` would
make), never the global ``Faker.seed``. The ``Faker`` of a locale, with the
providers of :mod:`simulator.fake.providers` and :mod:`simulator.fake.rrweb`
registered on it, is built once per process (that costs milliseconds, a load
generator has thousands of users) and shared: before each use an instance
hands it its own random for that locale. Two instances built with the same
seed replay the same payloads (UUIDs and ARNs included: they come from the
seeded random as well), whatever else runs in between and in whatever order
locales are first used. (Fake data is drawn synchronously: no greenlet or
thread switch happens between handing the random and drawing from it.)
"""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from typing import NamedTuple

from faker import Faker
from faker.providers.person import Provider as PersonProvider

from ..protocol import (
    CartItem,
    ConversationEventRRWeb,
    ConversationEventWebchatContext,
    ConversationWebchatQueueStatusQueueEntry,
    uuid4_text,
)
from .extract import SlotExtractor
from .phrasebook import GoodbyeMatcher, Topic, TopicClassifier
from .phrases import PHRASEBOOKS
from .providers import LOCALE_TIMEZONES, ChatTextProvider, ShopProvider, slugify
from .rrweb import RRWebProvider

__all__ = ["LANGUAGES", "ChatFaker", "Persona"]

LANGUAGES: tuple[str, ...] = tuple(PHRASEBOOKS)
"""Every language with a phrasebook: ``("en", "es", "fr", "de")``."""


@dataclass(frozen=True, slots=True)
class Persona:
    """Someone in a chat; name, e-mail and time zone fit ``locale``."""

    name: str
    email: str
    language_iso_code: str
    timezone: str
    locale: str
    profile_image_url: str | None = None

    @property
    def first_name(self) -> str:
        """The name's first word."""
        return self.name.split(" ", 1)[0]


class _Names:
    """Faker's ``first_name()`` or ``last_name()`` of one locale, the same
    draws from the same random, without rebuilding the weights each call.

    Faker's person providers pick ``random_element(self.first_names)``: from
    a weighted ``OrderedDict`` that is ``random.choices(names,
    weights=tuple(values))``, whose cumulative weights are summed anew at
    every call (a few thousand names: ~100 µs of a persona's ~250). Given
    the cumulative weights once, ``choices`` draws exactly the same name for
    the same random state. A provider that overrides the method, or turns
    weighting off, is called as it is."""

    __slots__ = ("cum_weights", "faker", "names")

    def __init__(self, generator: Faker, method: str, elements: str) -> None:
        self.faker: Callable[[], str] = getattr(generator, method)
        """Faker's own method (what :meth:`pick` equals)."""
        self.names: Sequence[str] = ()
        self.cum_weights: list[float] | None = None
        provider = next((p for p in generator.get_providers() if hasattr(p, elements)), None)
        if (
            provider is None
            or getattr(type(provider), method) is not getattr(PersonProvider, method)
            or not getattr(provider, "__use_weighting__", True)
        ):
            return  # Faker's own method
        found = getattr(provider, elements)
        if isinstance(found, OrderedDict):
            self.names = tuple(found.keys())
            self.cum_weights = list(accumulate(found.values()))
        elif isinstance(found, (tuple, list)):
            self.names = found

    def pick(self, rng: random.Random) -> str:
        """A name, drawn from ``rng``: the generator's random, as Faker's method draws."""
        if self.cum_weights is not None:
            return rng.choices(self.names, cum_weights=self.cum_weights)[0]
        if self.names:
            return rng.choice(self.names)
        return self.faker()


class _Kit(NamedTuple):
    """One locale's Faker and the providers registered on it (shared by the process's instances)."""

    generator: Faker
    shop: ShopProvider
    text: ChatTextProvider
    rrweb: RRWebProvider
    first_names: _Names
    last_names: _Names


@cache
def _shared_kit(locale: str, merchant_id: str, store_domain: str) -> _Kit:
    generator = Faker(locale)
    shop = ShopProvider(generator, merchant_id=merchant_id, store_domain=store_domain)
    text = ChatTextProvider(generator, phrasebook=PHRASEBOOKS[locale[:2]], locale=locale, shop=shop)
    rrweb = RRWebProvider(generator)
    for provider in (shop, text, rrweb):
        generator.add_provider(provider)
    first = _Names(generator, "first_name", "first_names")
    last = _Names(generator, "last_name", "last_names")
    return _Kit(generator, shop, text, rrweb, first, last)


@cache
def _classifier() -> TopicClassifier:
    return TopicClassifier(PHRASEBOOKS.values())


@cache
def _goodbye() -> GoodbyeMatcher:
    return GoodbyeMatcher(PHRASEBOOKS.values())


@cache
def _extractor() -> SlotExtractor:
    return SlotExtractor(PHRASEBOOKS)


class ChatFaker:
    """Fake personas, chat lines, cart items, context and rrweb recordings.

    ``languages`` are the languages this instance writes (and draws customers
    from); ``language`` arguments accept a language (``"fr"``), a locale of
    it (``"fr_CA"``, ``"fr-CA"``) or :meth:`language_for` can map any code to
    a supported one. :meth:`topic_of` and :meth:`is_goodbye` understand every
    language that has a phrasebook, whatever ``languages`` is.
    """

    def __init__(
        self,
        seed: int | None = None,
        *,
        languages: Sequence[str] = LANGUAGES,
        merchant_id: str = "DEMO",
        store_domain: str = "www.northpeak-outfitters.example",
    ) -> None:
        unknown = [code for code in languages if code not in PHRASEBOOKS]
        if unknown or not languages:
            raise ValueError(f"unsupported languages {unknown or list(languages)}; choose from {list(PHRASEBOOKS)}")
        self.languages: tuple[str, ...] = tuple(dict.fromkeys(languages))
        self.merchant_id = merchant_id
        self.store_domain = store_domain
        self.locales: tuple[str, ...] = tuple(locale for code in self.languages for locale in PHRASEBOOKS[code].locales)
        self._seed = seed
        self._rngs: dict[str, random.Random] = {}
        self._random = self._rng(self.locales[0])

    def _rng(self, locale: str) -> random.Random:
        """This instance's random for ``locale``, created on first use (each
        locale has its own seed, so creation order does not matter)."""
        rng = self._rngs.get(locale)
        if rng is None:
            seed = None if self._seed is None else f"webchat-sim:{self._seed}:{locale}"
            rng = self._rngs[locale] = random.Random(seed)
        return rng

    def _kit(self, locale: str) -> _Kit:
        """The Faker of ``locale`` and its providers, drawing from this instance's random."""
        kit = _shared_kit(locale, self.merchant_id, self.store_domain)
        kit.generator.random = self._rng(locale)  # type: ignore[attr-defined]  # Faker's stub lacks the setter
        return kit

    @property
    def _main(self) -> _Kit:
        return self._kit(self.locales[0])

    def generator(self, locale: str) -> Faker:
        """The ``Faker`` of one of this instance's locales, with the chat providers
        registered (``chat_question()``, ``shop_cart_items()``, …), drawing from
        this instance's seeded random until another instance of the process
        draws in that locale."""
        return self._kit(self._locale(locale)).generator

    # ------------------------------------------------------------------
    # Languages

    def language_for(self, code: str | None) -> str:
        """A language of this instance for any code (``"es-MX"`` → ``"es"``);
        the first configured language when ``code`` is unknown or None."""
        if code:
            base = code.replace("-", "_").split("_", 1)[0].lower()
            if base in self.languages:
                return base
        return self.languages[0]

    def _locale(self, language: str) -> str:
        """The locale to write ``language`` in: itself if it is one of ours
        (``"fr_CA"``), else a random locale of its base language."""
        locale = language.replace("-", "_")
        if locale in self.locales:
            return locale
        base = locale.split("_", 1)[0].lower()
        if base not in self.languages:
            raise ValueError(f"unsupported language {language!r}; this ChatFaker writes {list(self.languages)}")
        return self._random.choice(PHRASEBOOKS[base].locales)

    def _text_for(self, language: str) -> ChatTextProvider:
        return self._kit(self._locale(language)).text

    # ------------------------------------------------------------------
    # People

    def customer(self, language: str | None = None) -> Persona:
        """A webchat visitor speaking ``language`` (a random configured one if None)."""
        locale = self._locale(language or self._random.choice(self.languages))
        kit = self._kit(locale)
        generator = kit.generator
        rnd = generator.random
        first, last = kit.first_names.pick(rnd), kit.last_names.pick(rnd)
        rnd = kit.shop.rng
        given, family = slugify(first), slugify(last)  # once each (it was six calls per persona)
        local = rnd.choice((f"{given}.{family}", f"{given}{family}{rnd.randint(1, 99)}", f"{given[:1]}{family}"))
        return Persona(
            name=f"{first} {last}",
            email=f"{local}@{generator.free_email_domain()}",
            language_iso_code=locale[:2],
            timezone=rnd.choice(LOCALE_TIMEZONES[locale]),
            locale=locale,
        )

    def agent(self, language: str = "en") -> Persona:
        """A support agent of the shop, with a profile picture."""
        locale = self._locale(language)
        kit = self._kit(locale)
        generator = kit.generator
        first, last = kit.first_names.pick(generator.random), kit.last_names.pick(generator.random)
        email = f"{slugify(first)}.{slugify(last)}@{self.store_domain.removeprefix('www.')}"
        digest = hashlib.md5(email.encode(), usedforsecurity=False).hexdigest()
        return Persona(
            name=f"{first} {last}",
            email=email,
            language_iso_code=locale[:2],
            timezone=kit.shop.rng.choice(LOCALE_TIMEZONES[locale]),
            locale=locale,
            profile_image_url=f"https://www.gravatar.com/avatar/{digest}?d=identicon&s=128",
        )

    # ------------------------------------------------------------------
    # Chat lines

    def question(self, topic: Topic | None = None, language: str = "en") -> tuple[Topic, str]:
        """A customer's opening question and its topic."""
        return self._text_for(language).chat_question(topic)

    def customer_message(self, topic: Topic, language: str = "en") -> str:
        """A customer's later line about ``topic``."""
        return self._text_for(language).chat_followup(topic)

    def agent_reply(
        self,
        topic: Topic,
        language: str = "en",
        *,
        first: bool = False,
        agent_name: str | None = None,
        customer_name: str | None = None,
        slots: Mapping[str, str] | None = None,
        prefer: Collection[str] = (),
    ) -> str:
        """An agent's answer that fits ``topic`` (tracking for order status,
        RMA and label for returns, size chart for sizing, …); with ``first``
        it opens with a greeting (naming the agent/customer when given).
        ``slots`` fixes template values, e.g. ``{"coupon": code}`` so the text
        names the coupon the agent actually pushes, or what
        :meth:`extract_slots` found in the customer's text (an ``email`` slot
        makes the templates that mention the address usable); ``prefer``
        draws the answer among the templates that use the most of these slot
        names, when one does (pass the slots the customer's last message gave,
        so the answer talks about them)."""
        return self._text_for(language).chat_reply(
            topic, first=first, agent_name=agent_name, customer_name=customer_name, slots=slots, prefer=prefer
        )

    def greeting(self, language: str = "en", *, agent_name: str | None = None, customer_name: str | None = None) -> str:
        """An agent's opening line alone (for a chat started without a question)."""
        return self._text_for(language).chat_greeting(agent_name=agent_name, customer_name=customer_name)

    def goodbye(self, language: str = "en", *, agent: bool = False, name: str | None = None) -> str:
        """A closing line of the customer (or of the agent); ``name`` is the
        other party's name, used by some templates when given."""
        return self._text_for(language).chat_goodbye(agent=agent, name=name)

    def is_goodbye(self, text: str) -> bool:
        """Whether ``text`` says goodbye or thanks, in any phrasebook language."""
        return _goodbye()(text)

    def extract_slots(self, text: str, language: str = "en") -> dict[str, str]:
        """The slot values a customer's ``text`` gives (order number, product,
        e-mail, tracking number, card digits, size, colour; see
        :mod:`simulator.fake.extract`), written for an answer in ``language``
        (a language or a locale of it): pass them as :meth:`agent_reply`'s
        ``slots`` so the answer repeats them. Understands every phrasebook
        language; draws no randomness."""
        base = language.replace("-", "_").split("_", 1)[0].lower()
        return _extractor()(text, base)

    def topic_of(self, text: str) -> Topic:
        """The topic of a customer's text by keywords, in any phrasebook language
        (:attr:`Topic.PRODUCT` when nothing matches)."""
        return _classifier().classify(text)

    # ------------------------------------------------------------------
    # Identifiers

    def uuid(self) -> str:
        """A version-4 UUID from the seeded random (the first locale's, as
        ``shop_uuid()`` of its Faker draws; without the Faker lookups: ~2 µs)."""
        return uuid4_text(self._random.getrandbits(128))

    def arn(self, kind: str = "participant") -> str:
        """``arn:webchat-sim:<merchant_id>:<kind>/<uuid>``."""
        return self._main.shop.shop_arn(kind)

    def client_message_id(self) -> str:
        """An id a client picks for a message it sends (a UUID)."""
        return self.uuid()

    def coupon_code(self) -> str:
        """``SPRING20``, ``WELCOME-7KQ2``, …"""
        return self._main.shop.shop_coupon_code()

    # ------------------------------------------------------------------
    # Shop payloads

    def cart_items(self, count: int | None = None, *, currency: str = "USD", language: str = "en") -> list[CartItem]:
        """``count`` different cart items (1 to 3 if None), priced in
        ``currency``, described in ``language``."""
        locale = self._locale(language)
        return self._kit(locale).shop.shop_cart_items(
            count, currency=currency, products=PHRASEBOOKS[locale[:2]].products
        )

    def webchat_context(self) -> ConversationEventWebchatContext:
        """The cart and analytics ids and the storefront page of a visitor."""
        shop = self._main.shop
        rnd = self._random
        return ConversationEventWebchatContext(
            cart_id=f"{rnd.getrandbits(128):032X}",
            ucacid=f"{rnd.getrandbits(128):032x}",
            url=shop.shop_page_url(PHRASEBOOKS[self.languages[0]].products),
        )

    def rrweb_recording(
        self,
        *,
        events: int = 50,
        chunk_size: int = 4096,
        batch_size: int = 25,
        first_index: int = 0,
        language: str = "en",
        start_ms: int | None = None,
    ) -> list[ConversationEventRRWeb]:
        """The ``rrweb`` payloads of one page view, in sending order.

        ``init`` (Meta + FullSnapshot) with ``event_index = first_index``,
        then ``events`` IncrementalSnapshot events in ``events`` recordings of
        at most ``batch_size`` events (indexes ``first_index + 1``, …). Each
        recording is cut into parts of at most ``chunk_size`` UTF-8 bytes;
        ``data_sha256`` hashes a part, ``data_total_sha256`` the concatenation
        of all parts of its ``event_index``. See :mod:`simulator.fake.rrweb`.
        ``start_ms`` is the first timestamp (epoch ms; seeded random if None).
        """
        locale = self._locale(language)
        kit = self._kit(locale)
        text = kit.text
        products = PHRASEBOOKS[locale[:2]].products
        index = self._random.randrange(len(products))
        typed = (products[(index + 1) % len(products)], self.customer(language).email, text.chat_question()[1])
        return kit.rrweb.rrweb_recording(
            events,
            chunk_size=chunk_size,
            batch_size=batch_size,
            first_index=first_index,
            url=kit.shop.shop_page_url(products),
            title=products[index],
            language=locale[:2],
            typed=typed,
            start_ms=start_ms,
        )

    def queue_entry(
        self, queue_name: str = "support", persona: Persona | None = None, topic: Topic | None = None
    ) -> ConversationWebchatQueueStatusQueueEntry:
        """The queue entry a customer sends in ``webchat start conversation``:
        name, e-mail, question (in the persona's language and locale),
        ``queue_name`` and ``participant_language_iso_code``. No uuid, ARN or
        ``join_dts``: the server assigns those."""
        if persona is None:
            persona = self.customer()
        locale = persona.locale if persona.locale in self.locales else persona.language_iso_code
        _, text = self._text_for(locale).chat_question(topic)
        return ConversationWebchatQueueStatusQueueEntry(
            conversation_participant_name=persona.name,
            email=persona.email,
            participant_language_iso_code=persona.language_iso_code,
            question=text,
            queue_name=queue_name,
        )


def parse_languages(text: str) -> tuple[str, ...]:
    """``"fr, de"`` → ``("fr", "de")`` (blank: every phrasebook's language);
    ``ValueError`` naming the supported ones for anything else."""
    chosen = tuple(dict.fromkeys(code.strip() for code in text.split(",") if code.strip()))
    if not chosen:
        return tuple(LANGUAGES)
    unknown = [code for code in chosen if code not in PHRASEBOOKS]
    if unknown:
        raise ValueError(f"unsupported language(s) {', '.join(unknown)}; choose from {', '.join(PHRASEBOOKS)}")
    return chosen
