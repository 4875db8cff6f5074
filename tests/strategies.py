"""Hypothesis strategies that draw wire dicts from the protocol models."""

from __future__ import annotations

import types
import typing
from enum import Enum
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel

from simulator.protocol import EVENT_PAYLOADS, EventType, FrameType
from simulator.protocol.models import ConversationMessage, ConversationWebsocketMessage

__all__ = ["json_values", "valid_frames", "wire_dicts"]

_INT = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_FLOAT = st.floats(allow_nan=False, allow_infinity=False, width=64)
_TEXT = st.text(max_size=30)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.booleans() | _INT | _FLOAT | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)


def _for_type(tp: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _for_type(inner)
    if origin is list:
        (item,) = typing.get_args(tp)
        return st.lists(_for_type(item), max_size=3)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return st.sampled_from([m.value for m in tp])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return st.deferred(lambda: wire_dicts(tp))
    if tp is bool:
        return st.booleans()
    if tp is int:
        return _INT
    if tp is float:
        return _FLOAT
    if tp is str:
        return _TEXT
    raise TypeError(f"no strategy for {tp!r}")


_CACHE: dict[type[BaseModel], st.SearchStrategy[dict[str, Any]]] = {}


def wire_dicts(model: type[BaseModel], *, extras: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts as they appear on the wire for ``model``: any subset of its fields
    with values of the right types, plus (optionally) unknown keys."""
    key = model if extras else None
    if key is not None and key in _CACHE:
        return _CACHE[key]
    hints = typing.get_type_hints(model)
    optional = {name: _for_type(hints[name]) for name in model.model_fields}
    strategy = st.fixed_dictionaries({}, optional=optional)
    if extras:
        known = set(model.model_fields)
        extra = st.dictionaries(_TEXT.filter(lambda k: k not in known), json_values, max_size=2)
        strategy = st.tuples(strategy, extra).map(lambda pair: {**pair[1], **pair[0]})
    if key is not None:
        _CACHE[key] = strategy
    return strategy


@st.composite
def valid_frames(draw: st.DrawFn) -> dict[str, Any]:
    """Whole frames that satisfy the codec's context rules."""
    base = draw(wire_dicts(ConversationWebsocketMessage))
    base.pop("error", None)
    kind = draw(st.sampled_from(list(FrameType)))
    base["type"] = kind.value
    base.setdefault("conversation_uuid", draw(st.uuids()).hex)
    if kind is FrameType.MESSAGE:
        base.setdefault("message", draw(wire_dicts(ConversationMessage)))
    elif kind is FrameType.EVENT:
        event = draw(st.sampled_from(list(EventType)))
        base["event_type"] = event.value
        hints = typing.get_type_hints(ConversationWebsocketMessage)
        for payload in EVENT_PAYLOADS[event]:
            if payload not in base:
                base[payload] = draw(_for_type(hints[payload]))
    return base
