"""msgspec in place of pydantic for decoding frames, as far as it goes while
the rest of the code keeps its pydantic ``Frame`` objects (issue 12): the
measured answer is that it does not pay (see bench_codec.py and the README's
performance section).

* :func:`frame_structs`: msgspec ``Struct`` types generated from the pydantic
  models (one definition), each field ``T | None | UNSET`` (default ``UNSET``:
  absent), the same strict types as pydantic's strict mode (``"2"`` is not an
  integer, a boolean is no number, enums by exact value, the 64-bit bounds
  of ``Int64``) and ``forbid_unknown_fields`` (a frame with additional
  properties is refused: pydantic would keep them).
* :func:`frame_decoder`: msgspec's decode into those Structs, then the very
  ``Frame`` pydantic's validation gives, built from them by generated code
  (``__dict__`` in field order, ``model_fields_set`` the keys present,
  ``null`` included, no extras); ``None`` when msgspec refuses the frame
  (then pydantic would decide and give our error text).

Not a benchmark (run_all.py runs ``bench_*.py`` only); not part of the
package: building pydantic objects from Python costs more than pydantic's
whole validation (which builds them in Rust), so the fast path was not kept.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable
from typing import Any

from annotated_types import Ge, Le
from pydantic.fields import FieldInfo

from simulator.protocol.models import Frame, WireModel

__all__ = ["frame_decoder", "frame_structs"]

import msgspec

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
        or decorators.root_validators
        or decorators.model_validators
    ):
        raise TypeError(f"fastdecode: the config or validators of {model.__name__} have no msgspec equivalent")
    unset = msgspec.UnsetType
    fields = [
        (name, typing.Union[_field_type(_optional_inner(model, name, info), structs), None, unset], msgspec.UNSET)  # noqa: UP007
        for name, info in model.model_fields.items()
    ]
    struct = msgspec.defstruct(model.__name__, fields, kw_only=True, forbid_unknown_fields=True)
    structs[model] = struct
    return struct


def _builder_source(model: type[WireModel], index: dict[type[WireModel], int]) -> str:
    """Python source of ``build_<n>(s)``: the ``model`` object of Struct ``s``.

    One local and one test per field (``UNSET``: absent, then ``None``; else
    a field set, a nested model built), then the ``__dict__`` in field order
    (as pydantic's) in one dict display."""
    n = index[model]
    hints = typing.get_type_hints(model)
    lines = [f"def build_{n}(s, UNSET=UNSET, raw=raw_{n}, model=model_{n}):", "    fs = set()", "    add = fs.add"]
    names = list(model.model_fields)
    for i, name in enumerate(names):
        inner = typing.get_args(hints[name])[0]
        is_list = typing.get_origin(inner) is list
        item = typing.get_args(inner)[0] if is_list else inner
        lines += [f"    v{i} = s.{name}", f"    if v{i} is UNSET:", f"        v{i} = None"]
        lines += ["    else:", f"        add({name!r})"]
        if isinstance(item, type) and issubclass(item, WireModel):
            build = f"build_{index[item]}"
            value = f"[{build}(x) for x in v{i}]" if is_list else f"{build}(v{i})"
            lines += [f"        if v{i} is not None:", f"            v{i} = {value}"]
    lines += [
        "    m = raw()",
        "    m.__dict__ = {" + ", ".join(f"{name!r}: v{i}" for i, name in enumerate(names)) + "}",
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


def frame_decoder() -> Callable[[bytes | str], Frame | None]:
    """``decode(data)``: the ``Frame`` of ``data`` msgspec accepts, else ``None``."""
    structs = frame_structs()
    decode_struct = msgspec.json.Decoder(structs[Frame]).decode
    index = {model: n for n, model in enumerate(structs)}
    namespace: dict[str, Any] = {"UNSET": msgspec.UNSET}
    for model, n in index.items():
        namespace[f"model_{n}"] = model
        namespace[f"raw_{n}"] = _raw_class(model)
    exec("\n\n".join(_builder_source(model, index) for model in index), namespace)
    build: Callable[[Any], Frame] = namespace[f"build_{index[Frame]}"]

    def decode(data: bytes | str) -> Frame | None:
        try:
            struct = decode_struct(data)
        except Exception:  # anything at all: pydantic would give the verdict and the error text
            return None
        return build(struct)

    return decode
