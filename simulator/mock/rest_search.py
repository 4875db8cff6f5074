"""``POST /conversation/conversations/search`` (the SDK's ``get_conversations_search``)
over the engine, sans I/O: a handler of :mod:`.rest`'s table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..protocol import Medium
from .rest_models import (
    BodySpec,
    Caller,
    Field,
    RestError,
    RestResult,
    caller_arn,
    engine_of,
    epoch_param,
    parse_body,
    wire,
)
from .rules import LIMITS

__all__ = ["SEARCH_REQUEST", "search_conversations"]

_ID = Field((str,), max_length=LIMITS.identifier)
_NAME = Field((str,), max_length=LIMITS.name)
_LANGUAGE = Field((str,), max_length=LIMITS.language)


SEARCH_REQUEST: BodySpec = {
    "date_end": _ID,
    "date_start": _ID,
    "email_filter": Field((str,), max_length=LIMITS.email),
    "language_filter": _LANGUAGE,
    "medium_filter": _ID,
    "order_by_newest": Field((bool,)),
    "order_by_oldest": Field((bool,)),
    "range_begin": Field((int,), bounds=(0, 10**9)),
    "range_end": Field((int,), bounds=(0, 10**9)),
    "sms_phone_number_filter": _ID,
    "text_search": _NAME,
    "visible_filter": Field((bool,)),
}


def search_conversations(
    core: Any, caller: Caller, params: Mapping[str, str], body: bytes | None, now: float
) -> RestResult:
    """``POST /conversation/conversations/search`` (``ConversationSearchRequest``)
    → ``ConversationSearchResponse`` (``records`` ``range_begin``..``range_end``
    of ``total``): the conversations the caller may see, filtered by customer
    email (substring, any case), language, started within ``date_start`` ..
    ``date_end``, ``text_search`` in a message body or the customer's name
    (any case); newest first unless ``order_by_oldest``. SMS filters match nothing."""
    request = parse_body(body, SEARCH_REQUEST)
    engine = engine_of(core)
    arn = caller_arn(engine, caller)
    found = engine.visible_conversations(caller.role, arn=arn, name=caller.name, queues=caller.queues)
    if request.get("medium_filter", Medium.WEBSOCKET.value) != Medium.WEBSOCKET.value or request.get(
        "sms_phone_number_filter"
    ):
        found = []
    if email := str(request.get("email_filter", "")).lower():
        found = [c for c in found if email in (c.customer.email or "").lower()]
    if language := request.get("language_filter"):
        found = [c for c in found if (c.customer.language or "") == language]
    if start := request.get("date_start"):
        low = epoch_param("date_start", start)
        found = [c for c in found if c.start_ms >= low]
    if end := request.get("date_end"):
        high = epoch_param("date_end", end)
        found = [c for c in found if c.start_ms <= high]
    if text := str(request.get("text_search", "")).lower():
        found = [
            c
            for c in found
            if text in c.customer.name.lower() or any(text in (m.model.body or "").lower() for m in c.messages)
        ]
    if request.get("order_by_oldest") and not request.get("order_by_newest"):
        found.reverse()
    begin = request.get("range_begin", 0)
    end_index = request.get("range_end", begin + 25)
    if end_index < begin:
        raise RestError(400, "invalid_value", f"range_end: must be >= range_begin ({begin}), got {end_index}")
    page = found[begin : min(end_index, begin + 200)]
    result = {
        "range_begin": begin,
        "range_end": begin + len(page),
        "records": [wire(c.summary()) for c in page],
        "total": len(found),
    }
    return RestResult(200, result)
