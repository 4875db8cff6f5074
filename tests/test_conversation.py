"""Helpers of the conversation state: trusted model building and timestamps."""

from __future__ import annotations

import random
from typing import Any

import pytest

from simulator.mock.conversation import build, cached_dts
from simulator.protocol import (
    ConversationMessage,
    ConversationMessageTransportStatus,
    ConversationParticipant,
    ConversationSummary,
    EventType,
    Frame,
    FrameType,
    Medium,
    MessageType,
    TransportStatus,
    decode,
    dts,
    encode,
)
from simulator.protocol.models import WireModel

ARN = "arn:aws:connect:us-east-1:000000000000:instance/DEMO/participant/5f0c1d2e-8f3a-4b6e-9a1d-2c3b4d5e6f70"
DTS = "2026-11-25T14:05:25.123Z"


def participant() -> dict[str, Any]:
    return {
        "conversation_participant_arn": ARN,
        "conversation_participant_name": "Jane Doe",
        "conversation_participant_uuid": "5f0c1d2e-8f3a-4b6e-9a1d-2c3b4d5e6f70",
        "email": None,
        "joined_dts": DTS,
        "language_iso_code": "fr",
        "status": "active",
        "unread_messages": 2,
    }


CASES: list[tuple[type[WireModel], dict[str, Any]]] = [
    (ConversationMessageTransportStatus, {"conversation_participant_arn": ARN, "status": TransportStatus.SENT}),
    (
        ConversationMessage,
        {
            "author_conversation_participant_arn": ARN,
            "body": "Où est ma commande ?",
            "client_message_id": "c-1",
            "message_dts": DTS,
            "message_epoch": 1_795_615_525_123,
            "media_urls": None,
            "transport_statuses": [ConversationMessageTransportStatus(conversation_participant_arn=ARN)],
            "type": MessageType.MESSAGE,
        },
    ),
    (ConversationParticipant, participant()),
    (
        ConversationSummary,
        {
            "closed": False,
            "medium": Medium.WEBSOCKET,
            "message_count": 3,
            "participants": [ConversationParticipant(**participant())],
            "unread_messages": True,
        },
    ),
    (
        Frame,
        {
            "type": FrameType.EVENT,
            "event_type": EventType.NEW_CONVERSATION,
            "conversation_uuid": "7c1f1d2e-8f3a-4b6e-9a1d-2c3b4d5e6f70",
            "event_new_conversation": ConversationSummary(message_count=0),
            "resume_token": "0123456789abcdef",  # an additional property
        },
    ),
]


@pytest.mark.parametrize(("cls", "fields"), CASES, ids=[cls.__name__ for cls, _ in CASES])
def test_build_makes_what_validation_makes(cls: type[WireModel], fields: dict[str, Any]) -> None:
    built = build(cls, **fields)
    validated = cls(**fields)
    assert type(built) is cls
    assert built == validated
    assert built.model_fields_set == validated.model_fields_set
    assert built.model_extra == validated.model_extra
    assert built.model_dump() == validated.model_dump()
    if cls is Frame:
        assert encode(built) == encode(validated)  # type: ignore[arg-type]
        assert decode(encode(built)) == validated  # type: ignore[arg-type]


def test_build_refuses_models_with_non_none_defaults() -> None:
    class Defaulted(WireModel):
        count: int = 0

    with pytest.raises(TypeError, match="default to None"):
        build(Defaulted, count=1)


def test_built_models_can_be_copied_and_assigned() -> None:
    built = build(ConversationMessage, body="hi", transport_statuses=[])
    copied = built.model_copy(update={"body": "hello"})
    built.client_message_id = "c-2"
    assert copied.body == "hello" and built.body == "hi"
    assert "client_message_id" in built.model_fields_set and "client_message_id" not in copied.model_fields_set


def test_cached_dts_is_dts() -> None:
    rng = random.Random(3)
    samples = [
        *range(1_795_615_524_990, 1_795_615_526_010),
        *(rng.randrange(0, 4_102_444_800_000) for _ in range(5000)),
    ]
    for epoch_ms in samples:
        assert cached_dts(epoch_ms) == dts(epoch_ms)
