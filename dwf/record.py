"""Typed records ⇄ JSON: a dataclass tree is written with `dataclasses.asdict` and read back
field by field from its type hints, so a file with a missing, extra or mistyped field is an
`ArtifactError` naming the field instead of a dict that fails later, far from the file.

Supported field types: dataclasses, `X | None`, `list[X]`, `tuple[X, ...]`, `dict[str, X]`,
and JSON scalars (`float` also accepts null, stored for NaN).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar

from .errors import ArtifactError

T = TypeVar("T")


def to_json(record: Any) -> Any:
    return dataclasses.asdict(record) if dataclasses.is_dataclass(record) else record


def from_json(cls: type[T], data: Any, where: str = "") -> T:
    """`data` (parsed JSON) as an instance of `cls`."""
    return _read(cls, data, where or cls.__name__)


def _read(tp: Any, v: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return v
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _read(inner[0], v, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(v, dict):
            raise ArtifactError(f"{where}: expected an object for {tp.__name__}, got {type(v).__name__}")
        hints = typing.get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
        unknown = sorted(set(v) - set(fields))
        if unknown:
            raise ArtifactError(f"{where}: unknown field(s) {unknown} for {tp.__name__}")
        kw = {}
        for name, f in fields.items():
            if name in v:
                kw[name] = _read(hints[name], v[name], f"{where}.{name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ArtifactError(f"{where}: missing field {name!r} of {tp.__name__}")
        return tp(**kw)
    if origin in (list, tuple):
        if not isinstance(v, list):
            raise ArtifactError(f"{where}: expected a list, got {type(v).__name__}")
        item = args[0] if args else Any
        out = [_read(item, x, f"{where}[{i}]") for i, x in enumerate(v)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(v, dict):
            raise ArtifactError(f"{where}: expected an object, got {type(v).__name__}")
        return {k: _read(args[1] if args else Any, x, f"{where}.{k}") for k, x in v.items()}
    if tp is float:
        if v is None:
            return math.nan
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    elif tp is int and isinstance(v, int) and not isinstance(v, bool):
        return v
    elif tp in (str, bool) and isinstance(v, tp):
        return v
    elif tp is dict and isinstance(v, dict):
        return v
    elif tp not in (float, int, str, bool, dict):
        raise ArtifactError(f"{where}: cannot read type {tp}")
    raise ArtifactError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {v!r}")
