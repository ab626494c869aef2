"""What stops a web page from driving the API (cross-site request forgery).

A page can make a browser POST to any address, but only "simple" requests, whose body is
`text/plain`, a form or multipart, go out without a CORS preflight; and every request a browser
sends from a page carries an `Origin` header. Two checks close that door:

* JSON bodies: as moby's httputils.CheckForJSON, a route that reads a JSON body refuses any
  other Content-Type (400), and a missing one unless the body is empty (no Content-Length, or
  `Content-Length: 0`; a chunked body counts as not empty, as Go's ContentLength -1 does).
  The words are moby's since 23.0 (20.10 said "Content-Type specified (...) must be ...").
* Origin: a request with an `Origin` header is refused (403) unless that origin is allowed
  (`BERTH_API_ALLOW_ORIGINS`, `berth up --api-allow-origin`). No Docker client sends one.
  dockerd 28 dropped its CORS option ("accessing Docker API through a browser is insecure");
  berth sets no CORS headers either: an allowed origin only gets past this check.
"""

from __future__ import annotations

import os
import re

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from berth_contracts.errors import Forbidden, InvalidParameter

ALLOW_ORIGINS_ENV = "BERTH_API_ALLOW_ORIGINS"
JSON_MEDIA_TYPE = "application/json"
VERSIONED = "/v{version}"  # app.VERSION_PREFIX in canonical form

# Every route whose body moby reads with httputils.ReadJSON / CheckForJSON and berth serves;
# paths are aiohttp's canonical form (no version prefix, no regex in the placeholders).
JSON_BODY_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/containers/create"),
        ("POST", "/containers/{id}/update"),
        ("POST", "/containers/{id}/exec"),
        ("POST", "/exec/{id}/start"),
        ("POST", "/networks/create"),
        ("POST", "/networks/{id}/connect"),
        ("POST", "/networks/{id}/disconnect"),
        ("POST", "/volumes/create"),
    }
)

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_PARAM = re.compile(
    r'^\s*([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)=("(?:[^"\\]|\\.)*"|[!#$%&\'*+\-.^_`|~0-9A-Za-z]+)\s*$'
)


class MediaTypeError(ValueError):
    pass


def media_type(value: str) -> str:
    """The lower-cased type/subtype of a Content-Type value, checked as Go's mime.ParseMediaType
    checks it (its error words): parameters must be well formed too."""
    main, _, params = value.partition(";")
    main = main.strip()
    if not main:
        raise MediaTypeError("mime: no media type")
    kind, slash, sub = main.partition("/")
    if not _TOKEN.match(kind):
        raise MediaTypeError("mime: no media type")
    if not slash:
        raise MediaTypeError("mime: expected slash after first token")
    if not _TOKEN.match(sub):
        raise MediaTypeError("mime: expected token after slash")
    for param in params.split(";") if params.strip() else ():
        if param.strip() and not _PARAM.match(param):
            raise MediaTypeError("mime: invalid media parameter")
    return main.lower()


def check_for_json(request: web.BaseRequest) -> None:
    """moby's httputils.CheckForJSON: raise InvalidParameter (400) unless the body is JSON."""
    content_type = request.headers.get("Content-Type", "")
    if not content_type and not request.body_exists:
        return
    try:
        mime = media_type(content_type)
    except MediaTypeError as exc:
        raise InvalidParameter(f"malformed Content-Type header ({content_type}): {exc}") from None
    if mime != JSON_MEDIA_TYPE:
        raise InvalidParameter(
            f"unsupported Content-Type header ({content_type}): must be '{JSON_MEDIA_TYPE}'"
        )


def reads_json_body(request: web.Request) -> bool:
    resource = request.match_info.route.resource
    if resource is None:
        return False
    path = resource.canonical.removeprefix(VERSIONED)
    return (request.method, path) in JSON_BODY_ROUTES


@web.middleware
async def json_body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if reads_json_body(request):
        check_for_json(request)
    return await handler(request)


def allowed_origins() -> frozenset[str]:
    raw = os.environ.get(ALLOW_ORIGINS_ENV, "")
    return frozenset(item.strip().rstrip("/") for item in raw.split(",") if item.strip())


def check_origin(request: web.BaseRequest, allowed: frozenset[str]) -> None:
    origin = request.headers.get("Origin")
    if origin is None or "*" in allowed or origin.rstrip("/") in allowed:
        return
    raise Forbidden(
        f"request from a web page refused (Origin: {origin}): accessing the Docker API through"
        f" a browser is insecure; to allow this origin, start berth with"
        f" --api-allow-origin={origin}"
    )


def origin_middleware(allowed: frozenset[str]) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        check_origin(request, allowed)
        return await handler(request)

    return middleware
