"""The HTTP side: the pull half of the OCI Distribution API over the cache and the upstreams."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode

import anyio
from aiohttp import ClientConnectionResetError, web
from anyio import to_thread
from berth_common import refgrammar

from berth_registry_proxy.cache import Cache, OutsideRoot
from berth_registry_proxy.config import ProxyConfig
from berth_registry_proxy.errors import RegistryError, UpstreamUnavailable
from berth_registry_proxy.fetches import CHUNK, Fetch, Fetches
from berth_registry_proxy.hosted import Hosted
from berth_registry_proxy.manifests import media_from_body, referenced_digests
from berth_registry_proxy.names import check_reference, is_digest, split_name
from berth_registry_proxy.upstream import MANIFEST_ACCEPT, Upstream, read_limited

log = logging.getLogger(__name__)
API_HEADERS = {"Docker-Distribution-API-Version": "registry/2.0"}
STALE = '110 - "Response is Stale"'
BLOB_TYPE = "application/octet-stream"


class Proxy:
    def __init__(
        self, config: ProxyConfig, cache: Cache, upstream: Upstream, fetches: Fetches, hosted: Hosted | None = None
    ) -> None:
        self.config = config
        self.cache = cache
        self.upstream = upstream
        self.fetches = fetches
        self.hosted = hosted  # berth's own registry (hosted.py); pull-through for every other name

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors])
        app.router.add_route("*", "/v2/", self.base)
        app.router.add_route("*", "/v2", self.base)
        app.router.add_route("*", "/v2/{rest:.+}", self.dispatch)
        if self.hosted is not None:
            app.router.add_route("GET", "/token", self.hosted.tokens.token)
            app.router.add_route("POST", "/webhooks/callback/{id}", self.hosted.callback)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        try:
            return await handler(request)
        except RegistryError as exc:
            return exc.response()
        except OutsideRoot:  # names.py's checks make this unreachable; the cache checks again
            return RegistryError("NAME_INVALID", "invalid repository name").response()

    async def base(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise RegistryError("UNSUPPORTED", "the operation is unsupported")
        if self.hosted is not None:
            await self.hosted.base(request)
        return web.json_response({}, headers=API_HEADERS)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        rest = request.match_info["rest"]
        ns = request.query.get("ns", "")
        read = request.method in ("GET", "HEAD")
        if self.hosted is not None:
            if rest == "_catalog" and read:
                return await self.hosted.catalog(request)
            hosted = await self.hosted.dispatch(request, rest, ns)
            if hosted is not None:
                return hosted
        for marker, handler in (
            ("/manifests/", self.manifest),
            ("/blobs/", self.blob),
        ):
            name, sep, ref = rest.rpartition(marker)
            if sep and name and ref and "/" not in ref:
                if not read:
                    break
                host, repo = split_name(name, ns, self.config)
                check_reference(ref)
                return await handler(request, host, repo, ref)
        if rest.endswith("/tags/list") and read:
            host, repo = split_name(rest[: -len("/tags/list")], ns, self.config)
            return await self.tags(request, host, repo)
        if not read:
            raise RegistryError("UNSUPPORTED", "the operation is unsupported")
        raise RegistryError("NAME_UNKNOWN", "repository name not known to registry", 404)

    # --- manifests -------------------------------------------------------------------------------

    async def manifest(self, request: web.Request, host: str, repo: str, ref: str) -> web.Response:
        body, media, warning = await self.resolve_manifest(host, repo, ref)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        headers = {
            **API_HEADERS,
            "Docker-Content-Digest": digest,
            "Content-Type": media,
            "Etag": f'"{digest}"',
        }
        if warning:
            headers["Warning"] = warning
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return web.Response(status=200, headers=headers)
        return web.Response(status=200, body=body, headers=headers)

    async def resolve_manifest(self, host: str, repo: str, ref: str) -> tuple[bytes, str, str]:
        """(bytes, media type, Warning header or ""), from the cache or upstream."""
        if is_digest(ref):
            cached = await to_thread.run_sync(self.cache.get_manifest, ref)
            if cached is not None:
                # Cached for some repository: served to this one once its upstream has it too.
                if not await to_thread.run_sync(self.cache.has_link, host, repo, ref):
                    await self._confirm(host, repo, "manifests", ref)
                return cached[0], cached[1], ""
            body, media = await self._fetch_manifest(host, repo, ref, ref)
            return body, media, ""
        tag = await to_thread.run_sync(self.cache.get_tag, host, repo, ref)
        cached = await to_thread.run_sync(self.cache.get_manifest, tag[0]) if tag else None
        if tag and cached and time.time() - tag[1] < self.config.tag_ttl:
            return cached[0], cached[1], ""
        try:
            if tag and cached:
                # Revalidate: a HEAD is cheap and not counted against Docker Hub's pull limit.
                current = await self._head_digest(host, repo, ref)
                if current == tag[0]:
                    await to_thread.run_sync(self.cache.put_tag, host, repo, ref, tag[0])
                    return cached[0], cached[1], ""
            body, media = await self._fetch_manifest(host, repo, ref, "")
            return body, media, ""
        except UpstreamUnavailable as exc:
            if cached:
                log.warning("serving cached %s/%s:%s: upstream: %s", host, repo, ref, exc.message)
                return cached[0], cached[1], STALE
            raise

    async def _head_digest(self, host: str, repo: str, ref: str) -> str:
        resp = await self.upstream.request("HEAD", host, repo, f"manifests/{ref}", {"Accept": MANIFEST_ACCEPT})
        async with resp:
            return resp.headers.get("Docker-Content-Digest", "")

    async def _fetch_manifest(self, host: str, repo: str, ref: str, expected: str) -> tuple[bytes, str]:
        resp = await self.upstream.request("GET", host, repo, f"manifests/{ref}", {"Accept": MANIFEST_ACCEPT})
        async with resp:
            limit = self.config.max_manifest
            if (resp.content_length or 0) > limit:
                raise RegistryError("MANIFEST_INVALID", f"manifest is larger than {limit} bytes", 400)
            body = await read_limited(resp, limit)
            if len(body) > limit:
                raise RegistryError("MANIFEST_INVALID", f"manifest is larger than {limit} bytes", 400)
            media = resp.headers.get("Content-Type", "").split(";")[0].strip()
            claimed = resp.headers.get("Docker-Content-Digest", "")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if expected and digest != expected:
            raise RegistryError("DIGEST_INVALID", f"upstream manifest {ref} has digest {digest}", 502)
        if claimed.startswith("sha256:") and claimed != digest:
            raise RegistryError("DIGEST_INVALID", f"upstream manifest says {claimed}, its bytes are {digest}", 502)
        if not media:
            media = media_from_body(body)
        await to_thread.run_sync(self.cache.put_manifest, digest, body, media)
        # The upstream's repository holds the manifest and what it refers to.
        await to_thread.run_sync(self.cache.link, host, repo, {digest} | referenced_digests(body))
        if not expected:
            await to_thread.run_sync(self.cache.put_tag, host, repo, ref, digest)
        return body, media

    # --- blobs -----------------------------------------------------------------------------------

    def _blob_headers(self, digest: str) -> dict[str, str]:
        return {**API_HEADERS, "Docker-Content-Digest": digest, "Accept-Ranges": "bytes", "Etag": f'"{digest}"'}

    async def blob(self, request: web.Request, host: str, repo: str, digest: str) -> web.StreamResponse:
        if not is_digest(digest):
            raise RegistryError("DIGEST_INVALID", f"invalid digest {digest!r}")
        path = self.cache.blob_path(digest)
        linked = await to_thread.run_sync(self.cache.has_link, host, repo, digest)
        if await to_thread.run_sync(path.exists):
            if not linked:
                await self._confirm(host, repo, "blobs", digest)
        else:
            if request.method == "HEAD":
                return await self._head_blob(host, repo, digest)
            fetch = self.fetches.get(host, repo, digest)
            # Joining another repository's download (or finding it done) needs this repository
            # to hold the blob too; a download started for this one is its own proof.
            if not linked and (fetch is None or fetch.source != (host, repo)):
                await self._confirm(host, repo, "blobs", digest)
            if fetch is not None:
                await self.fetches.wait_started(fetch)
                if "Range" not in request.headers and not fetch.done:
                    return await self._stream(request, fetch)
                await fetch.finished.wait()
                if fetch.error is not None:
                    raise fetch.error
        return await self._serve_file(request, digest)

    async def _serve_file(self, request: web.Request, digest: str) -> web.StreamResponse:
        path = self.cache.blob_path(digest)
        # Least recently served goes first when the quota evicts.
        await to_thread.run_sync(lambda: os.utime(path))
        resp = web.FileResponse(path, headers={**self._blob_headers(digest), "Content-Type": BLOB_TYPE})
        return resp

    async def _confirm(self, host: str, repo: str, kind: str, digest: str) -> None:
        """Ask the upstream whether `repo` holds `digest` (a HEAD); link it if so."""
        accept = {"Accept": MANIFEST_ACCEPT} if kind == "manifests" else {}
        try:
            resp = await self.upstream.request("HEAD", host, repo, f"{kind}/{digest}", accept)
        except RegistryError as exc:
            if exc.status != 404:
                raise  # unreachable, rate limited, unauthorized: as the upstream said
            code = "BLOB_UNKNOWN" if kind == "blobs" else "MANIFEST_UNKNOWN"
            raise RegistryError(code, f"{kind[:-1]} unknown to registry", 404) from None
        resp.release()
        await to_thread.run_sync(self.cache.link, host, repo, {digest})

    async def _head_blob(self, host: str, repo: str, digest: str) -> web.Response:
        resp = await self.upstream.request("HEAD", host, repo, f"blobs/{digest}")
        async with resp:
            length = resp.headers.get("Content-Length", "")
        await to_thread.run_sync(self.cache.link, host, repo, {digest})
        headers = {**self._blob_headers(digest), "Content-Type": BLOB_TYPE}
        if length:
            headers["Content-Length"] = length
        return web.Response(status=200, headers=headers)

    async def _stream(self, request: web.Request, fetch: Fetch) -> web.StreamResponse:
        headers = {**self._blob_headers(fetch.digest), "Content-Type": BLOB_TYPE}
        resp = web.StreamResponse(status=200, headers=headers)
        if fetch.size >= 0:
            resp.content_length = fetch.size
        else:
            resp.enable_chunked_encoding()
        src = await to_thread.run_sync(_open_either, fetch.path, self.cache.blob_path(fetch.digest))
        try:
            await resp.prepare(request)
            sent = 0
            while True:
                progress = fetch.progress
                # Hold the last byte back until the digest is verified.
                limit = fetch.written if fetch.done else max(fetch.written - 1, 0)
                if fetch.finished.is_set() and fetch.error is not None:
                    # Cut the connection: the client sees a short body, never a complete bad one.
                    log.warning("aborting a client of %s: %s", fetch.digest, fetch.error.message)
                    if request.transport is not None:
                        request.transport.abort()
                    return resp
                while sent < limit:
                    chunk = await to_thread.run_sync(src.read, min(CHUNK, limit - sent))
                    if not chunk:
                        break
                    sent += len(chunk)
                    try:
                        await resp.write(chunk)
                    except (ConnectionError, ClientConnectionResetError):
                        return resp  # the client left; the fetch goes on into the cache
                if fetch.done and sent >= fetch.written:
                    break
                with anyio.fail_after(self.config.read_timeout):
                    await progress.wait()
        finally:
            await to_thread.run_sync(src.close)
        await resp.write_eof()
        return resp

    # --- tags ------------------------------------------------------------------------------------

    async def tags(self, request: web.Request, host: str, repo: str) -> web.Response:
        query = _tags_query(request)
        path = "tags/list" + (f"?{urlencode(query)}" if query else "")
        resp = await self.upstream.request("GET", host, repo, path)
        async with resp:
            limit = self.config.max_manifest
            body = await read_limited(resp, limit)
            if len(body) > limit:
                raise RegistryError("UNKNOWN", f"the upstream's tag list is larger than {limit} bytes", 502)
            headers = {**API_HEADERS}
            if "Link" in resp.headers:
                headers["Link"] = resp.headers["Link"]
        return web.Response(body=body, content_type="application/json", headers=headers)


def _open_either(ingest: Path | None, final: Path) -> BinaryIO:
    """The ingest file being written; if it was already committed, the blob under its name."""
    for p in (ingest, final):
        if p is None:
            continue
        try:
            return open(p, "rb")  # noqa: SIM115 - closed by the caller
        except FileNotFoundError:
            continue
    raise RegistryError("BLOB_UNKNOWN", "blob vanished while being served", 404)


def _tags_query(request: web.Request) -> dict[str, str]:
    """`n` (a count) and `last` (a tag), checked: both go into the upstream URL."""
    query: dict[str, str] = {}
    n = request.query.get("n")
    if n is not None:
        if not (n.isascii() and n.isdigit() and len(n) <= 6):
            raise RegistryError("PAGINATION_NUMBER_INVALID", f"invalid number of results requested {n[:50]!r}", 400)
        query["n"] = n
    last = request.query.get("last")
    if last is not None:
        if last and not refgrammar.is_tag(last):
            raise RegistryError("TAG_INVALID", f"invalid tag {last[:300]!r}")
        query["last"] = last
    return query
