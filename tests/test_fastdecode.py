"""The codec's msgspec fast path (simulator/protocol/fastdecode.py) builds
the very frames pydantic's validation gives (dump, fields set recursively,
``__dict__`` order, encode bytes, the context verdict and its error text),
never accepts a frame pydantic refuses, and is in use."""

from __future__ import annotations

import json
import subprocess
import sys
import types
import typing
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.errors import FrameError
from simulator.protocol import Frame, codec, decode, encode, fastdecode
from simulator.protocol.codec import check_context
from simulator.protocol.models import WireModel

from .strategies import valid_frames, wire_dicts

pytestmark = pytest.mark.timeout(60)

to_frame = fastdecode.decode_fast
_validate = Frame.__pydantic_validator__.validate_json

_BAD_VALUES = st.sampled_from(
    [None, "2", "", 2, -1, 0, 1.0, 1.5, -0.0, True, False, 2**63, -(2**63) - 1, 2**64, 10**30, [], [None], {}, {"x": 1}]
) | st.text(max_size=5)


def _same(built: Frame, validated: Frame) -> None:
    assert type(built) is type(validated)
    assert built == validated
    assert built.model_dump() == validated.model_dump()
    assert encode(built) == encode(validated)
    _same_fields_set(built, validated)


def _same_fields_set(a: Any, b: Any) -> None:
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same_fields_set(x, y)
    elif isinstance(a, WireModel):
        assert type(a) is type(b)
        assert a.model_fields_set == b.model_fields_set
        assert list(a.__dict__) == list(b.__dict__)
        assert a.__pydantic_extra__ == b.__pydantic_extra__ == {}
        assert a.__pydantic_private__ is b.__pydantic_private__ is None
        for name in a.model_fields_set:
            _same_fields_set(getattr(a, name), getattr(b, name))


def _dicts(value: Any) -> list[dict[str, Any]]:
    """Every JSON object in ``value`` (itself included)."""
    out: list[dict[str, Any]] = []
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            out.append(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return out


def _strip_extras(value: Any, annotation: Any) -> None:
    """Remove the additional properties of every object in ``value``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        origin = typing.get_origin(annotation)
    if origin is list and isinstance(value, list):
        for item in value:
            _strip_extras(item, typing.get_args(annotation)[0])
    elif isinstance(annotation, type) and issubclass(annotation, WireModel) and isinstance(value, dict):
        hints = typing.get_type_hints(annotation)
        for key in [k for k in value if k not in annotation.model_fields]:
            del value[key]
        for key, item in value.items():
            _strip_extras(item, hints[key])


def _compare(data: bytes | str) -> Frame | None:
    """msgspec's frame equals pydantic's whenever msgspec accepts one; and
    with the codec's context check it is the same verdict as ``decode``."""
    built = to_frame(data)
    if built is None:
        return None
    validated = _validate(data, strict=True)  # raises if msgspec accepted what pydantic refuses
    _same(built, validated)
    try:
        expected = decode(data)
    except FrameError as exc:
        with pytest.raises(FrameError) as caught:
            check_context(built)
        assert str(caught.value) == str(exc)
    else:
        _same(built, expected)
    return built


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(valid_frames())
def test_valid_frames_without_extras_take_the_msgspec_path(wire: dict[str, Any]) -> None:
    _strip_extras(wire, Frame)  # additional properties go to pydantic (which keeps them)
    data = orjson.dumps(wire)
    assert _compare(data) is not None


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(wire_dicts(Frame), st.data())
def test_mutated_frames_same_verdict(wire: dict[str, Any], data: st.DataObject) -> None:
    _strip_extras(wire, Frame)
    objects = _dicts(wire)
    for _ in range(data.draw(st.integers(0, 3))):
        target = data.draw(st.sampled_from(objects))
        keys = [*sorted(target), "extra_key"]
        target[data.draw(st.sampled_from(keys))] = data.draw(_BAD_VALUES)
    _compare(json.dumps(wire, separators=(",", ":")).encode())  # orjson writes no integer beyond 64 bits


@pytest.mark.parametrize(
    "data",
    [
        b'{"type":"ping","conversation_uuid":null}',
        b'{"type":"message","type":"ping"}',
        b'{"type":"bogus","type":"ping"}',
        b'{"typ\\u0065":"ping"}',
        b'{"event_queue_position":{"position":9223372036854775807}}',
        b'{"event_queue_position":{"position":9223372036854775808}}',
        b'{"event_queue_position":{"position":1.0}}',
        b'{"event_add_item":{"items":[{"quantity":1}]}}',
        b'{"event_add_item":{"items":[{"quantity":1e400}]}}',
        b'{"event_add_item":{"items":[{"quantity":' + b"1" * 400 + b"}]}}",
        b'{"message":{"media_urls":[null]}}',
        b'{"message":{"body":"\\ud800"}}',
        b' {"type":"ping"}\n',
        b'\t{"type":\r"ping"}',
        b'\x0c{"type":"ping"}',
        b'{"type":"ping"}\x0c',
        b'\xef\xbb\xbf{"type":"ping"}',
        b'{"conversation_uuid":"\\udc00\\ud800"}',
        b'{"conversation_uuid":"\\ud83d\\ude00 \\u0000"}',
        b'{"conversation_uuid":"\xc0\x80"}',
        b'{"conversation_uuid":"\xed\xa0\x80"}',
        b'{"conversation_uuid":"\\u00"}',
        b'{"event_queue_position":{"position":01}}',
        b'{"event_queue_position":{"position":-0}}',
        b'{"event_queue_position":{"position":+1}}',
        b'{"event_queue_position":{"position":1e2}}',
        b'{"event_add_item":{"items":[{"quantity":-0}]}}',
        b'{"event_add_item":{"items":[{"quantity":.5}]}}',
        b'{"event_add_item":{"items":[{"quantity":1.}]}}',
        b'{"event_add_item":{"items":[{"quantity":1e-400}]}}',
        b'{"event_add_item":{"items":[{"quantity":Infinity}]}}',
        b'{"type":"MESSAGE"}',
        b'{"type":"message "}',
        b'{"message":{"type":"message","media_urls":["a",1]}}',
        b'{"message":{}}{}',
        b'{"type":"ping"} x',
        b'{"type":"ping","x":NaN}',
        b"[]",
    ],
)
def test_edge_cases_same_verdict(data: bytes) -> None:
    _compare(data)


@pytest.mark.parametrize(
    "data",
    [
        '{"type":"ping","conversation_uuid":"é"}',
        '{"conversation_uuid":"\\udc00"}',  # an escaped lone surrogate
        '{"conversation_uuid":"\udc00"}',  # a lone surrogate in the str itself (not encodable)
        "{}",
    ],
)
def test_str_input_same_verdict(data: str) -> None:
    _compare(data)  # decode takes str too


def test_the_fast_path_is_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """msgspec is a dependency: valid frames never reach pydantic's validator."""
    assert fastdecode.ACTIVE

    def refuse(*args: object, **kwargs: object) -> Frame:
        raise AssertionError("the pydantic path was taken")

    monkeypatch.setattr(codec, "_validate_json", refuse)
    frame = decode(b'{"type":"message","conversation_uuid":"c","message":{"body":"hi","message_epoch":1}}')
    assert frame.message is not None and frame.message.body == "hi"
    with pytest.raises(AssertionError, match="pydantic path"):
        decode(b'{"type":"ping","x":1}')  # an additional property: pydantic's (it keeps it)


def test_additional_properties_and_errors_keep_the_pydantic_path() -> None:
    data = b'{"type":"ping","x":{"y":[1,2]},"message":{"body":"b","z":true}}'
    assert to_frame(data) is None
    frame = decode(data)
    assert frame.model_extra == {"x": {"y": [1, 2]}}
    assert orjson.loads(encode(frame)) == orjson.loads(data)  # unknown keys written back
    with pytest.raises(FrameError, match=r'expected integer, got string "2"') as caught:
        decode(b'{"type":"event","event_type":"queue position","event_queue_position":{"position":"2"}}')
    assert caught.value.path == "event_queue_position.position"


def test_without_msgspec_pydantic_decodes_everything() -> None:
    """msgspec not importable: no fast path, same results, no error."""
    script = (
        "import sys; sys.modules['msgspec'] = None\n"
        "from simulator.protocol import decode, encode, fastdecode\n"
        "assert not fastdecode.ACTIVE and fastdecode.decode_fast(b'{}') is None\n"
        'frame = decode(b\'{"type":"message","conversation_uuid":"c","message":{"body":"hi"}}\')\n'
        "print(encode(frame).decode())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {"type": "message", "conversation_uuid": "c", "message": {"body": "hi"}}


def test_a_model_msgspec_cannot_mirror_turns_the_fast_path_off_with_a_warning() -> None:
    """The fast path cannot be built (here msgspec refuses every Struct; in
    life, say, a pydantic whose internals moved): the package still imports,
    says so once, and pydantic decodes everything."""
    script = (
        "import msgspec, warnings\n"
        "def refuse(*args, **kwargs): raise TypeError('no Structs today')\n"
        "msgspec.defstruct = refuse\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    from simulator.protocol import decode, encode, fastdecode\n"
        "assert not fastdecode.ACTIVE, 'still on'\n"
        "assert [str(w.message) for w in caught if 'fast frame decoder' in str(w.message)], caught\n"
        'print(encode(decode(b\'{"type":"ping"}\')).decode())\n'
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {"type": "ping"}
