"""Relaying `docker load` / `docker import` bodies to lifecycle's upload URL, and its answer back.

Bulk bytes never cross NATS: the engine hands out an UploadTarget and the gateway streams the
request body (often chunked) to it, then streams the JSON-lines progress back to the client.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import aiohttp
import msgspec
from aiohttp import web
from berth_contracts.errors import InternalError, Unavailable
from berth_kit.tracing import inject

from berth_gateway.responses import JSON, error_response

_CHUNK = 64 * 1024
# A load can take long (large archives); the timeout bounds silence, not the whole transfer.
_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_read=600)


def split_target(url: str) -> tuple[aiohttp.BaseConnector, str]:
    """A connector and a request URL for http://host:port/path or http+unix://<socket>/path."""
    parts = urlsplit(url)
    if parts.scheme == "http+unix":
        socket_path = unquote(parts.netloc)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return aiohttp.UnixConnector(path=socket_path), f"http://localhost{path}"
    if parts.scheme in ("http", "https"):
        return aiohttp.TCPConnector(), url
    raise InternalError(f"unsupported upload URL {url!r}")


async def relay_upload(request: web.Request, url: str, headers: dict[str, str] | None = None) -> web.StreamResponse:
    content_type = request.headers.get("Content-Type", "application/x-tar")
    return await relay_post(request, url, request.content, {"Content-Type": content_type, **(headers or {})})


async def relay_post(
    request: web.Request,
    url: str,
    body: aiohttp.StreamReader | bytes | None,
    headers: dict[str, str],
    content_type: str = JSON,
) -> web.StreamResponse:
    """POST `body` to lifecycle's URL; relay its answer (`content_type`) or its error status.

    `headers` may carry the client's credentials (X-Registry-Auth): they go to that URL only.
    """
    connector, target = split_target(url)
    # The trace context goes along, so lifecycle's work joins this request's trace.
    headers = inject(dict(headers))
    async with aiohttp.ClientSession(connector=connector, timeout=_TIMEOUT) as session:
        try:
            upstream = await session.post(target, data=body, headers=headers)
        except aiohttp.ClientError as exc:
            raise Unavailable(f"image upload service unreachable: {exc}") from None
        async with upstream:
            if upstream.status >= 400:
                # Errors before any progress are plain HTTP errors, with the upstream's words.
                message = await error_message(upstream)
                return error_response(upstream.status, message)
            response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
            response.enable_chunked_encoding()
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response


async def error_message(upstream: aiohttp.ClientResponse) -> str:
    body = await upstream.read()
    try:
        decoded = msgspec.json.decode(body)
        if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
            return str(decoded["message"])
    except Exception:  # noqa: BLE001 - not JSON: use the text as it is
        pass
    return body.decode("utf-8", "replace").strip() or f"upload failed with HTTP {upstream.status}"
