"""`docker save`: one tar of one or several images and their tags, in moby 25's layout.

The archive is both a docker-archive (`manifest.json`, `repositories`) and an OCI image layout
(`oci-layout`, `index.json`, `blobs/sha256/...`): layers are the uncompressed tars (their digest
is the diffID), configs as stored, one OCI manifest per image. ImageSave resolves the names (a
missing one is the RPC's error, Docker's words); a POST to the single-use `/saves/<token>` URL
streams the tar, built on the fly (layers are decompressed twice: once to learn the size a tar
header needs, once to send; nothing is staged on disk).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import anyio
import zstandard
from aiohttp import web
from anyio import to_thread
from berth_common.tokens import Tokens
from berth_contracts.distribution import ImageSave
from berth_contracts.errors import InvalidParameter, NotFound

from berth_lifecycle.images import Images
from berth_lifecycle.metadata import ImageRow
from berth_lifecycle.reference import DIGEST_RE, HEX64_RE, Reference, parse_normalized_named

CHUNK = 1 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass
class SavedImage:
    row: ImageRow
    tags: list[Reference] = field(default_factory=list)


def open_layer(path: Path) -> IO[bytes]:
    """The uncompressed tar of a stored layer blob (gzip, zstd or plain tar)."""
    raw = path.open("rb")
    magic = raw.read(4)
    raw.seek(0)
    if magic.startswith(_GZIP_MAGIC):
        raw.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]  # owns its file: closed with it
    if magic == _ZSTD_MAGIC:
        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)  # type: ignore[return-value]
    return raw


def layer_size(path: Path) -> int:
    with open_layer(path) as f:
        size = 0
        while chunk := f.read(CHUNK):
            size += len(chunk)
        return size


def _header(name: str, size: int, directory: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.mtime = 0
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _pad(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class _Plan:
    """Everything but the layer bytes: the small files and where each layer comes from."""

    small: dict[str, bytes]  # archive path → content (configs, manifests, index, ...)
    layers: dict[str, tuple[Path, int]]  # archive path → (stored blob, uncompressed size)


def plan(images: Images, saved: list[SavedImage]) -> _Plan:
    """Blocking: build manifests, index.json, manifest.json and repositories; size the layers."""
    content = images.content
    small: dict[str, bytes] = {}
    layers: dict[str, tuple[Path, int]] = {}
    docker_manifest: list[dict[str, Any]] = []
    index: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for item in saved:
        row = item.row
        config_path = f"blobs/sha256/{row.id.removeprefix('sha256:')}"
        small[config_path] = row.config
        layer_paths: list[str] = []
        descriptors: list[dict[str, Any]] = []
        for diff_id, blob in zip(row.diff_ids, row.layer_blobs, strict=True):
            path = f"blobs/sha256/{diff_id.removeprefix('sha256:')}"
            if path not in layers:
                layers[path] = (content.path(blob), layer_size(content.path(blob)))
            layer_paths.append(path)
            descriptors.append({"mediaType": OCI_LAYER_TAR, "digest": diff_id, "size": layers[path][1]})
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": row.id, "size": len(row.config)},
                "layers": descriptors,
            },
            separators=(",", ":"),
        ).encode()
        manifest_digest = _digest(manifest)
        small[f"blobs/sha256/{manifest_digest.removeprefix('sha256:')}"] = manifest
        descriptor = {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest)}
        if not item.tags:
            index.append(descriptor)
        for ref in item.tags:
            annotations = {"io.containerd.image.name": str(ref), "org.opencontainers.image.ref.name": ref.tag}
            index.append({**descriptor, "annotations": annotations})
            if layer_paths:
                top = row.diff_ids[-1].removeprefix("sha256:")
                repositories.setdefault(ref.familiar_name(), {})[ref.tag] = top
        docker_manifest.append(
            {"Config": config_path, "RepoTags": [r.familiar() for r in item.tags] or None, "Layers": layer_paths}
        )
    small["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    small["index.json"] = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}, separators=(",", ":")
    ).encode()
    small["manifest.json"] = json.dumps(docker_manifest, separators=(",", ":")).encode()
    if repositories:
        small["repositories"] = json.dumps(repositories, separators=(",", ":")).encode()
    return _Plan(small, layers)


def archive_chunks(archive: _Plan) -> Iterator[bytes]:
    """The tar, in chunks (blocking: run each step in a worker thread)."""
    yield _header("blobs/", 0, directory=True) + _header("blobs/sha256/", 0, directory=True)
    blob_names = sorted({*archive.layers, *(p for p in archive.small if p.startswith("blobs/"))})
    for name in blob_names:
        if name in archive.layers:
            path, size = archive.layers[name]
            yield _header(name, size)
            sent = 0
            with open_layer(path) as f:
                while chunk := f.read(CHUNK):
                    sent += len(chunk)
                    yield chunk
            if sent != size:  # the blob changed under us: a truncated archive, never a wrong one
                raise InvalidParameter(f"layer {name} changed while it was saved")
            yield _pad(size)
        else:
            data = archive.small[name]
            yield _header(name, len(data)) + data + _pad(len(data))
    for name in ("index.json", "manifest.json", "oci-layout", "repositories"):
        if name in archive.small:
            data = archive.small[name]
            yield _header(name, len(data)) + data + _pad(len(data))
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


class Saver:
    def __init__(self, images: Images) -> None:
        self.images = images
        self._pending: Tokens[list[SavedImage]] = Tokens()

    async def prepare(self, cmd: ImageSave, base_url: str) -> str:
        if not cmd.names:
            raise InvalidParameter("no images specified")  # the CLI needs at least one
        saved: dict[str, SavedImage] = {}
        for name in cmd.names:
            for row, tags in await self._select(name):
                item = saved.setdefault(row.id, SavedImage(row))
                item.tags.extend(t for t in tags if t not in item.tags)
        return f"{base_url}/saves/{self._pending.issue(list(saved.values()))}"

    async def _select(self, name: str) -> list[tuple[ImageRow, list[Reference]]]:
        """moby's tarexport parseNames: a repository name means all its tags; name:tag one tag;
        an id or digest reference the image without a name."""
        images = self.images
        if HEX64_RE.match(name) or DIGEST_RE.match(name) or "@" in name:
            return [(await images.resolve(name), [])]
        try:
            ref = parse_normalized_named(name)
        except InvalidParameter:
            return [(await images.resolve(name), [])]
        if ref.tag:
            image_id = await to_thread.run_sync(images.meta.lookup_name, str(ref))
            row = await to_thread.run_sync(images.meta.get_image, image_id) if image_id else None
            if row is None:
                raise NotFound("reference does not exist")
            return [(row, [ref])]
        all_names = await to_thread.run_sync(images.meta.all_names)
        tags: dict[str, list[Reference]] = {}
        for image_id, names in all_names.items():
            for full in names:
                named = parse_normalized_named(full)
                if named.name == ref.name and named.tag:
                    tags.setdefault(image_id, []).append(named)
        if not tags:
            try:
                return [(await images.resolve(name), [])]  # an id prefix
            except NotFound:
                raise NotFound(f"No such image: {name}") from None
        return [(await images.resolve(image_id), refs) for image_id, refs in tags.items()]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        pending = self._pending.take(request.match_info["token"])
        if pending is None:
            return web.json_response({"message": "save URL unknown, used or expired"}, status=404)
        await request.read()  # the body is empty
        archive = await to_thread.run_sync(plan, self.images, pending)
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunks = archive_chunks(archive)
        while True:
            chunk = await to_thread.run_sync(next, chunks, None)
            if chunk is None:
                break
            with anyio.fail_after(300):  # a client reading nothing for 5 minutes is given up
                await response.write(chunk)
        await response.write_eof()
        return response
