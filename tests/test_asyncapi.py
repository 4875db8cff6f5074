"""``webchat-sim schema --asyncapi``: an AsyncAPI 3.0.0 document that the
official schema accepts, one message per frame kind and direction, the
client side equal to the engine's accept table, payloads from the models'
JSON Schema, and every frame the engine sends or accepts valid for its
message (and for no other)."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from simulator.mock.conversation import Role
from simulator.mock.engine import Routing
from simulator.mock.rules import LIMITS, RULES
from simulator.protocol import EventType, FrameType, json_schema
from simulator.protocol.asyncapi import (
    CHANNEL,
    CLIENT_KINDS,
    ENVELOPE,
    SERVER_KINDS,
    asyncapi_document,
    message_key,
)
from tests.cli import ROOT, run_cli
from tests.engine_harness import A1, C1, C2, Chat, event, of, queue_uuid_of
from tests.test_engine import rrweb_parts

pytestmark = pytest.mark.timeout(120)

OFFICIAL = Path(__file__).parent / "data" / "asyncapi" / "3.0.0.json"
OFFICIAL_SHA256 = "d4571a420e6ffb7fcc7066c95a6db1202f299a3c51daa103d0706bf30f95e626"
DOC_URI = "urn:webchat-sim:asyncapi"

Kind = tuple[str, str | None, bool]  # (type, event_type, is an error frame)


@cache
def _official() -> jsonschema.Draft7Validator:
    """The AsyncAPI 3.0.0 schema (draft-07); its definitions, keyed by their
    ``$id``, are the resources its ``$ref``s name."""
    raw = OFFICIAL.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == OFFICIAL_SHA256, "the vendored schema changed"
    schema = json.loads(raw)
    definitions = schema["definitions"].items()
    resources = [(uri, Resource.from_contents(s, default_specification=DRAFT7)) for uri, s in definitions]
    registry: Registry[Any] = Registry().with_resources(resources)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, registry=registry)


def _official_errors(document: dict[str, Any]) -> list[str]:
    return [f"{e.json_path}: {e.message[:200]}" for e in _official().iter_errors(document)]


@cache
def _document() -> dict[str, Any]:
    return asyncapi_document()


def _kind_of(message: dict[str, Any]) -> Kind:
    """The kind a message's payload pins: its ``type`` and ``event_type`` constants."""
    envelope, narrowing = message["payload"]["allOf"]
    assert envelope == {"$ref": f"#/components/schemas/{ENVELOPE}"}
    properties = narrowing["properties"]
    event_type = properties.get("event_type", {}).get("const")
    is_error = narrowing.get("not") == {"required": ["event_type"]}
    return properties["type"]["const"], event_type, is_error


def _operation(action: str) -> dict[str, Any]:
    (operation,) = [op for op in _document()["operations"].values() if op["action"] == action]
    return operation


def _messages(action: str) -> dict[str, dict[str, Any]]:
    """The messages of the operation with ``action``, by key, resolved to components."""
    document = _document()
    out = {}
    for ref in _operation(action)["messages"]:
        prefix = f"#/channels/{CHANNEL}/messages/"
        assert ref["$ref"].startswith(prefix)
        key = ref["$ref"].removeprefix(prefix)
        channel_ref = document["channels"][CHANNEL]["messages"][key]["$ref"]
        out[key] = document["components"]["messages"][channel_ref.removeprefix("#/components/messages/")]
    return out


@cache
def _payload_validator(key: str) -> jsonschema.Draft7Validator:
    registry: Registry[Any] = Registry().with_resource(
        DOC_URI, Resource.from_contents(_document(), default_specification=DRAFT7)
    )
    return jsonschema.Draft7Validator({"$ref": f"{DOC_URI}#/components/messages/{key}/payload"}, registry=registry)


def _matching(action: str, frame: dict[str, Any]) -> list[str]:
    """The keys of the messages of ``action`` whose payload ``frame`` validates against."""
    return [key for key in _messages(action) if _payload_validator(key).is_valid(frame)]


# ---------------------------------------------------------------------------
# The document


def test_the_document_validates_against_the_official_asyncapi_3_schema() -> None:
    document = _document()
    assert document["asyncapi"] == "3.0.0"
    assert _official_errors(document) == []
    assert document["servers"]["mock"]["host"] == "127.0.0.1:8765"
    assert document["servers"]["mock"]["protocol"] == "ws"
    assert document["channels"][CHANNEL]["address"] == "/ws"


@pytest.mark.parametrize("defect", ["action", "ws_binding", "schema_type", "message_field", "security"])
def test_the_official_schema_does_reject_a_broken_document(defect: str) -> None:
    """The validation reaches into the referenced definitions (else the test above could not fail)."""
    broken = copy.deepcopy(_document())
    if defect == "action":
        broken["operations"]["sendServerFrames"]["action"] = "publish"
    elif defect == "ws_binding":
        broken["channels"][CHANNEL]["bindings"]["ws"]["method"] = "PUT"
    elif defect == "schema_type":
        broken["components"]["schemas"]["Currency"]["type"] = 7
    elif defect == "message_field":
        broken["components"]["messages"]["client.ping"]["payloads"] = {}
    else:
        broken["components"]["securitySchemes"]["jwtQuery"]["in"] = "body"
    assert _official_errors(broken) != []


def test_every_frame_kind_appears_exactly_once_per_direction() -> None:
    client = [_kind_of(m) for m in _messages("receive").values()]
    server = [_kind_of(m) for m in _messages("send").values()]
    for kinds in (client, server):
        assert len(kinds) == len(set(kinds))
    every = {(t.value, None, False) for t in FrameType if t is not FrameType.EVENT}
    every |= {(FrameType.EVENT.value, e.value, False) for e in EventType}
    assert {k for k in client + server if not k[2]} == every  # every type and every event_type
    assert server.count((FrameType.EVENT.value, None, True)) == 1  # the error frame, server side only
    assert (FrameType.EVENT.value, None, True) not in client
    # the documented "from server" column: all but the two client requests
    client_only = {EventType.WEBCHAT_START_CONVERSATION.value, EventType.ENGAGE_CUSTOMER.value}
    assert {e for _, e, _ in server if e} == {e.value for e in EventType} - client_only
    assert (FrameType.CHECK_QUEUE_POSITION.value, None, False) not in server
    # the channel lists exactly the messages of the two operations
    assert set(_document()["channels"][CHANNEL]["messages"]) == set(_messages("receive")) | set(_messages("send"))


def test_the_client_operation_is_the_engines_accept_table() -> None:
    messages = _messages("receive")
    by_kind = {_kind_of(m)[:2]: m for m in messages.values()}
    table = {(t.value, e.value if e else None): rule for (t, e), rule in RULES.items() if t is not None}
    assert set(by_kind) == set(table)
    for kind, rule in table.items():
        assert {tag["name"] for tag in by_kind[kind]["tags"]} == {role.value for role in rule.roles}, kind
        assert f"row {rule.row}." in by_kind[kind]["description"]
    assert {(k.type, k.event_type) for k in CLIENT_KINDS} == set(RULES)


def test_the_handshake_binding_matches_the_front_door() -> None:
    binding = _document()["channels"][CHANNEL]["bindings"]["ws"]
    query = binding["query"]["properties"]
    assert query["role"]["enum"] == [role.value for role in Role]
    assert (query["name"]["maxLength"], query["email"]["maxLength"], query["lang"]["maxLength"]) == (
        LIMITS.name,
        LIMITS.email,
        LIMITS.language,
    )
    assert set(query) == {"role", "name", "email", "lang", "queues", "token", "since"}
    assert "Authorization" in binding["headers"]["properties"]
    schemes = _document()["components"]["securitySchemes"]
    assert schemes["jwtQuery"]["name"] == "token" and schemes["jwtQuery"]["in"] == "query"
    assert schemes["jwtBearer"]["scheme"] == "bearer"


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            found.append(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def test_the_payload_schemas_are_the_json_schemas_models() -> None:
    schemas = _document()["components"]["schemas"]
    generated = json_schema()
    assert set(schemas) == {ENVELOPE, *generated["$defs"]}
    as_text = json.dumps(schemas)
    assert "#/$defs/" not in as_text
    assert json.loads(as_text.replace("#/components/schemas/", "#/$defs/")) == {
        ENVELOPE: {k: v for k, v in generated.items() if k not in ("$schema", "$id", "$defs")},
        **generated["$defs"],
    }
    # AsyncAPI schemas are draft-07, where a $ref's siblings are ignored: there must be none
    for node in _walk(schemas):
        if "$ref" in node:
            assert set(node) == {"$ref"}, node
            assert node["$ref"].removeprefix("#/components/schemas/") in schemas


def test_payloads_pin_the_kind_and_require_what_the_codec_requires() -> None:
    client, server = _messages("receive"), _messages("send")
    cases: list[tuple[dict[str, Any], str, bool]] = [
        ({"type": "ping"}, "client.ping", True),
        ({"type": "message", "conversation_uuid": "c", "message": {"body": "hi"}}, "client.message", True),
        ({"type": "message", "message": {"body": "hi"}}, "client.message", False),  # no conversation_uuid
        ({"type": "event", "event_type": "typing", "conversation_uuid": "c"}, "client.event.typing", False),
        ({"type": "event", "event_type": "participant left", "conversation_uuid": "c"},
         "client.event.participant_left", True),
        ({"type": "event", "event_type": "participant left", "conversation_uuid": "c"},
         "server.event.participant_left", False),  # the server's carries the summary and the participant
        ({"type": "event", "error": {"error_code": "x"}}, "server.error", True),
        ({"type": "event", "event_type": "typing", "error": {"error_code": "x"}}, "server.error", False),
        ({"type": "event", "event_type": "queue position", "event_queue_position": {"position": "2"}},
         "server.event.queue_position", False),  # models' types hold: position is an integer
    ]
    for frame, key, valid in cases:
        assert key in client or key in server
        assert _payload_validator(key).is_valid(frame) is valid, (frame, key)


# ---------------------------------------------------------------------------
# Real frames: everything the engine accepts and sends in one scripted run


class _Recording(Chat):
    """A :class:`Chat` that keeps every frame the clients send, as sent."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.sent: list[dict[str, Any]] = []

    def send(self, conn: int, wire: dict[str, Any]) -> list[Any]:
        self.sent.append(wire)
        return super().send(conn, wire)


def _scripted_run() -> _Recording:
    chat = _Recording(routing=Routing.MANUAL)
    chat.agent(A1)  # queue status update
    conv = chat.start(C1).conversation_uuid  # new conversation, message, queue position, queue new member
    assert conv is not None
    chat.send(C1, {"type": "check queue position", "conversation_uuid": conv})
    chat.send(C1, {"type": "ping"})
    chat.send(C1, {"type": "event", "event_type": "engage customer",
                   "event_engage_customer": {"conversation_webchat_queue_uuid": "q"}})  # error: forbidden
    chat.engage(A1, queue_uuid_of(chat, C1))  # new conversation, participant join
    chat.send(C1, event("typing", conv, event_typing={"value": "hel"}))
    chat.say(C1, conv, "hello", client_id="c-1")  # message, new message
    (said,) = [f for f in of(chat.inbox[A1], FrameType.MESSAGE) if f.message and f.message.body == "hello"]
    assert said.message is not None
    read = {"conversation_message_uuid": said.message.conversation_message_uuid}
    chat.send(A1, event("read message", conv, event_read_message=read))  # read message, updated message
    chat.send(C1, event("webchat context", conv, event_webchat_context={"url": "https://shop.test/cart"}))
    for part in rrweb_parts("snapshot" * 10, parts=2, kind="init", index=0):
        chat.send(C1, event("rrweb", conv, event_rrweb=part))
    chat.send(A1, event("add coupon", conv, event_add_coupon={"coupon_code": "TENOFF"}))
    chat.send(A1, event("add item", conv, event_add_item={"items": [{"item_id": "SKU-1", "quantity": 1}]}))
    chat.send(C1, {"type": "message", "conversation_uuid": conv,
                   "message": {"body": "bonjour", "language_iso_code": "fr"}})  # participant update
    other = chat.start(C2).conversation_uuid
    assert other is not None
    chat.close(C2, other)  # conversation closed (an abandon)
    chat.send(C1, event("participant left", conv))  # participant left, then conversation closed
    chat.tick(5.0)  # coalesced queue status update
    return chat


def test_every_frame_of_a_scripted_run_validates_against_its_message_and_no_other() -> None:
    chat = _scripted_run()
    client = {_kind_of(m)[:2]: key for key, m in _messages("receive").items()}
    server = {_kind_of(m): key for key, m in _messages("send").items()}
    seen_client, seen_server = set(), set()
    for wire in chat.sent:
        key = client[(wire["type"], wire.get("event_type"))]
        assert _matching("receive", wire) == [key], wire
        seen_client.add(key)
    assert chat.log
    for raw in chat.log:
        frame = orjson.loads(raw)
        is_error = "error" in frame and "event_type" not in frame
        key = server[(frame["type"], frame.get("event_type"), is_error)]
        assert _matching("send", frame) == [key], frame
        seen_server.add(key)
    # the run exercises every kind of either direction, so the check above covers them all
    assert seen_client == set(client.values())
    assert seen_server == set(server.values())
    assert {message_key("client", k) for k in CLIENT_KINDS} == seen_client
    assert {message_key("server", k) for k in SERVER_KINDS} == seen_server


# ---------------------------------------------------------------------------
# The command line


def test_the_cli_prints_the_document_as_json_and_exits_0() -> None:
    proc = run_cli("schema", "--asyncapi")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert json.loads(proc.stdout) == _document()
    assert proc.stdout.endswith("}\n") and "\n  " in proc.stdout  # indented
    compact = run_cli("schema", "--asyncapi", "--compact")
    assert compact.returncode == 0
    assert compact.stdout.count("\n") == 1 and json.loads(compact.stdout) == _document()


def test_the_cli_writes_the_document_to_output(tmp_path: Path) -> None:
    target = tmp_path / "asyncapi.json"
    proc = run_cli("schema", "--asyncapi", "--output", str(target))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert json.loads(target.read_bytes()) == _document()
    assert _official_errors(json.loads(target.read_bytes())) == []
    plain = tmp_path / "schema.json"
    assert run_cli("schema", "--output", str(plain)).returncode == 0
    assert plain.read_bytes() == orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def test_an_unwritable_output_is_one_line_and_exit_1(tmp_path: Path) -> None:
    proc = run_cli("schema", "--asyncapi", "--output", str(tmp_path / "missing" / "asyncapi.json"))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("webchat-sim schema: cannot write ") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_plain_schema_output_is_unchanged() -> None:
    """``webchat-sim schema`` (no --asyncapi) prints the JSON Schema exactly as before."""
    option = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
    assert run_cli("schema").stdout.encode() == orjson.dumps(json_schema(), option=option)
    compact = orjson.dumps(json_schema(), option=orjson.OPT_APPEND_NEWLINE)
    assert run_cli("schema", "--compact").stdout.encode() == compact


def test_the_builder_imports_neither_wing() -> None:
    code = "import sys, simulator.protocol.asyncapi; print('\\n'.join(sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=True)
    loaded = set(proc.stdout.split())
    assert not {m for m in loaded if m.startswith(("simulator.mock", "simulator.load"))}
