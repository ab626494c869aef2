"""Single-flight blob downloads: N clients asking for one missing blob share one upstream fetch.

The fetch runs in the service's task group, not in a client's request, so it completes into
the cache even when every client has gone. Clients stream from the growing ingest file; the
last byte is held back until the digest is verified, so a corrupt blob never reaches a client
complete (its connection is cut instead) and never becomes a cache entry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import anyio
from anyio import to_thread
from anyio.abc import TaskGroup

from berth_registry_proxy.cache import Cache, DigestMismatch, Ingest
from berth_registry_proxy.errors import RegistryError
from berth_registry_proxy.upstream import Upstream

log = logging.getLogger(__name__)
CHUNK = 1 << 20
START_TIMEOUT = 120.0  # waiting for the upstream's answer headers


@dataclass
class Fetch:
    digest: str
    source: tuple[str, str] = ("", "")  # (host, repo) the download is from
    size: int = -1  # upstream Content-Length, -1 unknown
    written: int = 0
    path: Path | None = None  # the ingest file while downloading
    error: RegistryError | None = None
    done: bool = False
    started: anyio.Event = field(default_factory=anyio.Event)
    finished: anyio.Event = field(default_factory=anyio.Event)
    progress: anyio.Event = field(default_factory=anyio.Event)

    def _tick(self) -> None:
        ev, self.progress = self.progress, anyio.Event()
        ev.set()


class Fetches:
    def __init__(self, cache: Cache, upstream: Upstream, tg: TaskGroup, max_blob: int) -> None:
        self.cache = cache
        self.upstream = upstream
        self.tg = tg
        self.max_blob = max_blob
        self.active: dict[str, Fetch] = {}
        self.upstream_fetches = 0  # counted for tests and logs

    def get(self, host: str, repo: str, digest: str) -> Fetch | None:
        """The blob's fetch, started if none runs; None if the blob is cached by now (the caller
        looked at the cache from a worker thread, and a fetch may have ended meanwhile)."""
        fetch = self.active.get(digest)
        if fetch is None:
            if self.cache.blob_path(digest).exists():  # one stat on the loop closes that race
                return None
            fetch = Fetch(digest, (host, repo))
            self.active[digest] = fetch
            self.tg.start_soon(self._run, fetch, host, repo)
        return fetch

    async def _run(self, fetch: Fetch, host: str, repo: str) -> None:
        self.upstream_fetches += 1
        ingest = None
        try:
            resp = await self.upstream.request("GET", host, repo, f"blobs/{fetch.digest}")
            async with resp:
                length = resp.content_length
                if length is not None and length > self.max_blob:
                    raise RegistryError("SIZE_INVALID", f"blob {fetch.digest} is larger than the limit", 400)
                ingest = await to_thread.run_sync(self.cache.ingest, fetch.digest)
                fetch.size = -1 if length is None else length
                fetch.path = ingest.path
                fetch.started.set()
                pending = bytearray()
                async for chunk in resp.content.iter_any():
                    pending += chunk
                    if ingest.size + len(pending) > self.max_blob:
                        raise RegistryError("SIZE_INVALID", f"blob {fetch.digest} is larger than the limit", 400)
                    # Socket reads are small: one worker-thread write per CHUNK, not per read.
                    if len(pending) >= CHUNK:
                        await self._write(ingest, fetch, bytes(pending))
                        pending.clear()
                if pending:
                    await self._write(ingest, fetch, bytes(pending))
            if fetch.size >= 0 and ingest.size != fetch.size:
                raise RegistryError("UNKNOWN", f"upstream sent {ingest.size} of {fetch.size} bytes", 502)
            await to_thread.run_sync(ingest.commit)
            ingest = None
            await to_thread.run_sync(self.cache.link, host, repo, {fetch.digest})
            fetch.done = True
        except RegistryError as exc:
            fetch.error = exc
        except DigestMismatch as exc:
            log.warning("upstream %s served a corrupt blob: %s", host, exc)
            fetch.error = RegistryError("DIGEST_INVALID", f"upstream blob {exc}", 502)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            fetch.error = RegistryError("UNAVAILABLE", f"fetching {fetch.digest}: {exc or type(exc).__name__}", 503)
        finally:
            if ingest is not None:
                await to_thread.run_sync(ingest.abort)
            self.active.pop(fetch.digest, None)
            fetch.started.set()
            fetch.finished.set()
            fetch._tick()
            if self.cache.quota:
                await to_thread.run_sync(self.cache.evict, set(self.active))

    @staticmethod
    async def _write(ingest: Ingest, fetch: Fetch, data: bytes) -> None:
        await to_thread.run_sync(ingest.write, data)
        fetch.written = ingest.size
        fetch._tick()

    async def wait_started(self, fetch: Fetch) -> None:
        with anyio.fail_after(START_TIMEOUT):
            await fetch.started.wait()
        if fetch.error is not None and not fetch.done:
            raise fetch.error
