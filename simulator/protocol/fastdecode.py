"""The fast path of :func:`~.codec.decode`: msgspec parses and checks a
frame, then the pydantic objects are built from its result without a second
validation (issue 12: decode 0.71–0.80× pydantic's, benchmarks/bench_codec.py).

* The msgspec types are generated at import from the pydantic models (one
  definition: the JSON Schema and the AsyncAPI document come from the
  models): per model a ``Struct`` with the same fields, each
  ``T | None | UNSET`` (default ``UNSET``: absent), the types of pydantic's
  strict mode (``"2"`` is not an integer, a boolean is no number, enums by
  exact value, the 64-bit bounds of ``Int64``, no ``NaN``/``Infinity``) and
  ``forbid_unknown_fields``. A model msgspec cannot mirror exactly (another
  constraint, a validator, other config) turns the fast path off with a
  warning (and fails ``tests/test_fastdecode.py``, which requires it on).
* Per model a builder (generated source) makes the object pydantic's
  validation gives: every field in ``__dict__`` in field order,
  ``model_fields_set`` the keys the frame carries (``null`` included, read
  as absent), no extras, no private attributes.

:func:`decode_fast` returns ``None`` whenever msgspec refuses a frame, for
any reason: an additional property (pydantic keeps it and ``encode`` writes
it back), a wrong type, invalid JSON… The codec then validates with
pydantic, which gives the error with our exact path and reason. A frame
msgspec accepts is one pydantic's strict validation accepts too, with equal
values (tests/test_fastdecode.py compares both on drawn and mutated
frames). Without msgspec installed, :data:`ACTIVE` is false and
:func:`decode_fast` always returns ``None``.
"""

from __future__ import annotations

import enum
import types
import typing
import warnings
from collections.abc import Callable
from typing import Any

from annotated_types import Ge, Le
from pydantic.fields import FieldInfo

from .models import Frame, WireModel

__all__ = ["ACTIVE", "decode_fast", "frame_structs"]

try:
    import msgspec
except ImportError:  # pragma: no cover - a dependency; without it pydantic decodes every frame
    msgspec = None  # type: ignore[assignment]

_INT64 = (-(2**63), 2**63 - 1)


def _field_type(annotation: Any, structs: dict[type[WireModel], Any]) -> Any:
    """The msgspec type that accepts exactly what pydantic's strict mode
    accepts for ``annotation`` (without the ``None`` of optional fields)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        bounds: dict[str, int] = {}
        for meta in extra:
            for item in meta.metadata if isinstance(meta, FieldInfo) else [meta]:
                if isinstance(item, Ge) and isinstance(item.ge, int):
                    bounds["ge"] = item.ge
                elif isinstance(item, Le) and isinstance(item.le, int):
                    bounds["le"] = item.le
                else:
                    raise TypeError(f"fastdecode: no msgspec equivalent of {item!r}")
        if base is not int or (bounds.get("ge"), bounds.get("le")) != _INT64:
            raise TypeError(f"fastdecode: no msgspec equivalent of {annotation!r}")
        return typing.Annotated[int, msgspec.Meta(ge=_INT64[0], le=_INT64[1])]
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        return list[_field_type(item_type, structs)]  # type: ignore[misc]
    if isinstance(annotation, type) and issubclass(annotation, WireModel):
        return _struct(annotation, structs)
    if isinstance(annotation, type) and issubclass(annotation, enum.StrEnum):
        return annotation
    if annotation in (str, bool, float):  # float: an integer is read as a float, as pydantic does
        return annotation
    raise TypeError(f"fastdecode: no msgspec equivalent of {annotation!r}")


def _optional_inner(model: type[WireModel], name: str, info: FieldInfo) -> Any:
    """``T`` of a field ``name: T | None = None`` (the only kind our models have)."""
    annotation = info.annotation
    members = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    inner = [m for m in members if m is not type(None)]
    if (
        len(members) != 2
        or len(inner) != 1
        or info.default is not None
        or info.default_factory is not None
        or info.alias not in (None, name)
        or info.validation_alias not in (None, name)
        or info.metadata
    ):
        raise TypeError(f"fastdecode: {model.__name__}.{name} is not a plain optional field")
    return inner[0]


def _struct(model: type[WireModel], structs: dict[type[WireModel], Any]) -> Any:
    """The msgspec ``Struct`` type of ``model`` (and of the models in it)."""
    if model in structs:
        return structs[model]
    config = model.model_config
    decorators = model.__pydantic_decorators__
    if (
        config.get("extra") != "allow"
        or config.get("allow_inf_nan") is not False
        or config.get("strict")
        or decorators.validators
        or decorators.field_validators
        or getattr(decorators, "root_validators", None)  # pydantic v1-style, deprecated
        or decorators.model_validators
    ):
        raise TypeError(f"fastdecode: the config or validators of {model.__name__} have no msgspec equivalent")
    unset = msgspec.UnsetType
    fields = [
        (name, typing.Union[_field_type(_optional_inner(model, name, info), structs), None, unset], msgspec.UNSET)  # noqa: UP007
        for name, info in model.model_fields.items()
    ]
    # gc=False: a decoded tree has no cycles, and untracked Structs do not count towards collections.
    struct = msgspec.defstruct(model.__name__, fields, kw_only=True, forbid_unknown_fields=True, gc=False)
    structs[model] = struct
    return struct


def _builder_source(model: type[WireModel], index: dict[type[WireModel], int]) -> str:
    """Python source of ``build_<n>(s)``: the ``model`` object of Struct ``s``.

    One test per field (``UNSET``: absent, then ``None``; else a field set,
    a nested model built) and one attribute store per field, in field order
    (as pydantic's ``__dict__``): stored one by one on a fresh object, the
    ``__dict__`` shares its keys with every other object of the class (a
    split dict: ~0.3 KB of values, not a ~0.8 KB table for 26 fields)."""
    n = index[model]
    hints = typing.get_type_hints(model)
    lines = [
        f"def build_{n}(s, UNSET=UNSET, raw=raw_{n}, model=model_{n}):",
        "    m = raw()",
        "    fs = set()",
    ]
    for name in model.model_fields:
        inner = typing.get_args(hints[name])[0]
        is_list = typing.get_origin(inner) is list
        item = typing.get_args(inner)[0] if is_list else inner
        lines += [f"    v = s.{name}", "    if v is UNSET:", "        v = None"]
        lines += ["    else:", f"        fs.add({name!r})"]
        if isinstance(item, type) and issubclass(item, WireModel):
            build = f"build_{index[item]}"
            value = f"[{build}(x) for x in v]" if is_list else f"{build}(v)"
            lines += ["        if v is not None:", f"            v = {value}"]
        lines += [f"    m.{name} = v"]
    lines += [
        "    m.__pydantic_fields_set__ = fs",
        "    m.__pydantic_extra__ = {}",
        "    m.__pydantic_private__ = None",
        "    m.__class__ = model",
        "    return m",
    ]
    return "\n".join(lines)


def _raw_class(model: type[WireModel]) -> type[WireModel]:
    """A class of the same layout as ``model`` whose attributes are set as
    plain objects' are (pydantic's ``__setattr__`` left out): a builder fills
    one of these, then makes it a ``model`` object (``__class__``), much
    cheaper than four ``object.__setattr__`` calls. Made by ``type.__new__``
    (not pydantic's metaclass: no schema, never validated nor used as a model)."""
    namespace = {
        "__slots__": (),
        "__init__": object.__init__,
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
    }
    raw: type[WireModel] = type.__new__(type(model), f"_Raw{model.__name__}", (model,), namespace)
    return raw


def frame_structs() -> dict[type[WireModel], Any]:
    """The msgspec Struct type of every model reachable from ``Frame``."""
    structs: dict[type[WireModel], Any] = {}
    _struct(Frame, structs)
    return structs


def _make() -> tuple[Callable[[bytes | str], Any], Callable[[Any], Frame]]:
    """msgspec's decoder of frames and the builder of a ``Frame`` from its result."""
    structs = frame_structs()
    index = {model: n for n, model in enumerate(structs)}
    namespace: dict[str, Any] = {"UNSET": msgspec.UNSET}
    for model, n in index.items():
        namespace[f"model_{n}"] = model
        namespace[f"raw_{n}"] = _raw_class(model)
    exec("\n\n".join(_builder_source(model, index) for model in index), namespace)
    build: Callable[[Any], Frame] = namespace[f"build_{index[Frame]}"]
    return msgspec.json.Decoder(structs[Frame]).decode, build


ACTIVE = msgspec is not None
"""Whether :func:`decode_fast` decodes (msgspec is installed, and could mirror the models)."""

if ACTIVE:
    try:
        _decode, _build = _make()
    except Exception as exc:  # e.g. a pydantic whose internals moved: pydantic decodes every frame, as before
        ACTIVE = False
        warnings.warn(f"webchat-sim: the fast frame decoder is off ({exc}); pydantic decodes", stacklevel=1)


def decode_fast(data: bytes | str) -> Frame | None:
    """The frame of ``data`` if msgspec accepts it, else ``None`` (then
    pydantic decides: the exact error, or a frame with additional properties)."""
    if not ACTIVE:  # pragma: no cover
        return None
    try:
        struct = _decode(data)
    except Exception:  # anything at all: pydantic gives the verdict and the error text
        return None
    return _build(struct)
