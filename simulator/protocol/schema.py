"""JSON Schema (draft 2020-12) of the envelope, generated from the models."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from .models import ConversationWebsocketMessage

__all__ = ["SCHEMA_ID", "json_schema"]

SCHEMA_ID = "https://github.com/webchat-sim/webchat-sim/schema/ConversationWebsocketMessage.json"


class _WireSchema(GenerateJsonSchema):
    """Optional fields are absent, never null: drop the ``null`` branch and the
    ``default: null`` pydantic would otherwise write."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def model_fields_schema(self, schema: core_schema.ModelFieldsSchema) -> JsonSchemaValue:
        """Additional properties may hold any JSON value: ``true`` (the models
        type them only to refuse NaN and Infinity, which JSON has not)."""
        json_schema = super().model_fields_schema(schema)
        target = self.resolve_ref_schema(json_schema)
        if target.get("additionalProperties") == {}:
            target["additionalProperties"] = True
        return json_schema

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        if schema.get("default", ...) is not None:
            return super().default_schema(schema)
        return inner


def json_schema() -> dict[str, Any]:
    """The schema of one frame, with every nested model under ``$defs``."""
    schema = ConversationWebsocketMessage.model_json_schema(schema_generator=_WireSchema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }
