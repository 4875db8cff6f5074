"""The REST side's vocabulary: callers, results, errors, request bodies and
the response envelopes of UltraCart's SDK (used by :mod:`.rest`).

* :class:`Caller`: who makes a REST call, as the shell's ``authenticate``
  establishes it (from an API key or a JWT).
* :class:`RestResult`: what a handler decided: an HTTP status, the JSON body
  (``None``: no body, 204) and the websocket deliveries the call produced.
* :class:`RestError`: a refusal, rendered as UltraCart's ``ErrorResponse``
  (``{"error": {...}, "metadata": {}, "success": false}``).
* :func:`parse_body`: a request body checked against a small field table
  (:data:`BodySpec`). Policy: the body must be a JSON object of at most
  :data:`MAX_BODY_BYTES` (else 413), fields of the model's types (``null``
  counts as absent), enum values from the model's allowed values, strings
  within their length limit (400 ``field_too_long``); **unknown fields are
  refused** (400 ``unknown_field``) although UltraCart's models admit
  additional properties: the SDK never sends any, so an unknown field is a
  typo the mock should point out rather than ignore.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from ..errors import Refused
from ..protocol import ErrorCode, WireModel, epoch_ms
from .base import Delivery
from .conversation import Client, Role
from .engine import Engine

__all__ = [
    "MAX_BODY_BYTES",
    "BodySpec",
    "Caller",
    "Field",
    "RateLimiter",
    "RestError",
    "RestResult",
    "agent_only",
    "caller_arn",
    "client_of",
    "engine_of",
    "epoch_param",
    "error_body",
    "from_refusal",
    "int_param",
    "ok",
    "parse_body",
    "strict_int",
    "wire",
]

MAX_BODY_BYTES = 64 * 1024
"""Largest request body accepted (413 beyond)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """Who makes a REST call (what ``authenticate`` returns for a request).

    ``name`` identifies an agent (the websocket's agent name, its identity
    across reconnects); ``participant_arn`` identifies a customer (the ARN the
    engine gave it, as its token carries it) and may be given for an agent
    too. ``queues`` are the queues an agent may see and act in (empty: all).
    """

    role: Role
    name: str | None = None
    participant_arn: str | None = None
    queues: tuple[str, ...] = ()
    user_id: int | None = None
    email: str | None = None
    merchant_id: str | None = None


class RestResult(NamedTuple):
    """A handler's decision: HTTP status, JSON body (``None``: none) and the
    websocket deliveries to send (then the shell re-arms its ``tick`` timer)."""

    status: int
    body: dict[str, Any] | None
    deliveries: list[Delivery] = []  # noqa: RUF012 - NamedTuple default, never mutated


_USER_MESSAGES: Mapping[int, str] = {
    400: "The request could not be understood.",
    401: "Please sign in.",
    403: "That is not allowed for you.",
    404: "That does not exist.",
    405: "That method is not allowed here.",
    409: "That cannot be done now.",
    413: "The request is too large.",
    429: "Too many requests; please slow down.",
    500: "Something went wrong on our side.",
}


class RestError(Exception):
    """A refused REST call: HTTP ``status``, UltraCart ``error_code`` and a
    developer message (never a traceback)."""

    def __init__(self, status: int, code: str, message: str, *, object_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.object_id = object_id

    def result(self) -> RestResult:
        return RestResult(self.status, error_body(self.status, self.code, self.message, object_id=self.object_id))


def error_body(status: int, code: str, message: str, *, object_id: str | None = None) -> dict[str, Any]:
    """UltraCart's ``ErrorResponse`` JSON."""
    error: dict[str, Any] = {
        "developer_message": message,
        "error_code": code,
        "user_message": _USER_MESSAGES.get(status, _USER_MESSAGES[400]),
    }
    if object_id is not None:
        error["object_id"] = object_id
    return {"error": error, "metadata": {}, "success": False}


_REFUSAL_STATUS: Mapping[str, int] = {
    ErrorCode.MISSING_FIELD: 400,
    ErrorCode.FIELD_TOO_LONG: 400,
    ErrorCode.EMPTY_MESSAGE: 400,
    ErrorCode.MESSAGE_TOO_LONG: 400,
    ErrorCode.FORBIDDEN_FOR_ROLE: 403,
    ErrorCode.UNKNOWN_QUEUE: 404,
    ErrorCode.MESSAGE_NOT_FOUND: 404,
    ErrorCode.NOT_A_PARTICIPANT: 409,  # the caller sees the conversation (checked first) but is not in it
}


def from_refusal(refusal: Refused) -> RestError:
    """The engine's refusal as a REST error: 400 bad input, 403 role, 404
    unknown queue or message, otherwise 409 (state conflicts: closed,
    already engaged, at capacity, no longer waiting, not in it, …)."""
    status = _REFUSAL_STATUS.get(refusal.code, 409)
    return RestError(status, str(refusal.code), refusal.reason, object_id=refusal.object_id)


def engine_of(core: Any) -> Engine:
    """The engine itself: ``core`` or the engine an autopilot hub wraps."""
    engine = getattr(core, "engine", core)
    if not isinstance(engine, Engine):
        raise TypeError(f"not an engine or a core around one: {type(core).__name__}")
    return engine


def client_of(engine: Engine, caller: Caller) -> Client | None:
    """The engine's participant for ``caller`` (``None``: not connected nor resumable)."""
    if caller.role is Role.AGENT:
        return engine.agent_named(caller.name) if caller.name else None
    return engine.customer_with_arn(caller.participant_arn) if caller.participant_arn else None


def caller_arn(engine: Engine, caller: Caller) -> str | None:
    """The caller's participant ARN: its token's, else its participant's in the engine."""
    if caller.participant_arn:
        return caller.participant_arn
    client = client_of(engine, caller)
    return client.arn if client is not None else None


def agent_only(caller: Caller) -> None:
    """403 ``forbidden_for_role`` unless an agent calls."""
    if caller.role is not Role.AGENT:
        raise RestError(403, "forbidden_for_role", "this endpoint is for agents")


def wire(model: WireModel) -> dict[str, Any]:
    """A protocol model as UltraCart JSON (no nulls: the SDK refuses them)."""
    data: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return data


def ok(payload: Mapping[str, Any], *, result_set: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A success envelope: ``payload`` plus ``success`` and ``metadata``."""
    metadata: dict[str, Any] = {}
    if result_set is not None:
        metadata["result_set"] = dict(result_set)
    return {**payload, "metadata": metadata, "success": True}


# ---------------------------------------------------------------------------
# Request bodies


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a request model: its JSON types and, for enums, its values."""

    types: tuple[type, ...]
    allowed: frozenset[str] | None = None
    items: type | None = None
    """For lists: the type of the items."""
    bounds: tuple[int, int] | None = None
    """For integers: inclusive bounds."""
    max_length: int | None = None
    """For strings (and lists of strings: each item, and the number of items): the longest accepted."""


BodySpec = Mapping[str, Field]
"""A request model: field name -> :class:`Field`."""

_TYPE_NAMES: Mapping[type, str] = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    list: "a list",
    dict: "an object",
}


def _check(name: str, spec: Field, value: Any) -> None:
    # bool is an int in Python, not in JSON: an integer field refuses true/false
    if not isinstance(value, spec.types) or (isinstance(value, bool) and bool not in spec.types):
        expected = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in spec.types)
        raise RestError(400, "invalid_type", f"{name}: must be {expected}, got {type(value).__name__}")
    if spec.allowed is not None and value not in spec.allowed:
        raise RestError(400, "invalid_value", f"{name}: must be one of {', '.join(sorted(spec.allowed))}")
    if spec.bounds is not None and isinstance(value, int):
        low, high = spec.bounds
        if not low <= value <= high:
            raise RestError(400, "invalid_value", f"{name}: must be between {low} and {high}, got {value}")
    if spec.items is not None and isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, spec.items) or isinstance(item, bool):
                raise RestError(400, "invalid_type", f"{name}[{index}]: must be {_TYPE_NAMES[spec.items]}")
    if spec.max_length is not None:
        limit = spec.max_length
        if isinstance(value, str) and len(value) > limit:
            raise RestError(400, "field_too_long", f"{name}: {len(value)} characters, limit {limit}")
        if isinstance(value, list):
            if len(value) > limit:
                raise RestError(400, "field_too_long", f"{name}: {len(value)} entries, limit {limit}")
            for index, item in enumerate(value):
                if isinstance(item, str) and len(item) > limit:
                    raise RestError(400, "field_too_long", f"{name}[{index}]: {len(item)} characters, limit {limit}")


def parse_body(raw: bytes | None, spec: BodySpec) -> dict[str, Any]:
    """The request body as a dict of known fields (nulls dropped); an empty
    body is ``{}``. 413 beyond :data:`MAX_BODY_BYTES`; 400 for a body that is
    not a JSON object, a field of the wrong type or value, an unknown field."""
    if raw is None or not raw.strip():
        return {}
    if len(raw) > MAX_BODY_BYTES:
        raise RestError(413, "body_too_large", f"request body of {len(raw)} bytes, limit {MAX_BODY_BYTES}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RestError(400, "invalid_json", f"request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RestError(400, "invalid_body", f"request body must be a JSON object, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for name, value in data.items():
        known = spec.get(name)
        if known is None:
            shown = name if len(name) <= 60 else name[:57] + "..."
            raise RestError(400, "unknown_field", f"{shown}: unknown field (known: {', '.join(spec) or 'none'})")
        if value is None:
            continue
        _check(name, known, value)
        out[name] = value
    return out


_INT_TEXT = re.compile(r"-?[0-9]{1,19}")


def strict_int(text: str) -> int | None:
    """``text`` as an integer if it is one written in ASCII digits (an optional
    ``-``, at most 19 digits), else ``None``. Python's ``int()`` also reads
    other scripts' digits (``"١٢"`` is 12), refuses ``"²"`` although
    ``str.isdigit`` accepts it, and refuses more than 4,300 digits with a
    ``ValueError``: query strings are parsed with this instead."""
    return int(text) if _INT_TEXT.fullmatch(text) else None


def epoch_param(name: str, text: str) -> int:
    """An ISO-8601 date and time (UTC unless it says otherwise) as epoch milliseconds (400 otherwise)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RestError(400, "invalid_value", f"{name}: not an ISO-8601 date and time: {text[:40]!r}") from None
    return epoch_ms((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def int_param(name: str, text: str | None, *, default: int, low: int, high: int) -> int:
    """A query or path integer within bounds (400 otherwise)."""
    if text is None or text == "":
        return default
    value = strict_int(text)
    if value is None:
        raise RestError(400, "invalid_type", f"{name}: must be an integer in ASCII digits, got {text[:40]!r}")
    if not low <= value <= high:
        raise RestError(400, "invalid_value", f"{name}: must be between {low} and {high}, got {value}")
    return value


class RateLimiter:
    """Token buckets per caller (``rate`` calls a second, bursts of ``burst``):
    :meth:`allow` says whether a call at ``now`` fits; :func:`.rest.routes`
    answers 429 ``too_many_requests`` when it does not. At most ``max_callers``
    buckets are kept (the least recently used one is dropped)."""

    def __init__(self, rate: float, burst: int, *, max_callers: int = 10_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self.max_callers = max_callers
        self._buckets: dict[tuple[str, str | None, str | None], tuple[float, float]] = {}

    def allow(self, caller: Caller, now: float) -> bool:
        key = (caller.role.value, caller.name, caller.participant_arn)
        tokens, at = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.max_callers:
            del self._buckets[next(iter(self._buckets))]
        return allowed
