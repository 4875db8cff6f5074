"""Frames the generator sends most, written from templates.

A chat sends, per exchange, a ``typing`` event, a ``message`` and a
``read message`` event. Building the pydantic models of each (a frame and its
payload, validated) and serializing them cost more than the frame's bytes:
a :class:`Template` is the bytes :func:`simulator.protocol.encode` wrote once
for a frame with marker strings in its string fields, cut around the markers;
:meth:`Template.fill` puts each value's JSON (``orjson.dumps`` of a string,
the same escaping as inside the frame) in its hole. The result is byte for
byte what the models encode (tests/test_templates.py checks it on arbitrary
strings). Only plain ``str`` values are written this way; anything else
(``None`` where the field would be left out, a non-string) goes through the
models, as do the frames of a dialect that overrides the builder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import orjson

from ..protocol import Frame, encode

__all__ = ["Template"]

_dumps = orjson.dumps


class Template:
    """The bytes of ``build(*holes)``'s frame, with one hole per argument (see the module documentation)."""

    __slots__ = ("_parts", "holes")

    def __init__(self, build: Callable[..., Frame], holes: int) -> None:
        markers = [f"\x00hole {number}\x00" for number in range(holes)]
        data = encode(build(*markers))
        parts: list[bytes] = []
        for marker in markers:
            encoded = _dumps(marker)
            if data.count(encoded) != 1:
                raise ValueError(f"{build!r}: argument {marker!r} is not written exactly once as a string")
            head, data = data.split(encoded)
            parts.append(head)
        parts.append(data)
        self._parts: Final = tuple(parts)
        self.holes: Final = holes

    def fill(self, *values: str) -> bytes:
        """The frame's bytes with ``values`` (plain strings, one per hole, in order) in its holes."""
        parts = self._parts
        if len(values) != len(parts) - 1:
            raise ValueError(f"{len(parts) - 1} values expected, got {len(values)}")
        out = [parts[0]]
        for value, part in zip(values, parts[1:], strict=True):
            out.append(_dumps(value))
            out.append(part)
        return b"".join(out)
