"""Frames whose wire bytes are written first: the hot path of a chat.

The engine's chat path (a ``message`` and the agents' ``new message``
summary) writes the JSON of its frames directly, without building the
pydantic models (:mod:`simulator.mock.messages`). What it hands on is
still a :class:`~.models.Frame`, so that every consumer of deliveries (the
websocket shell, the autopilot agents, REST, the tests) keeps working:

* :func:`prepared` makes a :class:`PreparedFrame`, a ``Frame`` that holds
  its bytes and the envelope fields the shell reads per frame (``type``,
  ``event_type``, ``conversation_uuid``, ``conversation_arn``, ``error``:
  an :func:`envelope`, which the maker may keep for its next frames);
  :func:`~.codec.encode` returns those bytes as they are (encoded once,
  the same bytes for every recipient);
* any other use (a payload field, ``model_dump``, ``==``, ``repr``…)
  turns it into a plain :class:`~.models.Frame` first, in place, by
  decoding its bytes: it then is exactly what a client receives.
"""

from __future__ import annotations

from typing import Any

from .enums import EventType, FrameType
from .models import Frame

__all__ = ["PreparedFrame", "envelope", "prepared", "wire_bytes"]

_get = object.__getattribute__
_new = object.__new__
_set = object.__setattr__
_ENVELOPE = frozenset({"type", "event_type", "conversation_uuid", "conversation_arn", "error"})


class PreparedFrame(Frame):
    """A :class:`Frame` known by its wire bytes (see the module documentation).
    Never validated nor built: made by :func:`prepared` only."""

    def __getattribute__(self, name: str) -> Any:
        if name in _ENVELOPE:
            return _get(self, "__dict__")[name]
        _materialize(self)
        return getattr(self, name)

    def __eq__(self, other: object) -> bool:
        _materialize(self)
        return self == other

    __hash__ = None  # type: ignore[assignment]  # as pydantic models: mutable, unhashable

    def __repr__(self) -> str:
        _materialize(self)
        return repr(self)

    # Looked up on the type, not through __getattribute__: a plain Frame first, then its own.
    def __copy__(self) -> Frame:  # type: ignore[override]  # a Frame: it is one by then
        _materialize(self)
        return self.__copy__()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Frame:  # type: ignore[override]
        _materialize(self)
        return self.__deepcopy__(memo)


def envelope(
    frame_type: FrameType, event_type: EventType | None, conversation_uuid: str, conversation_arn: str
) -> dict[str, Any]:
    """The envelope fields of prepared frames (read only: one may serve many frames)."""
    return {
        "type": frame_type,
        "event_type": event_type,
        "conversation_uuid": conversation_uuid,
        "conversation_arn": conversation_arn,
        "error": None,
    }


def prepared(data: bytes, fields: dict[str, Any]) -> Frame:
    """A frame whose encoding is ``data`` (which the caller wrote as
    :func:`~.codec.encode` would) and whose envelope is ``fields`` (of
    :func:`envelope`; never written to: a frame used as a model gets its own
    fields first). Its other pydantic slots stay unset until then: anything
    but the envelope turns it into a plain ``Frame`` first."""
    frame = _new(PreparedFrame)
    _set(frame, "__dict__", fields)
    _set(frame, "__pydantic_private__", data)
    return frame


def wire_bytes(frame: Frame) -> bytes | None:
    """The bytes of a :class:`PreparedFrame` not used as a model yet, else ``None``."""
    if type(frame) is PreparedFrame:
        data: bytes = _get(frame, "__pydantic_private__")
        return data
    return None


def _materialize(frame: PreparedFrame) -> None:
    """Make ``frame`` the plain ``Frame`` its bytes decode to (in place)."""
    from .codec import decode  # codec imports this module

    if type(frame) is not PreparedFrame:
        return
    decoded = decode(_get(frame, "__pydantic_private__"), context=False)
    _set(frame, "__dict__", _get(decoded, "__dict__"))
    _set(frame, "__pydantic_fields_set__", _get(decoded, "__pydantic_fields_set__"))
    _set(frame, "__pydantic_extra__", _get(decoded, "__pydantic_extra__"))
    _set(frame, "__pydantic_private__", None)
    _set(frame, "__class__", Frame)
