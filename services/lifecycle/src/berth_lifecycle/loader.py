"""`docker load`: docker-save archives (manifest.json) and OCI image layouts (index.json).

Reads the staged archive's manifests, then stores each image through Images.store (which
unpacks and verifies the layers). Yields Docker's JSON progress messages as dicts.
"""

from __future__ import annotations

import json
import platform
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from berth_contracts.errors import InvalidParameter

from berth_lifecycle.archive import MAX_METADATA, StagedArchive
from berth_lifecycle.events import image_event
from berth_lifecycle.images import Images, StagedBlob
from berth_lifecycle.reference import Reference, familiar, parse_normalized_named

INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


@dataclass
class ImageToLoad:
    config: StagedBlob
    layers: list[StagedBlob]
    names: list[Reference]


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise InvalidParameter(f"invalid archive: {what}: {exc}") from None


def docker_save_images(staged: StagedArchive) -> list[ImageToLoad]:
    manifest = _json(staged.read_small("manifest.json", "manifest"), "manifest.json")
    if not isinstance(manifest, list):
        raise InvalidParameter("invalid archive: manifest.json is not a list")
    out: list[ImageToLoad] = []
    for entry in manifest:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InvalidParameter("invalid archive: bad manifest.json entry")
        names = [parse_normalized_named(t).with_default_tag() for t in entry.get("RepoTags") or []]
        out.append(
            ImageToLoad(
                config=staged.require(entry["Config"], "config"),
                layers=[staged.require(layer, "layer") for layer in entry.get("Layers") or []],
                names=names,
            )
        )
    return out


def _blob(staged: StagedArchive, descriptor: dict[str, Any], what: str) -> StagedBlob:
    digest = str(descriptor.get("digest", ""))
    algo, _, hex_ = digest.partition(":")
    blob = staged.require(f"blobs/{algo}/{hex_}", what)
    if blob.digest != digest:
        raise InvalidParameter(f"invalid archive: {what} {digest} has digest {blob.digest}")
    return blob


def _platform_ok(descriptor: dict[str, Any]) -> bool:
    plat = descriptor.get("platform")
    if not isinstance(plat, dict):
        return True
    return plat.get("os", "linux") == "linux" and plat.get("architecture", HOST_ARCH) == HOST_ARCH


def _names(annotations: dict[str, str]) -> list[Reference]:
    full = annotations.get(ANNOTATION_CONTAINERD_NAME, "")
    ref_name = annotations.get(ANNOTATION_REF_NAME, "")
    for candidate in (full, ref_name):
        # A bare tag ("latest") names no repository: such an image loads untagged.
        if candidate and ("/" in candidate or ":" in candidate or "@" in candidate):
            try:
                return [parse_normalized_named(candidate).with_default_tag()]
            except InvalidParameter:
                continue
    return []


def oci_layout_images(staged: StagedArchive) -> list[ImageToLoad]:
    index = _json(staged.read_small("index.json", "index"), "index.json")
    out: list[ImageToLoad] = []
    by_config: dict[str, ImageToLoad] = {}

    def visit(descriptor: dict[str, Any], names: list[Reference], depth: int) -> None:
        media = descriptor.get("mediaType", "")
        blob = _blob(staged, descriptor, "manifest")
        doc = _json(blob.path.read_bytes(), "manifest")
        media = media or doc.get("mediaType", "")
        if media in INDEX_TYPES or "manifests" in doc:
            if depth > 4:
                raise InvalidParameter("invalid archive: index nesting too deep")
            for child in doc.get("manifests") or []:
                if _platform_ok(child):
                    visit(child, names, depth + 1)
                    return
            raise InvalidParameter(f"invalid archive: no manifest for linux/{HOST_ARCH}")
        if media not in MANIFEST_TYPES and "layers" not in doc:
            return
        config = _blob(staged, doc.get("config") or {}, "config")
        item = by_config.get(config.digest)
        if item is None:
            item = ImageToLoad(
                config=config,
                layers=[_blob(staged, layer, "layer") for layer in doc.get("layers") or []],
                names=[],
            )
            by_config[config.digest] = item
            out.append(item)
        item.names.extend(n for n in names if n not in item.names)

    for descriptor in index.get("manifests") or []:
        if _platform_ok(descriptor):
            visit(descriptor, _names(descriptor.get("annotations") or {}), 0)
    if not out:
        raise InvalidParameter("invalid archive: index.json lists no image")
    return out


def _stream(text: str) -> dict[str, Any]:
    return {"stream": text}


async def load(images: Images, staged: StagedArchive) -> AsyncIterator[dict[str, Any]]:
    """Store every image of the archive; yields Docker's progress messages."""
    if staged.get("manifest.json") is not None:
        to_load = await to_thread.run_sync(docker_save_images, staged)
    elif staged.get("index.json") is not None:
        to_load = await to_thread.run_sync(oci_layout_images, staged)
    else:
        raise InvalidParameter("invalid archive: no manifest.json or index.json found")
    for item in to_load:
        config = await to_thread.run_sync(_read_blob, images, item.config)
        stored = await images.store(config, item.layers, item.names, config_blob=item.config)
        await images.publish(image_event("load", stored.image_id, stored.image_id))
        for name in item.names:
            old = stored.replaced.get(str(name))
            if old:
                yield _stream(
                    f"The image {name.familiar()} already exists, renaming the old one with ID {old} to empty string\n"
                )
            yield _stream(f"Loaded image: {familiar(str(name))}\n")
        if not item.names:
            yield _stream(f"Loaded image ID: {stored.image_id}\n")


def _read_blob(images: Images, blob: StagedBlob) -> bytes:
    """A staged blob's bytes; an earlier image of the same archive may have committed it."""
    if blob.writer.size > MAX_METADATA:
        raise InvalidParameter(f"invalid archive: config {blob.digest} is too large")
    if blob.path.exists():
        return blob.path.read_bytes()
    return images.content.read_bytes(blob.digest)
