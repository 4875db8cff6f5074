"""What a customer said that an answer should repeat: order numbers, products,
e-mail addresses, tracking numbers, card digits, sizes and colours.

:class:`SlotExtractor` finds, in a customer's text, the values of the
template slots of :data:`simulator.fake.providers.SLOTS` a person would type
and expect to hear back (the order number they asked about, the product they
named), so an autopilot agent answers about *that* order rather than a
random one. It understands every phrasebook language at once (customers do
not always write in the language they chose) and writes values in the
language of the answer: a product named in any language is the same article
(``Phrasebook.products`` is aligned with the catalogue) named in the answer's
language.

What it recognises (keywords from :attr:`Phrasebook.references`, over
:func:`~simulator.fake.phrasebook.normalize`-d text):

* ``order`` — 4 to 12 digits after ``#``, ``n°``, ``Nr.``, ``No.`` or an order keyword and its
  usual fillers: ``#48213``, ``order 48213``, ``order number is 48213``,
  ``pedido n.º 48213``, ``commande est la n° 48213``, ``Bestellnummer ist
  48213``;
* ``email`` — an e-mail address;
* ``product`` and ``product2`` — the first two catalogue articles named, by
  their full name in any language (case, accents, hyphens and quotes do not
  matter: ``alpine shell jacket``, ``T shirt en coton bio``);
* ``tracking`` — a number in a carrier format (``1Z…``, ``JJD…``, ``9400…``,
  ``AB123456789US``), or 10 to 34 letters and digits a few words after a
  tracking keyword (``the tracking number I have is …``);
* ``last4`` — four digits after ``card ending in`` and its translations;
* ``size`` and ``size2`` — the sizes written as such (``M``, ``XL``;
  ``size m``), the smaller first;
* ``color`` — a colour of the answer's language.

Nothing found, no key: the provider then draws a value as usual.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from .phrasebook import Phrasebook, normalize
from .providers import SIZES

__all__ = ["SlotExtractor"]

_DIGITS = r"(\d{4,12})(?!\d)"
_ORDER_MARK = r"(?<![\w#])#|\bn ?°|\bn\.o\b\.?|\bnr\b\.?|\bno\."  # "#", "n°", "n.º" normalized, "Nr.", "No."
_ORDER_SEPARATOR = r"[ :#°.-]*"
_TRACKING_VALUE = r"(?=[a-z0-9]{10,34}(?![a-z0-9]))([a-z]*\d[a-z0-9]*)"
_TRACKING_FORMATS = re.compile(r"\b(1Z[0-9A-Z]{16}|9400\d{18}|JJD\d{18}|[A-Z]{2}\d{9}[A-Z]{2})\b")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_SIZES_LONGEST_FIRST = sorted(SIZES, key=len, reverse=True)
_SIZE_TOKEN = re.compile(r"(?<![\w'’.-])(" + "|".join(_SIZES_LONGEST_FIRST) + r")(?![\w'’-])")
_SIZE_WORD = re.compile(
    r"\b(?:size|talla|taille|grosse)s? (" + "|".join(s.lower() for s in _SIZES_LONGEST_FIRST) + r")(?![\w'’-])"
)


def _key(text: str) -> str:
    """``text`` for name matching: normalized, only letters and digits, single spaces."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", normalize(text)).split())


def _alternation(patterns: Iterable[str]) -> str:
    return "|".join(f"(?:{p})" for p in dict.fromkeys(patterns))


def _names(names: Mapping[str, int]) -> re.Pattern[str]:
    """A pattern finding any of ``names`` (keys as :func:`_key` writes them) as whole words."""
    ordered = sorted(names, key=len, reverse=True)  # the longest name wins at a position
    return re.compile(r"(?<![a-z0-9])(" + "|".join(re.escape(n) for n in ordered) + r")(?![a-z0-9])")


class SlotExtractor:
    """Finds slot values in a customer's text (see the module documentation)."""

    __slots__ = ("_books", "_colors", "_last4", "_order", "_product_index", "_products", "_tracking")

    def __init__(self, books: Mapping[str, Phrasebook]) -> None:
        self._books = dict(books)
        every = list(books.values())
        intros = [f"(?:{_ORDER_MARK}) ?"]
        if orders := _alternation(p for book in every for p in book.references.get("order", ())):
            intros.insert(0, f"(?:{orders}){_ORDER_SEPARATOR}")
        self._order = re.compile(f"(?:{'|'.join(intros)}){_DIGITS}")
        trackings = _alternation(p for book in every for p in book.references.get("tracking", ()))
        self._tracking = (
            re.compile(f"(?:{trackings})(?: [a-z']+){{0,4}}?[ :#.-]+{_TRACKING_VALUE}") if trackings else None
        )
        last4 = _alternation(p for book in every for p in book.references.get("last4", ()))
        self._last4 = re.compile(f"(?:{last4})[ :]*(\\d{{4}})(?!\\d)") if last4 else None
        index: dict[str, int] = {}
        for book in every:
            for i, name in enumerate(book.products):
                index.setdefault(_key(name), i)
        self._product_index = index
        self._products = _names(index) if index else None
        self._colors: dict[str, tuple[re.Pattern[str], dict[str, int]]] = {}
        for language, book in books.items():
            colors = {_key(color): i for i, color in enumerate(book.colors)}
            if colors:
                self._colors[language] = (_names(colors), colors)

    def __call__(self, text: str, language: str) -> dict[str, str]:
        """The slot values ``text`` gives, written for an answer in ``language``
        (a phrasebook language); slots it does not mention are absent."""
        book = self._books.get(language)
        if book is None:
            raise ValueError(f"no phrasebook for {language!r}; choose from {list(self._books)}")
        plain = " ".join(normalize(text).split())
        key = _key(text)
        found: dict[str, str] = {}
        if (order := self._order.search(plain)) is not None:
            found["order"] = order.group(1)
        if (email := _EMAIL.search(text)) is not None:
            found["email"] = email.group(0)
        self._find_products(key, book.products, found)
        if (tracking := _TRACKING_FORMATS.search(text)) is not None:
            found["tracking"] = tracking.group(1)
        elif (
            self._tracking is not None
            and (match := self._tracking.search(plain)) is not None
            and match.group(1) != found.get("order")
        ):
            found["tracking"] = match.group(1).upper()
        if self._last4 is not None and (last4 := self._last4.search(plain)) is not None:
            found["last4"] = last4.group(1)
        self._find_sizes(text, plain, found)
        if (colors := self._colors.get(language)) is not None and (color := colors[0].search(key)) is not None:
            found["color"] = book.colors[colors[1][color.group(1)]]
        return found

    def _find_products(self, key: str, products: Sequence[str], found: dict[str, str]) -> None:
        if self._products is None:
            return
        seen: list[int] = []
        for match in self._products.finditer(key):
            index = self._product_index[match.group(1)]
            if index not in seen and index < len(products):
                seen.append(index)
        for slot, index in zip(("product", "product2"), seen, strict=False):
            found[slot] = products[index]

    @staticmethod
    def _find_sizes(text: str, plain: str, found: dict[str, str]) -> None:
        sizes = {m.group(1) for m in _SIZE_TOKEN.finditer(text)}
        sizes.update(m.group(1).upper() for m in _SIZE_WORD.finditer(plain))
        for slot, size in zip(("size", "size2"), sorted(sizes, key=SIZES.index), strict=False):
            found[slot] = size
