"""Topics, per-language phrasebooks and the keyword classifiers built on them.

A :class:`Phrasebook` is plain data: the templates one language uses for each
:class:`Topic` and role, the vocabulary that fills their ``{slots}``, and the
keywords that recognise a topic (or a goodbye) in a customer's text. The
per-language books live in :mod:`simulator.fake.phrases`; the providers in
:mod:`simulator.fake.providers` fill the slots from a seeded Faker generator.

Keywords are regular expressions matched against :func:`normalize`-d text
(lower case, accents stripped, ``ß`` → ``ss``, typographic apostrophes made
plain), so ``"Rücksendung"`` is searched as ``"rucksendung"``.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache

__all__ = [
    "REFERENCE_SLOTS",
    "TOPIC_PRIORITY",
    "GoodbyeMatcher",
    "Phrasebook",
    "Topic",
    "TopicClassifier",
    "normalize",
    "template_slots",
]


class Topic(StrEnum):
    """What a customer wants to talk about."""

    ORDER_STATUS = "order status"
    SHIPPING = "shipping"
    RETURNS = "returns"
    SIZING = "sizing"
    COUPONS = "coupons"
    BILLING = "billing"
    PRODUCT = "product question"


# Ties between topics are broken in this order; PRODUCT, the most general
# topic, is also the answer when no keyword matches at all.
TOPIC_PRIORITY: tuple[Topic, ...] = (
    Topic.RETURNS,
    Topic.BILLING,
    Topic.COUPONS,
    Topic.SIZING,
    Topic.SHIPPING,
    Topic.ORDER_STATUS,
    Topic.PRODUCT,
)

_FORMATTER = string.Formatter()

REFERENCE_SLOTS: frozenset[str] = frozenset({"order", "tracking", "last4"})
"""The slots whose introducing words a :attr:`Phrasebook.references` lists."""


@cache
def template_slots(template: str) -> frozenset[str]:
    """The names of the ``{slots}`` of a template."""
    return frozenset(name for _, name, _, _ in _FORMATTER.parse(template) if name)


_PLAIN = str.maketrans({"’": "'", "‘": "'", "ß": "ss", "œ": "oe", "æ": "ae", "\u00a0": " ", "\u202f": " "})


def normalize(text: str) -> str:
    """Lower case, accents stripped, ``ß`` → ``ss``, plain apostrophes."""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(_PLAIN))
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@dataclass(frozen=True, slots=True, kw_only=True)
class Phrasebook:
    """Everything one language says.

    Templates use ``str.format`` slots; the slot names a provider knows are
    listed in :data:`simulator.fake.providers.SLOTS`. ``products`` is aligned
    with the shared catalogue (index ``i`` is the same article in every
    language). Keywords are regular expressions over :func:`normalize`-d text.
    """

    language: str
    locales: tuple[str, ...]
    # Customer lines
    questions: Mapping[Topic, tuple[str, ...]]
    followups: Mapping[Topic, tuple[str, ...]]
    customer_goodbyes: tuple[str, ...]
    # Agent lines
    greetings: tuple[str, ...]
    replies: Mapping[Topic, tuple[str, ...]]
    agent_goodbyes: tuple[str, ...]
    # Recognition
    keywords: Mapping[Topic, tuple[str, ...]]
    goodbye_keywords: tuple[str, ...]
    references: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Regular expressions (over :func:`normalize`-d text) of the words that
    introduce a value a customer gives, by slot: ``"order"`` (``order number
    is``), ``"tracking"``, ``"last4"`` (``card ending in``). The value itself
    is matched by :class:`simulator.fake.extract.SlotExtractor`."""
    # Vocabulary
    products: tuple[str, ...]
    colors: tuple[str, ...]
    carriers: tuple[str, ...]
    countries: tuple[str, ...]
    months: tuple[str, ...]
    weekdays: tuple[str, ...]
    date_format: str = field(default="{month} {day}")

    def __post_init__(self) -> None:
        for name in ("questions", "followups", "replies", "keywords"):
            table: Mapping[Topic, tuple[str, ...]] = getattr(self, name)
            missing = [topic.value for topic in Topic if not table.get(topic)]
            if missing:
                raise ValueError(f"phrasebook {self.language!r}: {name} has no entry for {', '.join(missing)}")
        if len(self.months) != 12 or len(self.weekdays) != 7:
            raise ValueError(f"phrasebook {self.language!r}: needs 12 months and 7 weekdays")
        unknown = sorted(set(self.references) - REFERENCE_SLOTS)
        if unknown:
            raise ValueError(f"phrasebook {self.language!r}: references for unknown slots {', '.join(unknown)}")


def _compile(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern) for pattern in patterns)


class TopicClassifier:
    """Keyword classification of a customer's text in any of several languages.

    The score of a topic is the number of its distinct keywords found in the
    text; the best score wins, ties go to the topic earlier in
    :data:`TOPIC_PRIORITY`; with no keyword at all the answer is
    :attr:`Topic.PRODUCT`.
    """

    __slots__ = ("_patterns",)

    def __init__(self, books: Iterable[Phrasebook]) -> None:
        merged: dict[Topic, list[str]] = {topic: [] for topic in Topic}
        for book in books:
            for topic, patterns in book.keywords.items():
                merged[topic].extend(patterns)
        self._patterns = {topic: _compile(dict.fromkeys(merged[topic])) for topic in TOPIC_PRIORITY}

    def scores(self, text: str) -> dict[Topic, int]:
        """How many keywords of each topic occur in ``text``."""
        plain = normalize(text)
        return {topic: sum(1 for p in patterns if p.search(plain)) for topic, patterns in self._patterns.items()}

    def classify(self, text: str) -> Topic:
        """The topic of ``text``."""
        best, best_score = Topic.PRODUCT, 0
        for topic, score in self.scores(text).items():  # in priority order
            if score > best_score:
                best, best_score = topic, score
        return best


class GoodbyeMatcher:
    """Recognises goodbyes and thanks in any of several languages."""

    __slots__ = ("_pattern",)

    def __init__(self, books: Iterable[Phrasebook]) -> None:
        patterns = dict.fromkeys(p for book in books for p in book.goodbye_keywords)
        self._pattern = re.compile("|".join(f"(?:{p})" for p in patterns))

    def __call__(self, text: str) -> bool:
        return self._pattern.search(normalize(text)) is not None
