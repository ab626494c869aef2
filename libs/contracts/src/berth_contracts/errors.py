"""The one error reply that crosses the wire, and the typed exceptions services raise.

Every service handler raises one of the `BerthError` subclasses; the service kit turns it into an
`ErrorReply`, the caller's kit turns it back into the same exception, and the api-gateway maps the
kind to Docker's HTTP status. The message text is Docker's own wording: clients parse it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import msgspec

ErrorKind = Literal[
    "invalid",  # 400
    "not_found",  # 404
    "conflict",  # 409
    "not_modified",  # 304
    "forbidden",  # 403
    "unauthorized",  # 401
    "unavailable",  # 503
    "not_implemented",  # 501
    "internal",  # 500
]

HTTP_STATUS: dict[str, int] = {
    "invalid": 400,
    "not_found": 404,
    "conflict": 409,
    "not_modified": 304,
    "forbidden": 403,
    "unauthorized": 401,
    "unavailable": 503,
    "not_implemented": 501,
    "internal": 500,
}


class ErrorReply(msgspec.Struct, tag="error", frozen=True):
    kind: ErrorKind
    message: str


class BerthError(Exception):
    """Base of every error that crosses a service boundary."""

    kind: ClassVar[ErrorKind] = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_reply(self) -> ErrorReply:
        return ErrorReply(kind=self.kind, message=self.message)

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.kind]


class InvalidParameter(BerthError):
    kind = "invalid"


class NotFound(BerthError):
    kind = "not_found"


class Conflict(BerthError):
    kind = "conflict"


class NotModified(BerthError):
    kind = "not_modified"


class Forbidden(BerthError):
    kind = "forbidden"


class Unauthorized(BerthError):
    kind = "unauthorized"


class Unavailable(BerthError):
    kind = "unavailable"


class NotImplementedByBerth(BerthError):
    kind = "not_implemented"


class InternalError(BerthError):
    kind = "internal"


_BY_KIND: dict[str, type[BerthError]] = {
    cls.kind: cls
    for cls in (
        InvalidParameter,
        NotFound,
        Conflict,
        NotModified,
        Forbidden,
        Unauthorized,
        Unavailable,
        NotImplementedByBerth,
        InternalError,
    )
}


def error_from_reply(reply: ErrorReply) -> BerthError:
    return _BY_KIND.get(reply.kind, InternalError)(reply.message)
