"""Cross-checks of frames against UltraCart's own SDK models and our schema."""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema
import orjson
from ultracart import model_utils
from ultracart.api_client import ApiClient
from ultracart.model.conversation_websocket_message import ConversationWebsocketMessage

from simulator.protocol import json_schema

__all__ = ["schema_validate", "sdk_validate", "validate_frame_bytes"]

_CFG = ApiClient().configuration


def sdk_validate(raw: bytes | str) -> Any:
    """Raise unless ``raw`` is a valid ``ConversationWebsocketMessage`` for the
    UltraCart SDK (types, enums, no nulls); return the SDK object."""
    data = orjson.loads(raw)
    assert isinstance(data, dict), f"not a JSON object: {raw!r}"
    return model_utils.validate_and_convert_types(data, (ConversationWebsocketMessage,), ["frame"], True, True, _CFG)


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_validate(raw: bytes | str) -> None:
    """Raise unless ``raw`` validates against ``webchat-sim schema``."""
    _validator().validate(orjson.loads(raw))


def validate_frame_bytes(raw: bytes | str) -> None:
    """Both checks."""
    sdk_validate(raw)
    schema_validate(raw)
