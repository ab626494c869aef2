"""Base classes shared by every command, reply and event."""

from __future__ import annotations

import msgspec


class Command(msgspec.Struct, tag=True, kw_only=True, frozen=True):
    """A request sent over NATS request/reply.

    Core request/reply is at-most-once: a caller that times out retries with the same
    idempotency key, and handlers that create something answer a repeated key with the
    first reply instead of acting twice.
    """

    idempotency_key: str = ""


class Reply(msgspec.Struct, tag=True, kw_only=True, frozen=True):
    """A successful answer to a Command."""


class Done(Reply, frozen=True):
    """The reply of commands that return nothing but success."""


class Ping(Command, frozen=True):
    """Health check; every service answers on subjects.health(<service>)."""


class Pong(Reply, frozen=True):
    service: str
    pid: int
    node: str
