"""Fake rrweb session recordings and the chunking of ``rrweb`` events.

A webchat widget records the visitor's page with rrweb and streams it to the
agent in ``rrweb`` events (``ConversationEventRRWeb``). This module produces
plausible recordings and splits them into such events.

The chunk convention (what :func:`split_recording` writes and
:func:`join_recording` checks):

* A *recording* is one JSON array of rrweb events, serialized to a string.
  The ``init`` recording holds a Meta event (type 4) and a FullSnapshot
  (type 2); each ``events`` recording holds IncrementalSnapshot events
  (type 3: mouse moves, clicks, scrolls, inputs). Timestamps increase
  strictly across all recordings of one page view.
* Each recording has its own ``event_index``: ``0`` for the ``init``
  recording, then ``1``, ``2``, … for the ``events`` recordings (offset by
  ``first_index``). Its chunks are sent in order, ``init`` first.
* A recording's string is cut into ``data_total_parts`` parts; each part's
  UTF-8 encoding is at most ``chunk_size`` bytes and parts are cut only on
  code point boundaries. Parts are numbered by ``data_part`` from 1.
* ``data_sha256`` is the lower-case hex SHA-256 of that part's ``data``
  encoded as UTF-8; ``data_total_sha256`` is the hex SHA-256 of the
  concatenation of all parts of the same ``event_index`` (that is, of the
  whole recording), repeated in every chunk of that recording.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from ..protocol import ConversationEventRRWeb, RRWebType
from .providers import SeededProvider

__all__ = [
    "RRWebProvider",
    "join_recording",
    "sha256_hex",
    "split_recording",
]

# rrweb event and node types (rrweb/packages/types)
_FULL_SNAPSHOT = 2
_INCREMENTAL = 3
_META = 4
_NODE_DOCUMENT, _NODE_DOCTYPE, _NODE_ELEMENT, _NODE_TEXT = 0, 1, 2, 3
# IncrementalSource
_MOUSE_MOVE, _MOUSE_INTERACTION, _SCROLL, _VIEWPORT_RESIZE, _INPUT = 1, 2, 3, 4, 5
# MouseInteractions
_MOUSE_UP, _MOUSE_DOWN, _CLICK, _FOCUS, _BLUR = 0, 1, 2, 5, 6

_VIEWPORTS = ((1440, 900), (1920, 1080), (1366, 768), (390, 844), (414, 896), (1280, 800))
_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode()).hexdigest()


def _cut(data: str, chunk_size: int) -> list[str]:
    raw = data.encode()
    parts: list[str] = []
    start = 0
    while start < len(raw):
        end = min(start + chunk_size, len(raw))
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:  # never split a code point
            end -= 1
        parts.append(raw[start:end].decode())
        start = end
    return parts or [""]


def split_recording(
    data: str, *, kind: RRWebType, event_index: int, chunk_size: int = 4096
) -> list[ConversationEventRRWeb]:
    """The ``rrweb`` event payloads that carry one recording (see module doc)."""
    if chunk_size < 4:
        raise ValueError(f"chunk_size must be at least 4 bytes, got {chunk_size}")
    parts = _cut(data, chunk_size)
    total = sha256_hex(data)
    return [
        ConversationEventRRWeb(
            data=part,
            data_part=number,
            data_sha256=sha256_hex(part),
            data_total_parts=len(parts),
            data_total_sha256=total,
            event_index=event_index,
            type=kind,
        )
        for number, part in enumerate(parts, start=1)
    ]


def join_recording(chunks: Iterable[ConversationEventRRWeb]) -> str:
    """Reassemble one recording from its chunks (in any order), checking the
    numbering and both hashes; raise ``ValueError`` naming what is wrong."""
    by_part: dict[int, ConversationEventRRWeb] = {}
    for chunk in chunks:
        if chunk.data is None or chunk.data_part is None or chunk.data_total_parts is None:
            raise ValueError("chunk without data, data_part or data_total_parts")
        if chunk.data_sha256 != sha256_hex(chunk.data):
            raise ValueError(f"part {chunk.data_part}: data_sha256 does not match its data")
        if chunk.data_part in by_part:
            raise ValueError(f"part {chunk.data_part} appears twice")
        by_part[chunk.data_part] = chunk
    if not by_part:
        raise ValueError("no chunks")
    first = next(iter(by_part.values()))
    expected = first.data_total_parts or 0
    if sorted(by_part) != list(range(1, expected + 1)):
        raise ValueError(f"parts {sorted(by_part)} do not make 1..{expected}")
    for chunk in by_part.values():
        if (chunk.event_index, chunk.type, chunk.data_total_parts, chunk.data_total_sha256) != (
            first.event_index,
            first.type,
            first.data_total_parts,
            first.data_total_sha256,
        ):
            raise ValueError(f"part {chunk.data_part} disagrees with part {first.data_part} on the recording")
    data = "".join(by_part[number].data or "" for number in range(1, expected + 1))
    if sha256_hex(data) != first.data_total_sha256:
        raise ValueError("data_total_sha256 does not match the concatenated parts")
    return data


class _Dom:
    """Builds an rrweb serialized DOM, numbering nodes from 1."""

    def __init__(self) -> None:
        self.next_id = 1
        self.inputs: list[int] = []
        self.clickables: list[int] = []

    def _id(self) -> int:
        node_id = self.next_id
        self.next_id += 1
        return node_id

    def text(self, content: str) -> dict[str, Any]:
        return {"type": _NODE_TEXT, "textContent": content, "id": self._id()}

    def element(self, tag: str, attributes: dict[str, Any] | None = None, *children: dict[str, Any]) -> dict[str, Any]:
        node_id = self._id()
        if tag in ("input", "textarea", "select"):
            self.inputs.append(node_id)
        if tag in ("a", "button"):
            self.clickables.append(node_id)
        return {
            "type": _NODE_ELEMENT,
            "tagName": tag,
            "attributes": attributes or {},
            "childNodes": list(children),
            "id": node_id,
        }


class RRWebProvider(SeededProvider):
    """rrweb recordings of a product page with a webchat widget."""

    def rrweb_events(
        self,
        count: int = 50,
        *,
        url: str = "https://www.example.com/",
        title: str = "Shop",
        language: str = "en",
        typed: Sequence[str] = ("hello",),
        start_ms: int | None = None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``(init, incremental)``: the Meta + FullSnapshot events and
        ``count`` IncrementalSnapshot events, timestamps strictly increasing.
        Input events type the strings of ``typed`` character by character."""
        rnd = self.rng
        now = start_ms if start_ms is not None else _START_MS + rnd.randrange(365 * 86_400_000)
        width, height = rnd.choice(_VIEWPORTS)
        dom = _Dom()
        document = self._document(dom, title=title, language=language)
        meta_at, now = now, now + rnd.randint(1, 30)
        init: list[dict[str, Any]] = [
            {"type": _META, "data": {"href": url, "width": width, "height": height}, "timestamp": meta_at},
            {
                "type": _FULL_SNAPSHOT,
                "data": {"node": document, "initialOffset": {"left": 0, "top": 0}},
                "timestamp": now,
            },
        ]
        targets = dom.clickables + dom.inputs
        events: list[dict[str, Any]] = []
        scroll_y = 0
        texts = tuple(typed) or ("ok",)
        pending = rnd.choice(texts)
        typed_so_far = ""
        field = rnd.choice(dom.inputs)
        while len(events) < count:
            now += rnd.randint(16, 900)
            roll = rnd.random()
            if roll < 0.4:
                steps = rnd.randint(1, 6)
                positions = [
                    {
                        "x": rnd.randrange(width),
                        "y": rnd.randrange(height),
                        "id": rnd.choice(targets),
                        "timeOffset": -16 * (steps - step),
                    }
                    for step in range(steps)
                ]
                data: dict[str, Any] = {"source": _MOUSE_MOVE, "positions": positions}
            elif roll < 0.6:
                kind = rnd.choice((_MOUSE_DOWN, _MOUSE_UP, _CLICK, _CLICK, _FOCUS, _BLUR))
                data = {
                    "source": _MOUSE_INTERACTION,
                    "type": kind,
                    "id": rnd.choice(targets),
                    "x": rnd.randrange(width),
                    "y": rnd.randrange(height),
                }
            elif roll < 0.75:
                scroll_y = max(0, scroll_y + rnd.randint(-300, 600))
                data = {"source": _SCROLL, "id": 1, "x": 0, "y": scroll_y}
            elif roll < 0.77:
                width, height = rnd.choice(_VIEWPORTS)
                data = {"source": _VIEWPORT_RESIZE, "width": width, "height": height}
            else:
                if len(typed_so_far) >= len(pending):
                    field = rnd.choice(dom.inputs)
                    typed_so_far = ""
                    pending = rnd.choice(texts)
                typed_so_far = pending[: len(typed_so_far) + rnd.randint(1, 3)]
                data = {"source": _INPUT, "text": typed_so_far, "isChecked": False, "id": field}
            events.append({"type": _INCREMENTAL, "data": data, "timestamp": now})
        return init, events

    def rrweb_recording(
        self,
        count: int = 50,
        *,
        chunk_size: int = 4096,
        batch_size: int = 25,
        first_index: int = 0,
        url: str = "https://www.example.com/",
        title: str = "Shop",
        language: str = "en",
        typed: Sequence[str] = ("hello",),
        start_ms: int | None = None,
    ) -> list[ConversationEventRRWeb]:
        """The chunks of one page view: the ``init`` recording (``event_index``
        ``first_index``), then the ``count`` incremental events in recordings of
        at most ``batch_size`` events, indexes ``first_index + 1``, …"""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        init, events = self.rrweb_events(
            count, url=url, title=title, language=language, typed=typed, start_ms=start_ms
        )
        chunks = split_recording(_dumps(init), kind=RRWebType.INIT, event_index=first_index, chunk_size=chunk_size)
        for batch, start in enumerate(range(0, len(events), batch_size), start=1):
            data = _dumps(events[start : start + batch_size])
            chunks += split_recording(
                data, kind=RRWebType.EVENTS, event_index=first_index + batch, chunk_size=chunk_size
            )
        return chunks

    def _document(self, dom: _Dom, *, title: str, language: str) -> dict[str, Any]:
        rnd = self.rng
        el, tx = dom.element, dom.text
        doc_id = dom._id()
        doctype = {"type": _NODE_DOCTYPE, "name": "html", "publicId": "", "systemId": "", "id": dom._id()}
        nav = el(
            "nav",
            {"class": "site-nav"},
            *(el("a", {"href": f"/{section}"}, tx(section.title())) for section in ("new", "men", "women", "sale")),
        )
        product = el(
            "main",
            {"class": "product"},
            el("h1", {"class": "product-title"}, tx(title)),
            el("img", {"src": "/images/product.jpg", "alt": title, "width": "640", "height": "800"}),
            el("span", {"class": "price"}, tx(f"{rnd.randint(19, 199)}.99")),
            el(
                "form",
                {"action": "/cart/add", "method": "post"},
                el("select", {"name": "size"}, *(el("option", {"value": s}, tx(s)) for s in ("S", "M", "L", "XL"))),
                el("input", {"type": "number", "name": "quantity", "value": "1"}),
                el("button", {"type": "submit", "class": "add-to-cart"}, tx("Add to cart")),
            ),
        )
        widget = el(
            "div",
            {"id": "uc-webchat", "class": "webchat webchat--open"},
            el("div", {"class": "webchat__log", "aria-live": "polite"}),
            el("textarea", {"class": "webchat__input", "rows": "2"}),
            el("button", {"class": "webchat__send"}, tx("Send")),
        )
        search = el("input", {"type": "search", "name": "q", "placeholder": "Search"})
        head = el(
            "head",
            None,
            el("meta", {"charset": "utf-8"}),
            el("title", None, tx(title)),
            el("link", {"rel": "stylesheet", "href": "/assets/site.css"}),
        )
        body = el("body", {"class": "page-product"}, el("header", None, nav, search), product, widget)
        html = el("html", {"lang": language}, head, body)
        return {"type": _NODE_DOCUMENT, "childNodes": [doctype, html], "id": doc_id}


def _dumps(events: list[dict[str, Any]]) -> str:
    return orjson.dumps(events).decode()
