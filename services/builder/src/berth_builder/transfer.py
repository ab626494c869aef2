"""HTTP legs of a build: tars PUT into step containers through lifecycle's archive URLs, a
pull's progress read from its URL (bulk bytes never cross NATS)."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from anyio import to_thread

from berth_builder.build import BuildError

EMPTY_TAR = b"\0" * 1024  # two zero blocks: a tar with no entry
# The timeout bounds silence, not the whole transfer (a big COPY, a slow pull).
_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_read=600)


async def _error(resp: aiohttp.ClientResponse) -> str:
    body = await resp.read()
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or body.decode(errors="replace").strip() or f"HTTP {resp.status}")


async def post_file(url: str, body: str | bytes) -> None:
    """POST a tar (a path, or the bytes) to an archive put URL; BuildError with its words."""
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
        if isinstance(body, bytes):
            resp = await session.post(url, data=body)
        else:
            f = await to_thread.run_sync(open, body, "rb")
            try:
                resp = await session.post(url, data=f)
            finally:
                f.close()
        async with resp:
            if resp.status >= 400:
                raise BuildError(await _error(resp))


async def post_lines(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
    """POST (no body) and read Docker's JSON lines back (a pull's progress)."""
    async with (
        aiohttp.ClientSession(timeout=_TIMEOUT) as session,
        session.post(url, headers=headers or {}) as resp,
    ):
        if resp.status >= 400:
            raise BuildError(await _error(resp))
        async for raw in resp.content:
            line = raw.strip()
            if line:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict):
                    yield message


async def post_to_file(url: str, path: str) -> None:
    """POST (no body) to an archive get URL; the tar it answers goes to `path`."""
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session, session.post(url) as resp:
        if resp.status >= 400:
            raise BuildError(await _error(resp))
        f = await to_thread.run_sync(open, path, "wb")
        try:
            async for chunk in resp.content.iter_chunked(1 << 20):
                await to_thread.run_sync(f.write, chunk)
        finally:
            f.close()


async def read_single_file(url: str, limit: int = 4 << 20) -> str:
    """An archive get URL for one regular file (/etc/passwd): its text (links are not followed
    into the host: the tar says what the container has)."""
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session, session.post(url) as resp:
        if resp.status >= 400:
            raise BuildError(await _error(resp))
        body = await resp.content.read(limit + 1)
    if len(body) > limit:
        raise BuildError("the image's user database is too large")
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        for member in tar:
            if member.isreg():
                f = tar.extractfile(member)
                return f.read().decode(errors="replace") if f is not None else ""
    return ""
