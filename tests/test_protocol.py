"""The protocol models and codec: round trips, SDK and schema cross-checks,
precise errors for invalid input, property tests."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.errors import FrameError
from simulator.protocol import (
    EVENT_PAYLOADS,
    EventType,
    Frame,
    FrameType,
    WireModel,
    decode,
    dts,
    encode,
    json_schema,
)
from simulator.protocol import models as models_module
from tests.sdk import schema_validate, sdk_validate
from tests.strategies import valid_frames, wire_dicts

CONV = "5a0c6f4e-2b1d-4c3e-9f8a-7b6c5d4e3f21"
ARN_C = "arn:webchat-sim:DEMO:participant/c-1"
ARN_A = "arn:webchat-sim:DEMO:participant/a-1"
DTS = "2026-11-25T14:05:25.123Z"

PARTICIPANT: dict[str, Any] = {
    "conversation_participant_arn": ARN_A,
    "conversation_participant_name": "Alex Agent",
    "conversation_participant_uuid": "0b7c9a52-3f7e-4d0a-9d2e-4a8f6c1e2b3d",
    "joined_dts": DTS,
    "language_iso_code": "en",
    "status": "active",
    "unread_messages": 0,
}
SUMMARY: dict[str, Any] = {
    "closed": False,
    "conversation_arn": "arn:webchat-sim:DEMO:conversation/" + CONV,
    "conversation_uuid": CONV,
    "customer_first_message_unresponded_to_dts": DTS,
    "last_conversation_message_body": "Where is my order?",
    "last_conversation_participant_arn": ARN_C,
    "last_conversation_participant_name": "Chris Customer",
    "last_message_dts": DTS,
    "medium": "websocket",
    "merchant_id": "DEMO",
    "message_count": 1,
    "participants": [PARTICIPANT],
    "sentiment": {"sentiment": "NEUTRAL", "positive": 0.1, "negative": 0.05, "neutral": 0.8, "mixed": 0.05},
    "start_dts": DTS,
    "unread_messages": True,
    "visible": True,
}
MESSAGE: dict[str, Any] = {
    "author_conversation_participant_arn": ARN_C,
    "author_conversation_participant_name": "Chris Customer",
    "body": "Where is my order #10442?",
    "client_message_id": "cm-1",
    "conversation_message_uuid": "7e0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
    "language_iso_code": "en",
    "media_urls": [],
    "merchant_id": "DEMO",
    "message_dts": DTS,
    "message_epoch": 1_795_615_525_123,
    "translations": [{"body": "¿Dónde está mi pedido?", "language_iso_code": "es"}],
    "transport_statuses": [{"conversation_participant_arn": ARN_A, "status": "sent"}],
    "type": "message",
}
ENTRY: dict[str, Any] = {
    "conversation_participant_arn": ARN_C,
    "conversation_participant_name": "Chris Customer",
    "conversation_webchat_queue_uuid": "q-1",
    "email": "chris@example.com",
    "join_dts": DTS,
    "participant_language_iso_code": "en",
    "question": "Where is my order?",
    "queue_name": "support",
}
MONEY: dict[str, Any] = {"value": 19.99, "currency_code": "USD", "localized": 19.99, "localized_formatted": "$19.99"}

EVENT_SAMPLES: dict[EventType, dict[str, Any]] = {
    EventType.QUEUE_POSITION: {"event_queue_position": {"available": True, "position": 2}},
    EventType.WEBCHAT_START_CONVERSATION: {"event_engage_customer": {k: ENTRY[k] for k in ("email", "question")}},
    EventType.CONVERSATION_CLOSED: {"event_conversation_closed": {**SUMMARY, "closed": True}},
    EventType.NEW_CONVERSATION: {"event_new_conversation": SUMMARY},
    EventType.NEW_MESSAGE: {"event_new_message": SUMMARY},
    EventType.UPDATED_MESSAGE: {
        "event_updated_message": {
            **MESSAGE,
            "transport_statuses": [{"conversation_participant_arn": ARN_A, "status": "read"}],
        }
    },
    EventType.QUEUE_STATUS_UPDATE: {
        "event_queue_status_update": {
            "queue_name": "support",
            "agent_available_count": 1,
            "agent_busy_count": 0,
            "agent_count": 1,
            "agent_unavailable_count": 0,
            "agents": [
                {
                    "agent_status": "available",
                    "conversation_participant_arn": ARN_A,
                    "conversation_participant_name": "Alex Agent",
                    "last_chat_dts": DTS,
                    "next_round_robin": True,
                }
            ],
            "customer_abandon_count": 0,
            "customer_active_count": 0,
            "customer_average_abandon_time_seconds": 0,
            "customer_average_chat_time_seconds": 0,
            "customer_average_hold_time_seconds": 12,
            "customer_chat_count": 3,
            "customer_waiting_count": 1,
            "customer_waiting_join_dts": DTS,
            "queue_entries": [ENTRY],
        }
    },
    EventType.RRWEB: {
        "event_rrweb": {
            "type": "init",
            "event_index": 0,
            "data": "[]",
            "data_part": 1,
            "data_total_parts": 1,
            "data_sha256": "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
            "data_total_sha256": "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
        }
    },
    EventType.PARTICIPANT_UPDATE: {"event_participant_update": SUMMARY},
    EventType.PARTICIPANT_JOIN: {"event_participant_join": SUMMARY, "event_participant_join_participant": PARTICIPANT},
    EventType.PARTICIPANT_LEFT: {
        "event_participant_left": SUMMARY,
        "event_participant_left_participant": {**PARTICIPANT, "left_dts": DTS},
    },
    EventType.READ_MESSAGE: {
        "event_read_message": {
            "conversation_message_uuid": MESSAGE["conversation_message_uuid"],
            "message_dts": DTS,
            "message_epoch": 1_795_615_525_123,
        }
    },
    EventType.TYPING: {
        "event_typing": {
            "author_conversation_participant_arn": ARN_C,
            "author_conversation_participant_name": "Chris",
            "value": "Where is",
        }
    },
    EventType.ADD_COUPON: {
        "event_add_coupon": {"agent_arn": ARN_A, "agent_name": "Alex Agent", "coupon_code": "SAVE10"}
    },
    EventType.ADD_ITEM: {
        "event_add_item": {
            "agent_arn": ARN_A,
            "agent_name": "Alex Agent",
            "items": [
                {
                    "item_id": "TSHIRT-M",
                    "item_oid": 1001,
                    "description": "Organic cotton T-shirt",
                    "quantity": 2,
                    "unit_cost": MONEY,
                    "total_cost": {**MONEY, "value": 39.98, "localized": 39.98, "localized_formatted": "$39.98"},
                    "position": 1,
                    "attributes": [{"name": "color", "value": "navy", "type": "string"}],
                    "options": [{"name": "Size", "label": "Size", "selected_value": "M", "type": "dropdown"}],
                    "variations": [{"variation_name": "Size", "variation_value": "M"}],
                    "view_url": "https://shop.example.com/p/TSHIRT-M",
                }
            ],
        }
    },
    EventType.WEBCHAT_CONTEXT: {
        "event_webchat_context": {"cart_id": "C-123", "ucacid": "UA-9", "url": "https://shop.example.com/cart"}
    },
    EventType.ENGAGE_CUSTOMER: {"event_engage_customer": {"conversation_webchat_queue_uuid": "q-1"}},
    EventType.QUEUE_NEW_MEMBER: {"event_queue_new_member": ENTRY},
}


def event_frame(event: EventType) -> dict[str, Any]:
    return {"type": "event", "event_type": event.value, "conversation_uuid": CONV, **EVENT_SAMPLES[event]}


ALL_SAMPLES: list[tuple[str, dict[str, Any]]] = [
    ("message", {"type": "message", "conversation_uuid": CONV, "message": MESSAGE}),
    ("ping", {"type": "ping"}),
    ("check queue position", {"type": "check queue position", "conversation_uuid": CONV}),
    *[(f"event {e.value}", event_frame(e)) for e in EventType],
]


def test_samples_cover_every_frame_and_event_type() -> None:
    assert set(EVENT_SAMPLES) == set(EventType) and len(EventType) == 18
    kinds = {sample["type"] for _, sample in ALL_SAMPLES}
    assert kinds == {t.value for t in FrameType}


@pytest.mark.parametrize(("name", "sample"), ALL_SAMPLES, ids=[n for n, _ in ALL_SAMPLES])
def test_round_trip_and_cross_checks(name: str, sample: dict[str, Any]) -> None:
    raw = orjson.dumps(sample)
    frame = decode(raw)
    assert frame.type is FrameType(sample["type"])
    out = encode(frame)
    assert orjson.loads(out) == sample
    assert b"null" not in out
    sdk_validate(out)
    schema_validate(out)


def test_typed_access_and_enums_by_identity() -> None:
    frame = decode(orjson.dumps(event_frame(EventType.QUEUE_POSITION)))
    assert frame.event_type is EventType.QUEUE_POSITION
    assert frame.event_queue_position is not None
    assert frame.event_queue_position.position == 2


def test_unknown_keys_survive_at_every_depth() -> None:
    sample = {
        "type": "message",
        "conversation_uuid": CONV,
        "x_top": {"nested": [1, None, "a"]},
        "message": {**MESSAGE, "x_msg": 3, "transport_statuses": [{"status": "sent", "x_ts": True}]},
    }
    frame = decode(orjson.dumps(sample))
    assert frame.model_extra == {"x_top": {"nested": [1, None, "a"]}}
    assert orjson.loads(encode(frame)) == sample


def test_null_is_read_as_absent_and_never_written() -> None:
    frame = decode(b'{"type": "ping", "conversation_uuid": null, "message": null}')
    assert frame.conversation_uuid is None
    assert encode(frame) == b'{"type":"ping"}'
    built = Frame(type=FrameType.PING, conversation_uuid=None)
    assert encode(built) == b'{"type":"ping"}'


def test_decode_accepts_str_and_bytes() -> None:
    assert decode('{"type":"ping"}') == decode(b'{"type":"ping"}')


INVALID: list[tuple[bytes, str, str]] = [
    (
        b'{"type": "event", "event_type": "rrweb", "conversation_uuid": "c",'
        b' "event_rrweb": {"event_index": 9223372036854775808}}',
        "invalid_value",
        "event_rrweb.event_index: integer 9223372036854775808 is outside the 64-bit integer range",
    ),
    (
        b'{"type": "event", "event_type": "add item", "conversation_uuid": "c",'
        b' "event_add_item": {"items": [{"quantity": NaN}]}}',
        "invalid_json",
        "event_add_item.items[0].quantity: not valid JSON (NaN, Infinity or a number beyond the float range)",
    ),
    (
        b'{"type": "event", "event_type": "add item", "conversation_uuid": "c",'
        b' "event_add_item": {"items": [{"quantity": 1e400}]}}',
        "invalid_json",
        "event_add_item.items[0].quantity: not valid JSON (NaN, Infinity or a number beyond the float range)",
    ),
    (
        b'{"type": "event", "event_type": "queue position", "event_queue_position": {"position": 1e400}}',
        "invalid_type",
        "event_queue_position.position: expected integer",
    ),
    (b"{", "invalid_json", "not valid JSON"),
    (b"", "invalid_json", "not valid JSON"),
    (b"\xff\xfe", "invalid_json", "not valid JSON"),
    (b"[1, 2]", "not_object", "not a JSON object (got array)"),
    (b'"ping"', "not_object", "not a JSON object (got string)"),
    (b"42", "not_object", "not a JSON object (got integer)"),
    (b"{}", "missing_field", "type: required"),
    (
        b'{"type": 1}',
        "invalid_enum",
        'type: integer 1 is not one of "message", "event", "ping", "check queue position"',
    ),
    (
        b'{"type": "pong"}',
        "invalid_enum",
        'type: "pong" is not one of "message", "event", "ping", "check queue position"',
    ),
    (
        b'{"type": "event", "event_type": "queue positionx"}',
        "invalid_enum",
        'event_type: "queue positionx" is not one of "queue position", "webchat start conversation",',
    ),
    (
        b'{"type": "event", "event_type": "queue position", "event_queue_position": {"position": "2"}}',
        "invalid_type",
        'event_queue_position.position: expected integer, got string "2"',
    ),
    (
        b'{"type": "event", "event_type": "queue position", "event_queue_position": {"available": 1}}',
        "invalid_type",
        "event_queue_position.available: expected boolean, got integer 1",
    ),
    (
        b'{"type": "message", "conversation_uuid": 7}',
        "invalid_type",
        "conversation_uuid: expected string, got integer 7",
    ),
    (
        b'{"type": "message", "conversation_uuid": "c", "message": "hi"}',
        "invalid_type",
        'message: expected object, got string "hi"',
    ),
    (
        b'{"type": "message", "conversation_uuid": "c", "message": {"message_epoch": 1.5}}',
        "invalid_type",
        "message.message_epoch: expected integer, got number 1.5",
    ),
    (
        b'{"type": "message", "conversation_uuid": "c", "message": {"media_urls": "http://x"}}',
        "invalid_type",
        'message.media_urls: expected array, got string "http://x"',
    ),
    (
        b'{"type": "message", "conversation_uuid": "c", "message": {"transport_statuses": [{"status": "gone"}]}}',
        "invalid_enum",
        'message.transport_statuses[0].status: "gone" is not one of "accepted", "scheduled",',
    ),
    (
        b'{"type": "event", "event_type": "add item", "conversation_uuid": "c",'
        b' "event_add_item": {"items": [{"unit_cost": {"value": "1.00"}}]}}',
        "invalid_type",
        'event_add_item.items[0].unit_cost.value: expected number, got string "1.00"',
    ),
    (b'{"type": "message", "conversation_uuid": "c"}', "missing_field", 'message: required when type is "message"'),
    (
        b'{"type": "message", "message": {"body": "hi"}}',
        "missing_field",
        'conversation_uuid: required when type is "message"',
    ),
    (b'{"type": "event"}', "missing_field", 'event_type: required when type is "event"'),
    (
        b'{"type": "event", "event_type": "typing", "conversation_uuid": "c"}',
        "missing_field",
        'event_typing: required when event_type is "typing"',
    ),
    (
        b'{"type": "event", "event_type": "typing", "event_typing": {"value": ""}}',
        "missing_field",
        'conversation_uuid: required when event_type is "typing"',
    ),
    (
        b'{"type": "check queue position"}',
        "missing_field",
        'conversation_uuid: required when type is "check queue position"',
    ),
    (
        b'{"type": "event", "event_type": "participant join", "conversation_uuid": "c", "event_participant_join": {}}',
        "missing_field",
        'event_participant_join_participant: required when event_type is "participant join"',
    ),
]


@pytest.mark.parametrize(("raw", "code", "reason"), INVALID, ids=[r.decode("latin-1")[:40] for r, _, _ in INVALID])
def test_invalid_inputs_give_precise_reasons(raw: bytes, code: str, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        decode(raw)
    assert info.value.code == code
    assert str(info.value).startswith(reason), str(info.value)


NON_JSON_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]


@pytest.mark.parametrize("literal", NON_JSON_NUMBERS)
@pytest.mark.parametrize(
    ("template", "path"),
    [
        ('{{"type": "ping", "x": {}}}', "x"),
        ('{{"type": "ping", "x": {{"deep": [1, {{"deeper": {}}}]}}}}', "x"),
        ('{{"type": "message", "conversation_uuid": "c", "message": {{"body": "hi", "x": [{}]}}}}', "message.x"),
        (
            '{{"type": "message", "conversation_uuid": "c",'
            ' "message": {{"transport_statuses": [{{"status": "sent", "x": {}}}]}}}}',
            "message.transport_statuses[0].x",
        ),
    ],
    ids=["top", "nested", "in-a-model", "in-a-list-of-models"],
)
def test_nan_and_infinity_are_not_json_in_additional_properties_either(literal: str, template: str, path: str) -> None:
    raw = template.format(literal)
    with pytest.raises(FrameError) as info:
        decode(raw)
    assert info.value.code == "invalid_json"
    assert str(info.value) == f"{path}: not valid JSON (NaN, Infinity or a number beyond the float range)"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)  # the same verdict as a strict JSON parser's


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 2**64, 10**30])
def test_additional_integers_are_64_bit_too(number: int) -> None:
    # Beyond 64 bits, orjson could not write the frame back (it would be dropped, not answered).
    with pytest.raises(FrameError) as info:
        decode(f'{{"type": "ping", "x": [{number}]}}')
    assert info.value.code == "invalid_value"
    assert str(info.value) == f"x: integer {number} is outside the 64-bit integer range"


def test_finite_additional_numbers_and_strings_that_say_nan_are_kept() -> None:
    raw = b'{"type":"ping","x":{"n":[1.5,-0.0,9223372036854775807,-9223372036854775808,"NaN",true,null]}}'
    assert encode(decode(raw)) == raw


def test_error_counts_further_problems() -> None:
    with pytest.raises(FrameError, match=r"\(and 1 more error\)$"):
        decode(b'{"type": "x", "conversation_uuid": 1}')


def test_long_strings_are_truncated_in_reasons() -> None:
    with pytest.raises(FrameError) as info:
        decode(
            orjson.dumps(
                {"type": "event", "event_type": "queue position", "event_queue_position": {"position": "9" * 500}}
            )
        )
    assert len(str(info.value)) < 120


def test_error_frames_are_valid_without_event_type() -> None:
    raw = b'{"type":"event","error":{"error_code":"bad_frame","developer_message":"x","user_message":"y"}}'
    frame = decode(raw)
    assert frame.error is not None and frame.error.error_code == "bad_frame"
    sdk_validate(encode(frame))


def test_context_can_be_skipped_for_other_dialects() -> None:
    frame = decode(b'{"type": "message"}', context=False)
    assert frame.message is None


def test_dts_format() -> None:
    assert dts(1_795_615_525_123) == "2026-11-25T14:05:25.123Z"
    assert dts(0) == "1970-01-01T00:00:00.000Z"


def test_schema_is_generated_and_strict_about_types() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    defs = schema["$defs"]
    wire_models = {
        cls.__name__
        for cls in vars(models_module).values()
        if isinstance(cls, type) and issubclass(cls, WireModel) and cls is not WireModel
    }
    assert wire_models <= set(defs) | {"ConversationWebsocketMessage"}
    assert defs["EventType"]["enum"] == [e.value for e in EventType]
    validator = jsonschema.Draft202012Validator(schema)
    assert not validator.is_valid({"type": "message", "conversation_uuid": None})
    assert not validator.is_valid({"type": "event", "event_queue_position": {"position": "2"}})
    assert validator.is_valid({"type": "ping", "anything": [1, 2]})


def test_every_event_payload_key_is_an_envelope_field() -> None:
    for keys in EVENT_PAYLOADS.values():
        for key in keys:
            assert key in Frame.model_fields


_MODELS = list(
    dict.fromkeys(
        cls
        for cls in vars(models_module).values()
        if isinstance(cls, type) and issubclass(cls, WireModel) and cls is not WireModel
    )
)


@pytest.mark.parametrize("model", _MODELS, ids=[m.__name__ for m in _MODELS])
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_every_model_round_trips(model: type[WireModel], data: st.DataObject) -> None:
    wire = data.draw(wire_dicts(model))
    obj = model.model_validate_json(orjson.dumps(wire), strict=True)
    assert orjson.loads(orjson.dumps(obj.model_dump(exclude_none=True))) == wire


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(valid_frames())
def test_valid_frames_round_trip_and_pass_the_sdk(wire: dict[str, Any]) -> None:
    raw = orjson.dumps(wire)
    frame = decode(raw)
    out = encode(frame)
    assert orjson.loads(out) == wire
    assert decode(out) == frame
    schema_validate(out)
    if all(k in Frame.model_fields for k in wire):  # the SDK checks known keys; extras are free-form
        sdk_validate(out)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_either_decode_or_raise_frame_error(raw: bytes) -> None:
    try:
        frame = decode(raw)
    except FrameError as exc:
        assert str(exc)
    else:
        assert orjson.loads(encode(frame))["type"] == frame.type


@settings(max_examples=200, deadline=None)
@given(
    valid_frames(),
    st.sampled_from(["type", "conversation_uuid", "message", "event_type"]),
    st.integers(-(2**40), 2**40),
)
def test_wrong_types_are_reported_at_their_path(wire: dict[str, Any], key: str, value: int) -> None:
    wire[key] = value
    with pytest.raises(FrameError) as info:
        decode(orjson.dumps(wire))
    assert info.value.path in {key, "type", "event_type", "conversation_uuid", "message"}


def test_uuid4_text_is_the_version_4_uuid_of_its_bits() -> None:
    import random
    import uuid

    from simulator.protocol import uuid4_text

    rng = random.Random(3)
    for bits in [0, 2**128 - 1, *(rng.getrandbits(128) for _ in range(2000))]:
        assert uuid4_text(bits) == str(uuid.UUID(int=bits, version=4))
