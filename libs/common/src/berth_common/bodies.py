"""Reading an untrusted HTTP body with a cap (a registry's manifest, token or error body)."""

from __future__ import annotations

from collections.abc import AsyncIterable


async def read_limited(chunks: AsyncIterable[bytes], limit: int) -> bytes:
    """The whole body, or limit+1 bytes when it is longer, so that the caller can tell "too
    long" from "exactly limit". `chunks`: e.g. aiohttp's `resp.content.iter_chunked(64 * 1024)`
    (a chunk may be shorter than asked: the count is of bytes, never of reads)."""
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        if len(buf) > limit:
            break
    return bytes(buf[: limit + 1])
