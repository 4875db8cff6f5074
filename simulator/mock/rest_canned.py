"""Canned agent replies for the REST API (``ConversationCannedMessage``):
the list, the search and the SDK's insert / update / delete.

The starting set is made by :class:`~simulator.fake.ChatFaker` from the
phrasebooks: per language, a greeting, one reply per
:class:`~simulator.fake.Topic` and a goodbye, with short codes such as
``en-greeting``, ``fr-order-status`` or ``de-goodbye``; seeded, so it is the
same on every run. Each engine (each server run) gets its own editable copy
(:func:`store_of`): what one run inserts, changes or deletes is that run's.
Every agent of the merchant shares it, as in UltraCart.
"""

from __future__ import annotations

import weakref
from functools import cache
from typing import Any

from ..fake import PHRASEBOOKS, ChatFaker, Topic
from .rest_models import (
    BodySpec,
    Caller,
    Field,
    RestError,
    RestResult,
    agent_only,
    engine_of,
    int_param,
    ok,
    parse_body,
)
from .rules import LIMITS

__all__ = [
    "CannedStore",
    "canned_messages",
    "delete_canned_message",
    "get_canned_messages",
    "insert_canned_message",
    "search_canned_messages",
    "store_of",
    "update_canned_message",
]

MAX_CANNED = 1_000
"""Most canned messages a run keeps (409 beyond)."""
MAX_TEXT = 4_000
"""Longest ``canned_message`` text (400 beyond); short codes: 100 characters."""


def _code(language: str, what: str) -> str:
    return f"{language}-{what.replace(' ', '-')}"


@cache
def canned_messages() -> tuple[dict[str, Any], ...]:
    """The starting set, ``conversation_canned_message_oid`` 1, 2, …"""
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


class CannedStore:
    """One run's canned messages by oid (insertion order)."""

    def __init__(self) -> None:
        self.messages: dict[int, dict[str, Any]] = {
            m["conversation_canned_message_oid"]: dict(m) for m in canned_messages()
        }
        self._next_oid = max(self.messages, default=0) + 1

    def insert(self, fields: dict[str, Any]) -> dict[str, Any]:
        if len(self.messages) >= MAX_CANNED:
            raise RestError(409, "too_many_canned_messages", f"at most {MAX_CANNED} canned messages")
        oid, self._next_oid = self._next_oid, self._next_oid + 1
        message = {**fields, "conversation_canned_message_oid": oid}
        self.messages[oid] = message
        return message

    def get(self, oid: int) -> dict[str, Any]:
        message = self.messages.get(oid)
        if message is None:
            raise RestError(404, "canned_message_not_found", f"no canned message {oid}", object_id=str(oid))
        return message


_STORES: weakref.WeakKeyDictionary[Any, CannedStore] = weakref.WeakKeyDictionary()


def store_of(engine: Any) -> CannedStore:
    """The canned messages of ``engine``'s run (made on first use)."""
    store = _STORES.get(engine)
    if store is None:
        store = _STORES[engine] = CannedStore()
    return store


CANNED_MESSAGE: BodySpec = {
    "canned_message": Field((str,)),
    "conversation_canned_message_oid": Field((int,)),
    "conversation_department_oids": Field((list,), items=int, max_length=LIMITS.entries),
    "short_code": Field((str,)),
}
CANNED_SEARCH: BodySpec = {
    "max_results": Field((int,), bounds=(1, 10_000)),
    "short_code": Field((str,), max_length=LIMITS.name),
}


def _checked(body: bytes | None, *, partial: bool) -> dict[str, Any]:
    """A ``ConversationCannedMessage`` body: ``short_code`` and
    ``canned_message`` required (unless ``partial``), non-empty, bounded."""
    fields = parse_body(body, CANNED_MESSAGE)
    fields.pop("conversation_canned_message_oid", None)  # the path's oid wins; the server picks new ones
    for name, limit in (("short_code", 100), ("canned_message", MAX_TEXT)):
        value = fields.get(name)
        if value is None:
            if not partial:
                raise RestError(400, "missing_field", f"{name}: required")
            continue
        if not value.strip():
            raise RestError(400, "invalid_value", f"{name}: must not be empty")
        if len(value) > limit:
            raise RestError(400, "invalid_value", f"{name}: {len(value)} characters, limit {limit}")
    return fields


def get_canned_messages(core: Any, caller: Caller, params: Any, body: bytes | None, now: float) -> RestResult:
    """``GET /conversation/canned_messages`` → ``ConversationCannedMessagesResponse``."""
    agent_only(caller)
    return RestResult(200, ok({"conversation_canned_messages": list(store_of(engine_of(core)).messages.values())}))


def search_canned_messages(core: Any, caller: Caller, params: Any, body: bytes | None, now: float) -> RestResult:
    """``POST /conversation/canned_messages/search`` (``ConversationCannedMessagesSearch``):
    the canned messages whose ``short_code`` contains ``short_code`` (any case)."""
    agent_only(caller)
    request = parse_body(body, CANNED_SEARCH)
    needle = str(request.get("short_code", "")).lower()
    found = [m for m in store_of(engine_of(core)).messages.values() if needle in str(m["short_code"]).lower()]
    found = found[: request.get("max_results", len(found))]
    return RestResult(200, ok({"conversation_canned_messages": found}))


def insert_canned_message(core: Any, caller: Caller, params: Any, body: bytes | None, now: float) -> RestResult:
    """``POST /conversation/canned_messages`` (``ConversationCannedMessage``) →
    ``ConversationCannedMessageResponse`` with its new oid."""
    agent_only(caller)
    message = store_of(engine_of(core)).insert(_checked(body, partial=False))
    return RestResult(200, ok({"conversation_canned_message": message}))


def _oid(params: Any) -> int:
    return int_param(
        "conversation_canned_message_oid", params.get("conversation_canned_message_oid"), default=0, low=1, high=2**31
    )


def update_canned_message(core: Any, caller: Caller, params: Any, body: bytes | None, now: float) -> RestResult:
    """``PUT /conversation/canned_messages/{oid}`` → ``ConversationCannedMessageResponse``
    (the fields given replace the stored ones; 404: no such oid)."""
    agent_only(caller)
    message = store_of(engine_of(core)).get(_oid(params))
    message.update(_checked(body, partial=True))
    return RestResult(200, ok({"conversation_canned_message": message}))


def delete_canned_message(core: Any, caller: Caller, params: Any, body: bytes | None, now: float) -> RestResult:
    """``DELETE /conversation/canned_messages/{oid}``: 204 (404: no such oid)."""
    agent_only(caller)
    store = store_of(engine_of(core))
    del store.messages[store.get(_oid(params))["conversation_canned_message_oid"]]
    return RestResult(204, None)
