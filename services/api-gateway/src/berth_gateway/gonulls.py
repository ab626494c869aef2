"""JSON `null` read the way Go's encoding/json reads it, for every body type.

Go gives `null` no effect on a struct field (it keeps its zero value: our default) and makes a
map value or slice element its type's zero value (`{"Labels": {"a": null}}` is the label
`a=""` in dockerd). Clients rely on it: docker-py sends `"Healthcheck": {"StartPeriod": null}`.
One rule, driven by the body's type, applied before msgspec converts the document:

* a struct field that is `null` is dropped (its default applies), unless its type accepts None
  (then it is None) or it has no default (then it gets its type's zero value);
* a `null` list element or map value becomes its type's zero value unless the type accepts None.
"""

from __future__ import annotations

import functools
from typing import Any

from msgspec import inspect as mi

_CONTAINERS = (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)


def go_nulls(value: Any, tp: type) -> Any:
    """`value` (a decoded JSON document meant for `tp`) with its nulls read as Go reads them."""
    t = _type_info(tp)
    return _null_item(t) if value is None else _walk(value, t)


@functools.cache
def _type_info(tp: type) -> mi.Type:
    return mi.type_info(tp)


@functools.cache
def _struct_fields(cls: type) -> dict[str, mi.Field]:
    return {f.encode_name: f for f in _type_info(cls).fields}  # type: ignore[attr-defined]


def _accepts_none(t: mi.Type) -> bool:
    if isinstance(t, mi.NoneType | mi.AnyType):
        return True
    return isinstance(t, mi.UnionType) and any(_accepts_none(m) for m in t.types)


def _zero(t: mi.Type) -> Any:
    """Go's zero value for a field of type t, in the JSON form msgspec converts from."""
    if _accepts_none(t):
        return None
    if isinstance(t, mi.UnionType):
        return _zero(t.types[0])
    if isinstance(t, mi.BoolType):
        return False
    if isinstance(t, mi.IntType):
        return 0
    if isinstance(t, mi.FloatType):
        return 0.0
    if isinstance(t, mi.StrType):
        return ""
    if isinstance(t, _CONTAINERS):
        return []
    if isinstance(t, mi.DictType):
        return {}
    if isinstance(t, mi.StructType):
        return {f.encode_name: _zero(f.type) for f in t.fields if f.required}
    return None  # no Go zero to give (e.g. a Literal): msgspec reports the null as invalid


def _null_item(t: mi.Type) -> Any:
    return None if _accepts_none(t) else _zero(t)


def _walk(value: Any, t: mi.Type) -> Any:
    if isinstance(t, mi.UnionType):
        t = _member_for(value, t)
    if isinstance(value, dict):
        if isinstance(t, mi.StructType):
            return _walk_struct(value, t)
        if isinstance(t, mi.DictType):
            vt = t.value_type
            return {k: _null_item(vt) if v is None else _walk(v, vt) for k, v in value.items()}
    elif isinstance(value, list) and isinstance(t, _CONTAINERS):
        it = t.item_type
        return [_null_item(it) if v is None else _walk(v, it) for v in value]
    return value


def _walk_struct(value: dict[str, Any], t: mi.StructType) -> dict[str, Any]:
    fields = _struct_fields(t.cls)
    out: dict[str, Any] = {}
    for key, item in value.items():
        f = fields.get(key)
        if f is None:
            out[key] = item  # not ours: msgspec ignores unknown fields
        elif item is not None:
            out[key] = _walk(item, f.type)
        elif _accepts_none(f.type):
            out[key] = None
        elif f.required:
            out[key] = _zero(f.type)
        # else: dropped, the field keeps its default as a Go field keeps its zero value
    return out


def _member_for(value: Any, t: mi.UnionType) -> mi.Type:
    """The member of a union a JSON object or array would be converted to."""
    wanted: tuple[type[mi.Type], ...]
    if isinstance(value, dict):
        wanted = (mi.StructType, mi.DictType)
    elif isinstance(value, list):
        wanted = _CONTAINERS
    else:
        return t
    return next((m for m in t.types if isinstance(m, wanted)), t)

