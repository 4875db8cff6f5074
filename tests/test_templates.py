"""The frames a session sends per exchange, written from templates
(simulator/load/templates.py, Dialect.*_wire): byte for byte what the models
encode, for any string; a dialect that builds its own frames keeps them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from simulator.load.dialect import Dialect
from simulator.load.templates import Template
from simulator.protocol import EventType, Frame, FrameType, decode, encode

_TEXT = st.text(max_size=40)  # any code point: quotes, backslashes, controls, surrogates' neighbours, emoji
_LANGUAGE = st.none() | _TEXT


def wire(value: Frame | bytes) -> bytes:
    return value if isinstance(value, bytes) else encode(value)


@given(conversation=_TEXT, body=_TEXT, cid=_TEXT, language=_LANGUAGE)
def test_a_message_from_its_template_is_what_the_models_encode(
    conversation: str, body: str, cid: str, language: str | None
) -> None:
    dialect = Dialect()
    sent = dialect.message_wire(conversation, body, cid, language)
    assert isinstance(sent, bytes)
    assert sent == encode(dialect.message(conversation, body, cid, language))


@given(conversation=_TEXT, value=_TEXT, uuid=_TEXT)
def test_typing_and_read_from_their_templates_are_what_the_models_encode(
    conversation: str, value: str, uuid: str
) -> None:
    dialect = Dialect()
    typing, read = dialect.typing_wire(conversation, value), dialect.read_wire(conversation, uuid)
    assert isinstance(typing, bytes) and isinstance(read, bytes)
    assert typing == encode(dialect.typing(conversation, value))
    assert read == encode(dialect.read(conversation, uuid))


def test_the_template_bytes_decode_to_the_frame() -> None:
    dialect = Dialect()
    frame = decode(wire(dialect.message_wire("c-1", 'say "hi"\n', "m-1", "en")))
    assert frame.type is FrameType.MESSAGE and frame.conversation_uuid == "c-1"
    assert frame.message is not None and frame.message.body == 'say "hi"\n' and frame.message.language_iso_code == "en"
    frame = decode(wire(dialect.typing_wire("c-1", "Hel")))
    assert frame.event_type is EventType.TYPING and frame.event_typing is not None
    assert frame.event_typing.value == "Hel"


def test_a_value_that_is_not_a_plain_string_goes_through_the_models() -> None:
    class Text(str):
        pass

    dialect = Dialect()
    assert isinstance(dialect.message_wire("c", Text("hi"), "m", "en"), Frame)
    assert isinstance(dialect.read_wire("c", Text("u")), Frame)
    with pytest.raises(ValidationError):  # the models' own validation, as before
        dialect.message_wire("c", 42, "m", "en")  # type: ignore[arg-type]


def test_a_dialect_that_builds_its_own_frames_keeps_them() -> None:
    class Other(Dialect):
        def message(self, conversation_uuid: str, body: str, client_message_id: str, language: str | None) -> Frame:
            return super().message(conversation_uuid, body.upper(), client_message_id, language)

        def typing(self, conversation_uuid: str, value: str) -> Frame:
            return super().typing(conversation_uuid, "…")

        def read(self, conversation_uuid: str, message_uuid: str) -> Frame:
            return super().read(conversation_uuid, message_uuid + "!")

    other = Other()
    assert wire(other.message_wire("c", "hi", "m", None)) == encode(other.message("c", "hi", "m", None))
    assert b"HI" in wire(other.message_wire("c", "hi", "m", None))
    assert wire(other.typing_wire("c", "Hel")) == encode(Dialect().typing("c", "…"))
    assert wire(other.read_wire("c", "u")) == encode(other.read("c", "u")) == encode(Dialect().read("c", "u!"))


def test_a_template_refuses_a_builder_that_drops_or_repeats_an_argument() -> None:
    dialect = Dialect()
    with pytest.raises(ValueError, match="exactly once"):
        Template(lambda c, v: dialect.typing(c, "fixed"), 2)
    with pytest.raises(ValueError, match="exactly once"):
        Template(lambda c: dialect.message(c, c, "m", None), 1)
    template = Template(dialect.read, 2)
    with pytest.raises(ValueError, match="2 values expected"):
        template.fill("only one")
