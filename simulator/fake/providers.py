"""Faker providers of chat text and shop data.

Every provider draws only from ``self.generator.random``: a generator seeded
with ``seed_instance`` (or ``Faker.seed_locale``) replays the same values.

* :class:`ChatTextProvider` — one instance per Faker locale; the lines of a
  support chat in that locale's language (:mod:`simulator.fake.phrases`),
  with slots filled from the same generator (cities come from the locale's own
  address provider, amounts in the locale's currency).
* :class:`ShopProvider` — identifiers (UUIDs, ARNs, order and tracking
  numbers, coupon codes) and ``CartItem`` lists from a small catalogue.

Register them with ``generator.add_provider(instance)``; the methods are
prefixed (``chat_``, ``shop_``) so they never shadow Faker's own.
"""

from __future__ import annotations

import random
import re
import string
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from faker.providers import BaseProvider

from ..protocol import (
    CartItem,
    CartItemAttribute,
    CartItemOption,
    CartItemOptionType,
    CartItemVariationSelection,
    Currency,
    uuid4_text,
)
from .phrasebook import Phrasebook, Topic, template_slots

__all__ = [
    "CATALOG",
    "CURRENCIES",
    "GIVEN_SLOTS",
    "LOCALE_CURRENCY",
    "LOCALE_TIMEZONES",
    "NAME_SLOTS",
    "SLOTS",
    "CatalogItem",
    "ChatTextProvider",
    "CurrencyInfo",
    "SeededProvider",
    "ShopProvider",
    "format_money",
    "slugify",
]

# ---------------------------------------------------------------------------
# Reference data


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """An article of the fake shop; its name is ``Phrasebook.products[index]``."""

    sku: str
    price_usd: float
    sized: bool = True


CATALOG: tuple[CatalogItem, ...] = (
    CatalogItem("MER-CRW", 89.0),
    CatalogItem("ALP-SHL", 179.0),
    CatalogItem("EVD-CHN", 69.0),
    CatalogItem("ORG-TEE", 29.0),
    CatalogItem("DWN-VST", 129.0),
    CatalogItem("LIN-SHT", 59.0),
    CatalogItem("FLC-HZP", 79.0),
    CatalogItem("STR-DNM", 89.0),
    CatalogItem("WOL-BNE", 25.0, sized=False),
    CatalogItem("TRL-SHR", 45.0),
    CatalogItem("HDD-PRK", 149.0),
    CatalogItem("QLT-OVS", 99.0),
)

SIZES: tuple[str, ...] = ("XS", "S", "M", "L", "XL", "XXL")
_COLOR_CODES: tuple[str, ...] = ("NVY", "BLK", "OLV", "HGR", "BRG", "SND", "FGR", "SKY")
_COLOR_NAMES_EN: tuple[str, ...] = (
    "Navy",
    "Black",
    "Olive Green",
    "Heather Gray",
    "Burgundy",
    "Sand",
    "Forest Green",
    "Sky Blue",
)

LOCALE_TIMEZONES: Mapping[str, tuple[str, ...]] = {
    "en_US": ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Phoenix"),
    "en_GB": ("Europe/London",),
    "en_CA": ("America/Toronto", "America/Vancouver", "America/Edmonton", "America/Halifax"),
    "en_AU": ("Australia/Sydney", "Australia/Melbourne", "Australia/Brisbane", "Australia/Perth"),
    "es_ES": ("Europe/Madrid", "Atlantic/Canary"),
    "es_MX": ("America/Mexico_City", "America/Monterrey", "America/Tijuana", "America/Cancun"),
    "es_AR": ("America/Argentina/Buenos_Aires", "America/Argentina/Cordoba"),
    "es_CO": ("America/Bogota",),
    "fr_FR": ("Europe/Paris",),
    "fr_CA": ("America/Toronto",),
    "fr_CH": ("Europe/Zurich",),
    "de_DE": ("Europe/Berlin",),
    "de_AT": ("Europe/Vienna",),
    "de_CH": ("Europe/Zurich",),
}


@dataclass(frozen=True, slots=True)
class CurrencyInfo:
    """How to price and write amounts in one currency."""

    symbol: str
    per_usd: float
    decimals: int = 2


CURRENCIES: Mapping[str, CurrencyInfo] = {
    "USD": CurrencyInfo("$", 1.0),
    "GBP": CurrencyInfo("£", 0.79),
    "CAD": CurrencyInfo("$", 1.37),
    "AUD": CurrencyInfo("$", 1.52),
    "EUR": CurrencyInfo("€", 0.92),
    "MXN": CurrencyInfo("$", 17.5),
    "ARS": CurrencyInfo("$", 950.0, 0),
    "COP": CurrencyInfo("$", 4000.0, 0),
    "CHF": CurrencyInfo("CHF", 0.88),
}

# (currency, money style) per locale; styles: "en" $1,234.56 / "eu" 1.234,56 € /
# "fr" 1 234,56 € / "ch" CHF 1'234.50
LOCALE_CURRENCY: Mapping[str, tuple[str, str]] = {
    "en_US": ("USD", "en"),
    "en_GB": ("GBP", "en"),
    "en_CA": ("CAD", "en"),
    "en_AU": ("AUD", "en"),
    "es_ES": ("EUR", "eu"),
    "es_MX": ("MXN", "en"),
    "es_AR": ("ARS", "eu"),
    "es_CO": ("COP", "eu"),
    "fr_FR": ("EUR", "fr"),
    "fr_CA": ("CAD", "fr"),
    "fr_CH": ("CHF", "ch"),
    "de_DE": ("EUR", "eu"),
    "de_AT": ("EUR", "eu"),
    "de_CH": ("CHF", "ch"),
}

_CURRENCY_STYLE: Mapping[str, str] = {"EUR": "eu", "CHF": "ch", "ARS": "eu", "COP": "eu"}


def format_money(value: float, currency: str, style: str | None = None) -> str:
    """``value`` written the way a shop in that currency (and style) would."""
    info = CURRENCIES.get(currency, CurrencyInfo(currency, 1.0))
    style = style or _CURRENCY_STYLE.get(currency, "en")
    plain = f"{value:,.{info.decimals}f}"  # 1,234.56
    if style == "en":
        return f"{info.symbol}{plain}" if len(info.symbol) == 1 else f"{plain} {info.symbol}"
    if style == "ch":
        return f"{info.symbol} {plain.replace(',', '’')}"
    grouped = plain.replace(",", "\0").replace(".", ",")
    grouped = grouped.replace("\0", "\u202f" if style == "fr" else ".")
    return f"{grouped} {info.symbol}"


def slugify(text: str) -> str:
    """ASCII lower-case letters and digits of ``text`` (``"Jürgen-Groß"`` → ``"jurgengross"``)."""
    folded = unicodedata.normalize("NFKD", text.replace("ß", "ss")).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
_COUPON_WORDS = ("SPRING", "SUMMER", "AUTUMN", "WINTER", "WELCOME", "VIP", "FLASH", "SAVE", "HELLO", "FRIENDS")

# ---------------------------------------------------------------------------
# Shop data


class SeededProvider(BaseProvider):
    """A provider that draws only from its generator's (seedable) random."""

    @property
    def rng(self) -> random.Random:
        """``self.generator.random``: seeded by ``seed_instance``/``seed_locale``."""
        return cast(random.Random, self.generator.random)


class ShopProvider(SeededProvider):
    """Identifiers, coupon codes and cart items of the fake shop."""

    def __init__(self, generator: Any, *, merchant_id: str = "DEMO", store_domain: str = "www.example.com") -> None:
        super().__init__(generator)
        self.merchant_id = merchant_id
        self.store_domain = store_domain

    # Identifiers

    def shop_uuid(self) -> str:
        """A version-4 UUID drawn from the seeded random."""
        return uuid4_text(self.rng.getrandbits(128))

    def shop_arn(self, kind: str = "participant") -> str:
        """``arn:webchat-sim:<merchant>:<kind>/<uuid>``."""
        return f"arn:webchat-sim:{self.merchant_id}:{kind}/{self.shop_uuid()}"

    def shop_code(self, length: int) -> str:
        """Upper-case letters and digits without look-alikes."""
        rnd = self.rng
        return "".join(rnd.choice(_ALNUM) for _ in range(length))

    def shop_digits(self, length: int) -> str:
        """A string of ``length`` decimal digits, not starting with 0."""
        rnd = self.rng
        return str(rnd.randint(1, 9)) + "".join(str(rnd.randint(0, 9)) for _ in range(length - 1))

    def shop_order_number(self) -> str:
        return self.shop_digits(7)

    def shop_rma_number(self) -> str:
        return f"RMA-{self.shop_digits(6)}"

    def shop_tracking_number(self) -> str:
        """A tracking number in one of the usual carrier formats."""
        rnd = self.rng
        kind = rnd.randrange(5)
        if kind == 0:
            return "1Z" + self.shop_code(6) + self.shop_digits(10)
        if kind == 1:
            return self.shop_digits(12)
        if kind == 2:
            return "9400" + self.shop_digits(18)
        if kind == 3:
            return "JJD" + self.shop_digits(18)
        letters = string.ascii_uppercase
        return rnd.choice(letters) + rnd.choice(letters) + self.shop_digits(9) + rnd.choice(("US", "GB", "FR", "DE"))

    def shop_coupon_code(self) -> str:
        """``SPRING20``, ``WELCOME-7KQ2``, …"""
        rnd = self.rng
        word = rnd.choice(_COUPON_WORDS)
        if rnd.random() < 0.5:
            return f"{word}{rnd.choice((10, 15, 20, 25, 30))}"
        return f"{word}-{self.shop_code(4)}"

    def shop_page_url(self, products: Sequence[str] | None = None) -> str:
        """A page of the storefront."""
        rnd = self.rng
        base = f"https://{self.store_domain}"
        kind = rnd.randrange(4)
        if kind == 0:
            return f"{base}/"
        if kind == 1:
            return f"{base}/cart"
        if kind == 2:
            return f"{base}/checkout"
        index = rnd.randrange(len(CATALOG))
        name = products[index] if products else CATALOG[index].sku
        return f"{base}/products/{_url_slug(name)}"

    # Money and cart items

    def shop_price(self, price_usd: float, currency: str) -> float:
        """A shop price in ``currency`` near ``price_usd`` (``…9.99``-style)."""
        info = CURRENCIES.get(currency, CurrencyInfo(currency, 1.0))
        converted = price_usd * info.per_usd
        if info.decimals == 0:
            return float(max(100, round(converted, -2)))
        return round(max(1.0, round(converted)) - 0.01, 2)

    def shop_currency(self, value: float, currency: str) -> Currency:
        """A ``Currency`` of ``value`` (the shop's own currency: rate 1)."""
        return Currency(
            currency_code=currency,
            exchange_rate=1.0,
            localized=value,
            localized_formatted=format_money(value, currency),
            value=value,
        )

    def shop_cart_items(
        self, count: int | None = None, *, currency: str = "USD", products: Sequence[str] | None = None
    ) -> list[CartItem]:
        """``count`` (1 to 3 if None) different articles.

        ``quantity * unit_cost.value == total_cost.value`` after rounding to
        cents; sized articles sometimes carry size/colour variations, some
        items carry attributes or a gift-wrap option (at no cost).
        """
        rnd = self.rng
        if count is None:
            count = rnd.randint(1, 3)
        if not 0 <= count <= len(CATALOG):
            raise ValueError(f"count must be between 0 and {len(CATALOG)}, got {count}")
        names = products or tuple(item.sku for item in CATALOG)
        base = f"https://{self.store_domain}"
        items: list[CartItem] = []
        for position, index in enumerate(rnd.sample(range(len(CATALOG)), count), start=1):
            article = CATALOG[index]
            name = names[index]
            quantity = float(rnd.choices((1, 2, 3), weights=(6, 3, 1))[0])
            unit = self.shop_price(article.price_usd, currency)
            total = round(quantity * unit, 2)
            item_id = article.sku
            variations: list[CartItemVariationSelection] | None = None
            if article.sized and rnd.random() < 0.7:
                size = rnd.choice(SIZES)
                color = rnd.randrange(len(_COLOR_CODES))
                item_id = f"{article.sku}-{_COLOR_CODES[color]}-{size}"
                variations = [
                    CartItemVariationSelection(variation_name="Size", variation_value=size),
                    CartItemVariationSelection(variation_name="Color", variation_value=_COLOR_NAMES_EN[color]),
                ]
            attributes: list[CartItemAttribute] | None = None
            if rnd.random() < 0.3:
                attributes = [
                    CartItemAttribute(name="season", type="string", value=rnd.choice(("SS26", "FW26", "core"))),
                    CartItemAttribute(name="warehouse", type="string", value=rnd.choice(("EAST", "WEST", "EU1"))),
                ]
            options: list[CartItemOption] | None = None
            if rnd.random() < 0.25:
                options = [
                    CartItemOption(
                        cost_if_specified=self.shop_currency(0.0, currency),
                        ignore_if_default=True,
                        label="Gift wrap",
                        name="gift_wrap",
                        one_time_fee=False,
                        option_oid=rnd.randint(10_000, 99_999),
                        required=False,
                        selected_value=rnd.choice(("None", "Kraft paper", "Holiday")),
                        type=CartItemOptionType.DROPDOWN,
                    )
                ]
            slug = _url_slug(name)
            items.append(
                CartItem(
                    attributes=attributes,
                    default_image_url=f"{base}/images/{article.sku.lower()}.jpg",
                    default_thumbnail_url=f"{base}/images/{article.sku.lower()}-thumb.jpg",
                    description=name,
                    item_id=item_id,
                    item_oid=rnd.randint(100_000, 9_999_999),
                    options=options,
                    position=position,
                    quantity=quantity,
                    total_cost=self.shop_currency(total, currency),
                    unit_cost=self.shop_currency(unit, currency),
                    variations=variations,
                    view_url=f"{base}/products/{slug}",
                )
            )
        return items


def _url_slug(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name.replace("ß", "ss")).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-")


# ---------------------------------------------------------------------------
# Chat text

SLOTS: frozenset[str] = frozenset(
    {
        "order",
        "tracking",
        "product",
        "product2",
        "color",
        "size",
        "size2",
        "cm",
        "cm2",
        "date",
        "weekday",
        "days",
        "hours",
        "amount",
        "carrier",
        "city",
        "country",
        "rma",
        "coupon",
        "percent",
        "last4",
        "count",
        "url",
    }
)
"""Slots a provider fills by itself (a value given for one is used instead);
the :data:`GIVEN_SLOTS` are filled only when given."""

NAME_SLOTS: frozenset[str] = frozenset({"agent", "customer"})

GIVEN_SLOTS: frozenset[str] = NAME_SLOTS | {"email"}
"""Slots filled only when given: ``{agent}`` and ``{customer}`` (names),
``{email}`` (the customer's address); templates that need a missing one are
skipped."""


class ChatTextProvider(SeededProvider):
    """The lines of a support chat in the language of one Faker locale."""

    def __init__(self, generator: Any, *, phrasebook: Phrasebook, locale: str, shop: ShopProvider) -> None:
        super().__init__(generator)
        self.phrasebook = phrasebook
        self.chat_locale = locale
        self.shop = shop
        self._currency, self._money_style = LOCALE_CURRENCY.get(locale, ("USD", "en"))

    # Lines

    def chat_question(self, topic: Topic | None = None) -> tuple[Topic, str]:
        """An opening question about ``topic`` (a random one if None)."""
        rnd = self.rng
        if topic is None:
            topic = rnd.choice(tuple(Topic))
        return topic, self.chat_fill(rnd.choice(self.phrasebook.questions[topic]))

    def chat_followup(self, topic: Topic) -> str:
        """A customer's later line about ``topic``."""
        return self.chat_fill(self.rng.choice(self.phrasebook.followups[topic]))

    def chat_reply(
        self,
        topic: Topic,
        *,
        first: bool = False,
        agent_name: str | None = None,
        customer_name: str | None = None,
        slots: Mapping[str, str] | None = None,
        prefer: Collection[str] = (),
    ) -> str:
        """An agent's answer about ``topic``; ``first`` prefixes a greeting.
        ``slots`` fixes some slot values (e.g. the ``coupon`` actually pushed,
        the order number the customer gave) and makes the templates of the
        :data:`GIVEN_SLOTS` it fills usable; with ``prefer`` (slot names) the
        answer is drawn among the templates using the most of those slots, if
        any uses one (so the answer mentions what the customer just said)."""
        values = {**(slots or {}), **_names(agent=agent_name, customer=customer_name)}
        templates = _usable(self.phrasebook.replies[topic], values)
        if prefer:
            templates = _preferring(templates, frozenset(prefer))
        answer = self.chat_fill(self.rng.choice(templates), values)
        if not first:
            return answer
        return f"{self.chat_greeting(agent_name=agent_name, customer_name=customer_name)} {answer}"

    def chat_greeting(self, *, agent_name: str | None = None, customer_name: str | None = None) -> str:
        """An agent's opening line (naming the agent/customer when given)."""
        names = _names(agent=agent_name, customer=customer_name)
        return self.chat_fill(self.rng.choice(_usable(self.phrasebook.greetings, names)), names)

    def chat_goodbye(self, *, agent: bool = False, name: str | None = None) -> str:
        """A goodbye; ``name`` is the other party's (the agent's for a customer)."""
        book = self.phrasebook
        templates = book.agent_goodbyes if agent else book.customer_goodbyes
        names = _names(customer=name) if agent else _names(agent=name)
        return self.chat_fill(self.rng.choice(_usable(templates, names)), names)

    # Slots

    def chat_fill(self, template: str, given: Mapping[str, str] | None = None) -> str:
        """``template`` with its slots filled (``given`` values first)."""
        values: dict[str, str] = dict(given or {})
        for slot in sorted(template_slots(template)):  # "cm" < "cm2", "product" < "product2", "size" < "size2"
            if slot not in values:
                values[slot] = self._slot(slot, values)
        return template.format_map(values)

    def chat_amount(self, low_usd: float = 15.0, high_usd: float = 250.0) -> str:
        """An amount of money in the locale's currency, written its way."""
        usd = self.rng.uniform(low_usd, high_usd)
        value = self.shop.shop_price(usd, self._currency)
        return format_money(value, self._currency, self._money_style)

    def chat_date(self) -> str:
        """A day of the year written the language's way (no clock involved)."""
        rnd = self.rng
        book = self.phrasebook
        return book.date_format.format(day=rnd.randint(1, 28), month=rnd.choice(book.months))

    def _slot(self, slot: str, values: Mapping[str, str]) -> str:
        rnd = self.rng
        book = self.phrasebook
        shop = self.shop
        match slot:
            case "order":
                return shop.shop_order_number()
            case "tracking":
                return shop.shop_tracking_number()
            case "product":
                return rnd.choice(book.products)
            case "product2":
                return rnd.choice([p for p in book.products if p != values.get("product")])
            case "color":
                return rnd.choice(book.colors)
            case "size":
                return rnd.choice(SIZES[:-1])
            case "size2":
                size = values.get("size")
                return SIZES[SIZES.index(size) + 1] if size in SIZES[:-1] else rnd.choice(SIZES[1:])
            case "cm":
                return str(rnd.randint(84, 118))
            case "cm2":
                return str(rnd.randint(62, 78))
            case "date":
                return self.chat_date()
            case "weekday":
                return rnd.choice(book.weekdays)
            case "days":
                return str(rnd.randint(2, 7))
            case "hours":
                return str(rnd.choice((24, 48, 72)))
            case "amount":
                return self.chat_amount()
            case "carrier":
                return rnd.choice(book.carriers)
            case "city":
                return str(self.generator.city())
            case "country":
                return rnd.choice(book.countries)
            case "rma":
                return shop.shop_rma_number()
            case "coupon":
                return shop.shop_coupon_code()
            case "percent":
                coupon = values.get("coupon", "")  # "SPRING20" takes 20 %
                return coupon[-2:] if coupon[-2:].isdigit() else str(rnd.choice((10, 15, 20, 25, 30)))
            case "last4":
                return f"{rnd.randrange(10_000):04d}"
            case "count":
                return str(rnd.randint(2, 3))
            case "url":
                return f"https://{shop.store_domain}/size-chart"
        raise KeyError(f"unknown slot {{{slot}}} in a {book.language!r} template")


def _names(*, agent: str | None = None, customer: str | None = None) -> dict[str, str]:
    names: dict[str, str] = {}
    if agent:
        names["agent"] = agent
    if customer:
        names["customer"] = customer
    return names


def _usable(templates: Sequence[str], given: Mapping[str, str]) -> Sequence[str]:
    """The templates whose :data:`GIVEN_SLOTS` are all given."""
    usable = [t for t in templates if (template_slots(t) & GIVEN_SLOTS) <= given.keys()]
    return usable or templates


def _preferring(templates: Sequence[str], prefer: frozenset[str]) -> Sequence[str]:
    """The templates that use the most of the ``prefer`` slots (all if none uses one)."""
    counts = [len(template_slots(t) & prefer) for t in templates]
    best = max(counts, default=0)
    if best == 0:
        return templates
    return [t for t, count in zip(templates, counts, strict=True) if count == best]
