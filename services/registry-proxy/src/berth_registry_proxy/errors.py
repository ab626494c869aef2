"""OCI distribution errors: `{"errors":[{"code","message","detail"}]}` with the spec's statuses."""

from __future__ import annotations

import json

from aiohttp import web

STATUS = {
    "BLOB_UNKNOWN": 404,
    "MANIFEST_UNKNOWN": 404,
    "NAME_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "DIGEST_INVALID": 400,
    "MANIFEST_INVALID": 400,
    "TAG_INVALID": 400,
    "SIZE_INVALID": 400,
    "UNSUPPORTED": 405,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "TOOMANYREQUESTS": 429,
    "UNAVAILABLE": 503,
    "UNKNOWN": 500,
}


class RegistryError(Exception):
    """An answer for the client: an OCI error code, its message, the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 0, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS.get(code, 500)
        self.headers = headers or {}

    def response(self) -> web.Response:
        body = json.dumps({"errors": [{"code": self.code, "message": self.message, "detail": None}]})
        return web.Response(
            status=self.status,
            body=body.encode(),
            content_type="application/json",
            headers={"Docker-Distribution-API-Version": "registry/2.0", **self.headers},
        )


class UpstreamUnavailable(RegistryError):
    """The upstream could not be asked (refused, timed out, 5xx, 429): a cached copy may do."""
