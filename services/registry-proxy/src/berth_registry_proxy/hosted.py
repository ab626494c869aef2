"""berth's own registry: the push and pull halves of the OCI Distribution API for names under
berth's own address, with Docker's bearer-token authorisation (tokens.py), the permissions of
access.py, storage.py on disk, webhooks after each tagged push and garbage collection.

Which requests are hosted: `?ns=<own address>` or a first path part that is one (how lifecycle
and host-prefixed clients name it), or a name without a host whose namespace is hosted here (a
user's or the permissions file's): `docker push 127.0.0.1:5000/alice/app` sends `/v2/alice/app/`.
Any other name stays with the pull-through cache.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import anyio
from aiohttp import web
from anyio import to_thread
from anyio.abc import TaskGroup
from berth_common import refgrammar

from berth_registry_proxy.access import Access, HostedConfig
from berth_registry_proxy.errors import RegistryError
from berth_registry_proxy.gc import collect
from berth_registry_proxy.names import check_reference
from berth_registry_proxy.storage import Storage
from berth_registry_proxy.tokens import Tokens
from berth_registry_proxy.webhooks import Webhooks

log = logging.getLogger(__name__)
API = {"Docker-Distribution-API-Version": "registry/2.0"}
CHUNK = 1 << 20
DENIED = "requested access to the resource is denied"


@dataclass
class Hosted:
    config: HostedConfig
    access: Access
    tokens: Tokens
    storage: Storage
    webhooks: Webhooks
    tg: TaskGroup
    max_manifest: int
    max_blob: int

    # --- which requests are ours -----------------------------------------------------------------

    def repository(self, name: str, ns: str) -> str | None:
        """The hosted repository a request names, or None (pull-through)."""
        if ns:
            if ns.lower() not in self.config.addresses:
                return None
            repo = name
        else:
            first, sep, rest = name.partition("/")
            if sep and first.lower() in self.config.addresses:
                repo = rest
            elif sep and first in self.access.namespaces():
                repo = name
            else:
                return None
        if not refgrammar.is_remote_name(repo) or "/" not in repo:
            raise RegistryError("NAME_INVALID", f"invalid repository name {repo[:300]!r}")
        return repo

    async def dispatch(self, request: web.Request, rest: str, ns: str) -> web.StreamResponse | None:
        for marker in ("/blobs/uploads/", "/blobs/uploads", "/manifests/", "/blobs/", "/tags/list"):
            name, sep, tail = rest.rpartition(marker)
            if not sep or not name or "/" in tail:
                continue
            repo = self.repository(name, ns)
            if repo is None:
                return None
            if marker.startswith("/blobs/uploads"):
                return await self.upload(request, repo, tail)
            if marker == "/tags/list":
                if tail:
                    continue
                return await self.tags(request, repo)
            check_reference(tail)
            if marker == "/manifests/":
                return await self.manifest(request, repo, tail)
            return await self.blob(request, repo, tail)
        return None

    # --- authorisation ---------------------------------------------------------------------------

    def authorize(self, request: web.Request, repo: str, needed: set[str]) -> str:
        """The caller's user name ("" anonymous) if its token grants `needed` on `repo`."""
        granted = set(self.tokens.granted(request, "repository", repo))
        if self.access.is_public(repo):
            granted.add("pull")
        if needed <= granted:
            return self.tokens.subject(request)
        scope = f"repository:{repo}:{','.join(sorted(needed, key=['pull', 'push', 'delete'].index))}"
        if self.tokens.verify(request.headers.get("Authorization", "").partition(" ")[2].strip()) is None:
            raise self.tokens.challenge(request, scope)
        raise RegistryError("DENIED", DENIED, 403)

    # --- manifests -------------------------------------------------------------------------------

    async def manifest(self, request: web.Request, repo: str, ref: str) -> web.StreamResponse:
        if request.method in ("GET", "HEAD"):
            self.authorize(request, repo, {"pull"})
            digest, body, media = await to_thread.run_sync(self.storage.get_manifest, repo, ref)
            headers = {**API, "Docker-Content-Digest": digest, "Content-Type": media, "Etag": f'"{digest}"'}
            if request.method == "HEAD":
                return web.Response(headers={**headers, "Content-Length": str(len(body))})
            return web.Response(body=body, headers=headers)
        if request.method == "PUT":
            user = self.authorize(request, repo, {"pull", "push"})
            return await self.put_manifest(request, repo, ref, user)
        if request.method == "DELETE":
            self.authorize(request, repo, {"delete"})
            await to_thread.run_sync(self.storage.delete_manifest, repo, ref)
            await to_thread.run_sync(collect, self.storage, self.config.gc_grace)
            return web.Response(status=202, headers={**API, "Content-Length": "0"})
        raise RegistryError("UNSUPPORTED", "the operation is unsupported")

    async def put_manifest(self, request: web.Request, repo: str, ref: str, user: str) -> web.Response:
        if (request.content_length or 0) > self.max_manifest:
            raise RegistryError("MANIFEST_INVALID", f"manifest is larger than {self.max_manifest} bytes", 413)
        body = bytearray()
        async for chunk in request.content.iter_chunked(CHUNK):
            body += chunk
            if len(body) > self.max_manifest:
                raise RegistryError("MANIFEST_INVALID", f"manifest is larger than {self.max_manifest} bytes", 413)
        media = request.headers.get("Content-Type", "").split(";")[0].strip()
        doc = _json_object(bytes(body))
        media = media or str(doc.get("mediaType") or "")
        if not media:
            raise RegistryError("MANIFEST_INVALID", "manifest has no media type")
        digest = await to_thread.run_sync(self.storage.put_manifest, repo, ref, bytes(body), media)
        if not refgrammar.is_sha256_digest(ref):
            self.webhooks.pushed(repo, ref, digest, user, not self.access.is_public(repo), self.config.base_url)
        location = f"/v2/{repo}/manifests/{digest}"
        return web.Response(status=201, headers={**API, "Location": location, "Docker-Content-Digest": digest,
                                                 "Content-Length": "0"})

    # --- blobs -----------------------------------------------------------------------------------

    async def blob(self, request: web.Request, repo: str, digest: str) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise RegistryError("UNSUPPORTED", "the operation is unsupported")
        self.authorize(request, repo, {"pull"})
        if not refgrammar.is_sha256_digest(digest):
            raise RegistryError("DIGEST_INVALID", f"invalid digest {digest!r}")
        size = await to_thread.run_sync(self.storage.has_blob, repo, digest)
        if size < 0:
            raise RegistryError("BLOB_UNKNOWN", "blob unknown to registry", 404)
        headers = {**API, "Docker-Content-Digest": digest, "Etag": f'"{digest}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(size)})
        return web.FileResponse(self.storage.blob_path(digest), headers=headers)

    async def upload(self, request: web.Request, repo: str, upload_id: str) -> web.StreamResponse:
        self.authorize(request, repo, {"pull", "push"})
        if not upload_id:
            if request.method != "POST":
                raise RegistryError("UNSUPPORTED", "the operation is unsupported")
            return await self._start(request, repo)
        if request.method == "DELETE":
            await to_thread.run_sync(self.storage.cancel_upload, upload_id)
            return web.Response(status=204, headers=API)
        size = await to_thread.run_sync(self.storage.upload_size, repo, upload_id)
        if request.method == "GET":
            return web.Response(status=204, headers=self._progress(repo, upload_id, size))
        if request.method == "PATCH":
            size = await self._append(request, upload_id, size)
            return web.Response(status=202, headers=self._progress(repo, upload_id, size))
        if request.method == "PUT":
            digest = request.query.get("digest", "")
            if not refgrammar.is_sha256_digest(digest):
                raise RegistryError("DIGEST_INVALID", f"invalid digest {digest[:100]!r}")
            await self._append(request, upload_id, size)
            await to_thread.run_sync(self.storage.commit_upload, repo, upload_id, digest)
            return self._created(repo, digest)
        raise RegistryError("UNSUPPORTED", "the operation is unsupported")

    async def _start(self, request: web.Request, repo: str) -> web.Response:
        mount, source = request.query.get("mount", ""), request.query.get("from", "")
        if mount and source and refgrammar.is_sha256_digest(mount) and refgrammar.is_remote_name(source):
            from_repo = self.tokens.own_name(source)
            # Mounting reads the other repository: the caller's token must allow that.
            readable = "pull" in self.tokens.granted(request, "repository", from_repo) or self.access.is_public(from_repo)
            if readable and await to_thread.run_sync(self.storage.has_blob, from_repo, mount) >= 0:
                if await to_thread.run_sync(self.storage.link_blob, repo, mount):
                    return self._created(repo, mount)
        upload_id = await to_thread.run_sync(self.storage.start_upload, repo)
        digest = request.query.get("digest", "")
        if digest:  # monolithic: POST with the whole blob
            if not refgrammar.is_sha256_digest(digest):
                raise RegistryError("DIGEST_INVALID", f"invalid digest {digest[:100]!r}")
            await self._append(request, upload_id, 0)
            await to_thread.run_sync(self.storage.commit_upload, repo, upload_id, digest)
            return self._created(repo, digest)
        return web.Response(status=202, headers=self._progress(repo, upload_id, 0))

    async def _append(self, request: web.Request, upload_id: str, size: int) -> int:
        """The request body appended to the upload, within the blob limit; a cut connection
        leaves the bytes received so far (a client resumes from the Range it is told)."""
        content_range = request.headers.get("Content-Range", "")
        if content_range:
            start = content_range.removeprefix("bytes=").partition("-")[0]
            if not start.isdigit() or int(start) != size:
                raise RegistryError("BLOB_UPLOAD_INVALID", "content range does not follow the upload", 416,
                                    {"Range": f"0-{max(size - 1, 0)}"})
        if size + (request.content_length or 0) > self.max_blob:
            await to_thread.run_sync(self.storage.cancel_upload, upload_id)
            raise RegistryError("SIZE_INVALID", f"blob is larger than {self.max_blob} bytes", 413)
        path = self.storage.upload_file(upload_id)
        f = await to_thread.run_sync(open, path, "ab")
        try:
            async for chunk in request.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > self.max_blob:
                    await to_thread.run_sync(self.storage.cancel_upload, upload_id)
                    raise RegistryError("SIZE_INVALID", f"blob is larger than {self.max_blob} bytes", 413)
                await to_thread.run_sync(f.write, chunk)
        finally:
            with anyio.CancelScope(shield=True):
                await to_thread.run_sync(f.close)
        return size

    @staticmethod
    def _progress(repo: str, upload_id: str, size: int) -> dict[str, str]:
        return {**API, "Location": f"/v2/{repo}/blobs/uploads/{upload_id}", "Docker-Upload-UUID": upload_id,
                "Range": f"0-{max(size - 1, 0)}", "Content-Length": "0"}

    @staticmethod
    def _created(repo: str, digest: str) -> web.Response:
        return web.Response(status=201, headers={**API, "Location": f"/v2/{repo}/blobs/{digest}",
                                                 "Docker-Content-Digest": digest, "Content-Length": "0"})

    # --- listings --------------------------------------------------------------------------------

    async def tags(self, request: web.Request, repo: str) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            raise RegistryError("UNSUPPORTED", "the operation is unsupported")
        self.authorize(request, repo, {"pull"})
        tags = await to_thread.run_sync(self.storage.tags, repo)
        if not tags and not await to_thread.run_sync(self.storage.exists, repo):
            raise RegistryError("NAME_UNKNOWN", "repository name not known to registry", 404)
        page, link = _paginate(request, tags, f"/v2/{repo}/tags/list")
        return web.json_response({"name": repo, "tags": page}, headers={**API, **link})

    async def catalog(self, request: web.Request) -> web.Response:
        """Only the repositories the caller may read (a token's subject, or anonymous)."""
        user = self.tokens.subject(request)
        repos = await to_thread.run_sync(self.storage.repositories)
        readable = [r for r in repos if "pull" in self.access.actions(user, r)]
        page, link = _paginate(request, readable, "/v2/_catalog")
        return web.json_response({"repositories": page}, headers={**API, **link})

    async def base(self, request: web.Request) -> web.Response | None:
        """`/v2/`: once the registry has users, a 401 challenge unless a valid token is sent
        (how docker login learns where to get tokens, and checks a password)."""
        enabled = await to_thread.run_sync(lambda: self.access.enabled)
        if not enabled:
            return None
        token = request.headers.get("Authorization", "").partition(" ")[2].strip()
        if self.tokens.verify(token) is None:
            raise self.tokens.challenge(request)
        return None

    async def callback(self, request: web.Request) -> web.Response:
        try:
            state = await request.json()
        except ValueError:
            state = None
        if not isinstance(state, dict) or not await self.webhooks.callback(request.match_info["id"], state):
            raise RegistryError("NAME_UNKNOWN", "no such webhook delivery", 404)
        return web.json_response({})

    async def collect(self) -> None:
        await to_thread.run_sync(collect, self.storage, self.config.gc_grace)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("schemaVersion"), int):
        raise RegistryError("MANIFEST_INVALID", "manifest invalid")
    return doc


def _paginate(request: web.Request, items: list[str], path: str) -> tuple[list[str], dict[str, str]]:
    n_raw, last = request.query.get("n", ""), request.query.get("last", "")
    if n_raw and not (n_raw.isascii() and n_raw.isdigit() and len(n_raw) <= 6):
        raise RegistryError("PAGINATION_NUMBER_INVALID", "invalid number of results requested", 400)
    if last:
        items = [i for i in items if i > last]
    if not n_raw:
        return items, {}
    n = int(n_raw)
    page = items[:n]
    if len(items) > n and page:
        return page, {"Link": f'<{path}?n={n}&last={page[-1]}>; rel="next"'}
    return page, {}
