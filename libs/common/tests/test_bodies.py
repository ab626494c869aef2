from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from berth_common.bodies import read_limited


def test_read_limited_caps_at_limit_plus_one() -> None:
    read: list[bytes] = []

    async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
        for part in parts:
            read.append(part)
            yield part

    async def main() -> None:
        assert await read_limited(chunks(b"ab", b"c"), 3) == b"abc"
        assert await read_limited(chunks(), 3) == b""
        read.clear()
        assert await read_limited(chunks(b"ab", b"cdef", b"never read"), 3) == b"abcd"
        assert read == [b"ab", b"cdef"]  # stops reading once over the limit

    asyncio.run(main())
