"""Wire encoding: msgpack via msgspec, with typed decoders cached per type."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_encoder = msgspec.msgpack.Encoder()


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)


@lru_cache(maxsize=256)
def _decoder(tp: Any) -> msgspec.msgpack.Decoder[Any]:
    return msgspec.msgpack.Decoder(tp)


def decode(data: bytes, tp: type[T]) -> T:
    decoder: msgspec.msgpack.Decoder[T] = _decoder(tp)  # type: ignore[arg-type]
    result: T = decoder.decode(data)
    return result


def decode_as(data: bytes, tp: Any) -> Any:
    """Decode into a union or other non-class type annotation."""
    return _decoder(tp).decode(data)
