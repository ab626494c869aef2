"""Single-use URL tokens of the bulk HTTP listeners (lifecycle's uploads, pulls, saves, pushes, archives;
the builder's contexts): a token names what it was issued for, once, for a bounded time."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
TOKEN_TTL = 600.0


@dataclass(frozen=True)
class _Entry(Generic[T]):
    value: T
    expires: float


class Tokens(Generic[T]):
    """What a URL was issued for, handed out once, within TOKEN_TTL seconds."""

    def __init__(self, ttl: float = TOKEN_TTL) -> None:
        self._ttl = ttl
        self._entries: dict[str, _Entry[T]] = {}

    def issue(self, value: T) -> str:
        now = time.monotonic()
        for token in [t for t, e in self._entries.items() if e.expires < now]:
            del self._entries[token]
        token = secrets.token_urlsafe(24)
        self._entries[token] = _Entry(value, now + self._ttl)
        return token

    def take(self, token: str) -> T | None:
        entry = self._entries.pop(token, None)
        if entry is None or entry.expires < time.monotonic():
            return None
        return entry.value
