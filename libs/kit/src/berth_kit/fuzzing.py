"""Hypothesis strategies for requests of a contract union, derived from the msgspec types.

`valid_requests(member)` follows the contract (types, literals, the `Identifier` patterns and
lengths), so requests get past decoding and reach the handler; `invalid_requests(member)`
carries the member's tag with fields of any type, so decoding refuses them; `raw_garbage()` is
bytes that may not even be msgpack. Strings mix hypothesis' text with values chosen to hurt:
`..`, paths out of the roots, NUL, very long, option-like. Test-only (needs `hypothesis`).

`BERTH_FUZZ_EXAMPLES` sets the number of examples per request type (default: a bounded,
derandomized run fit for `make test`; e.g. 2000 for a long, random run).
"""

from __future__ import annotations

import os
import typing
from collections.abc import Callable
from typing import Any

import msgspec
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("BERTH_FUZZ_EXAMPLES", "6"))
# The bounded run is the same on every `make test` (no red build from a draw nobody can
# repeat); a run asked for with BERTH_FUZZ_EXAMPLES explores new examples every time.
DERANDOMIZE = "BERTH_FUZZ_EXAMPLES" not in os.environ

NASTY_STRINGS = [
    "",
    ".",
    "..",
    "../../../../tmp",
    "/",
    "/etc/passwd",
    "/proc/1/root",
    "-rf",
    "a" * 300,
    "x\x00y",
    "\n\r",
    "${HOME}",
    "*",
    ">",
    "berth.rpc.>",
]


def members(union: Any) -> list[type[msgspec.Struct]]:
    return list(typing.get_args(union))


def _text(extra: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=24), st.sampled_from(NASTY_STRINGS + extra))


def _strategy(t: msgspec.inspect.Type, extra: list[str], depth: int = 0) -> st.SearchStrategy[Any]:
    mi = msgspec.inspect
    if depth > 6:
        return st.none()
    if isinstance(t, mi.Metadata):
        return _strategy(t.type, extra, depth)
    if isinstance(t, mi.StrType):
        if t.pattern:
            base = st.from_regex(t.pattern, fullmatch=True)
        else:
            base = _text(extra)
        lo, hi = t.min_length or 0, t.max_length
        return base.filter(lambda s: len(s) >= lo and (hi is None or len(s) <= hi))
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.IntType):
        lo = t.ge if t.ge is not None else -(2**63)
        hi = t.le if t.le is not None else 2**63 - 1
        return st.one_of(st.integers(max(lo, -10), min(hi, 10**6)), st.integers(lo, hi))
    if isinstance(t, mi.FloatType):
        return st.floats(allow_nan=False, allow_infinity=False, width=64)
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.BytesType | mi.ByteArrayType | mi.MemoryViewType):
        return st.binary(max_size=64)
    if isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        return st.lists(_strategy(t.item_type, extra, depth + 1), max_size=3)
    if isinstance(t, mi.TupleType):
        return st.tuples(*(_strategy(i, extra, depth + 1) for i in t.item_types)).map(list)
    if isinstance(t, mi.DictType):
        return st.dictionaries(
            _strategy(t.key_type, extra, depth + 1), _strategy(t.value_type, extra, depth + 1),
            max_size=3,
        )
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(list(t.values))
    if isinstance(t, mi.UnionType):
        return st.one_of(*(_strategy(x, extra, depth + 1) for x in t.types))
    if isinstance(t, mi.StructType):
        return _struct(t, extra, depth)
    return _any_value(extra)  # Any, and what no contract uses today


def _struct(t: msgspec.inspect.StructType, extra: list[str], depth: int) -> st.SearchStrategy[Any]:
    required = {
        f.encode_name: _strategy(f.type, extra, depth + 1) for f in t.fields if f.required
    }
    optional = {
        f.encode_name: _strategy(f.type, extra, depth + 1) for f in t.fields if not f.required
    }
    if t.tag_field is not None:
        required[t.tag_field] = st.just(t.tag)
    return st.fixed_dictionaries(required, optional=optional)


def _any_value(extra: list[str]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), _text(extra),
        st.binary(max_size=16),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(_text(extra), inner, max_size=3)
        ),
        max_leaves=8,
    )


Fixup = Callable[[dict[str, Any]], dict[str, Any]]


def valid_requests(
    member: type[msgspec.Struct], extra: list[str] | None = None, fixup: Fixup | None = None
) -> st.SearchStrategy[bytes]:
    """msgpack requests of `member` that decode (plus `fixup`, which keeps them harmless)."""
    info = msgspec.inspect.type_info(member)
    assert isinstance(info, msgspec.inspect.StructType)
    strategy = _struct(info, extra or [], 0)
    if fixup is not None:
        strategy = strategy.map(fixup)
    return strategy.map(msgspec.msgpack.encode)


def invalid_requests(
    member: type[msgspec.Struct], extra: list[str] | None = None
) -> st.SearchStrategy[bytes]:
    """The member's tag with its field names (and others) set to values of any type."""
    info = msgspec.inspect.type_info(member)
    assert isinstance(info, msgspec.inspect.StructType) and info.tag_field is not None
    names = [f.encode_name for f in info.fields] + ["unknown_field"]
    fields = st.dictionaries(st.sampled_from(names), _any_value(extra or []), max_size=4)
    tag_field, tag = info.tag_field, info.tag
    return fields.map(lambda d: msgspec.msgpack.encode({**d, tag_field: tag}))


def raw_garbage() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=64),
        _any_value([]).map(msgspec.msgpack.encode),
    )
