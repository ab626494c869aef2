"""The agent's side of the zygote: start it once, ask it for shims one at a time."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from berth_contracts.errors import InternalError

from berth_agent.shim.main import TITLE_ROOM

log = logging.getLogger(__name__)

SPAWN_TIMEOUT = 40.0


class Zygote:
    def __init__(self) -> None:
        self._proc: Process | None = None
        self._reader: BufferedByteReceiveStream | None = None
        self._lock = anyio.Lock()

    async def _ensure(self) -> tuple[Process, BufferedByteReceiveStream]:
        if self._proc is None or self._proc.returncode is not None or self._reader is None:
            self._proc = await anyio.open_process(
                [sys.executable, "-m", "berth_agent.shim.zygote", TITLE_ROOM], stderr=None
            )
            assert self._proc.stdout is not None
            self._reader = BufferedByteReceiveStream(self._proc.stdout)
        return self._proc, self._reader

    async def spawn(self, params: dict[str, Any]) -> int:
        """Fork a detached shim; returns its pid once it listens on its socket.

        A zygote that died (killed, or crashed) is replaced once, transparently.
        """
        line = b""
        async with self._lock:
            for attempt in range(2):
                proc, reader = await self._ensure()
                assert proc.stdin is not None
                try:
                    with anyio.fail_after(SPAWN_TIMEOUT):
                        await proc.stdin.send(json.dumps(params).encode() + b"\n")
                        line = await reader.receive_until(b"\n", 1024 * 1024)
                    break
                except (
                    anyio.EndOfStream,
                    anyio.BrokenResourceError,
                    anyio.IncompleteRead,
                    OSError,
                ) as exc:
                    await self.close()
                    if attempt:
                        raise InternalError(f"shim spawn failed: zygote is gone ({exc!r})") from exc
                except TimeoutError as exc:
                    await self.close()
                    raise InternalError("shim spawn failed: zygote did not answer in time") from exc
        answer = json.loads(line)
        if not answer.get("ok"):
            raise InternalError(f"shim spawn failed: {answer.get('error', 'unknown error')}")
        return int(answer["pid"])

    async def close(self) -> None:
        proc, self._proc, self._reader = self._proc, None, None
        if proc is None:
            return
        with anyio.move_on_after(5, shield=True):
            if proc.stdin is not None:
                await proc.stdin.aclose()
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
