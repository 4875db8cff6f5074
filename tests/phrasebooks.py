"""Telling whether a text is a line a phrasebook can produce (for the fake
data, autopilot and brain tests)."""

from __future__ import annotations

import re
import string
from functools import cache

from simulator.fake import PHRASEBOOKS, Topic

__all__ = ["from_book"]

_FORMATTER = string.Formatter()


def _template_regex(template: str) -> str:
    out = ""
    for literal, slot, _, _ in _FORMATTER.parse(template):
        out += re.escape(literal)
        if slot:
            out += ".+?"
    return out


@cache
def _matcher(language: str, kind: str) -> re.Pattern[str]:
    """One regex matching exactly the lines a phrasebook can produce."""
    book = PHRASEBOOKS[language]
    templates: list[str] = []
    if kind in ("questions", "followups", "replies"):
        table: dict[Topic, tuple[str, ...]] = getattr(book, kind)
        templates = [t for ts in table.values() for t in ts]
    else:
        templates = list(getattr(book, kind))
    return re.compile("|".join(f"(?:{_template_regex(t)})" for t in templates))


def from_book(language: str, kind: str, text: str) -> bool:
    return _matcher(language, kind).fullmatch(text) is not None
