"""Canned agent replies for the REST API (``ConversationCannedMessage``), made
by :class:`~simulator.fake.ChatFaker` from the phrasebooks: per language, a
greeting, one reply per :class:`~simulator.fake.Topic` and a goodbye, with
short codes such as ``en-greeting``, ``fr-order-status`` or ``de-goodbye``.
Seeded, so they are the same on every run."""

from __future__ import annotations

from functools import cache
from typing import Any

from ..fake import PHRASEBOOKS, ChatFaker, Topic

__all__ = ["canned_messages"]


def _code(language: str, what: str) -> str:
    return f"{language}-{what.replace(' ', '-')}"


@cache
def canned_messages() -> tuple[dict[str, Any], ...]:
    """Every canned message, ``conversation_canned_message_oid`` 1, 2, …"""
    faker = ChatFaker(0)
    texts: list[tuple[str, str]] = []
    for language in PHRASEBOOKS:
        texts.append((_code(language, "greeting"), faker.greeting(language)))
        texts.extend((_code(language, topic.value), faker.agent_reply(topic, language)) for topic in Topic)
        texts.append((_code(language, "goodbye"), faker.goodbye(language, agent=True)))
    return tuple(
        {"canned_message": text, "conversation_canned_message_oid": oid, "short_code": code}
        for oid, (code, text) in enumerate(texts, start=1)
    )
