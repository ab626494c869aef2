"""`docker import`: a rootfs tar (maybe compressed) becomes a one-layer image."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import msgspec
from anyio import to_thread
from berth_common.gotime import rfc3339nano
from berth_contracts.engine import ImageUpload
from berth_contracts.errors import InvalidParameter

from berth_lifecycle.events import image_event
from berth_lifecycle.imageconfig import apply_changes
from berth_lifecycle.images import Images, StagedBlob
from berth_lifecycle.layer_child import LayerError, decompressed
from berth_lifecycle.loader import HOST_ARCH
from berth_lifecycle.reference import Reference, parse_repo_tag

CHUNK = 1 << 20


def diff_id_of(blob: StagedBlob) -> str:
    """sha256 of the decompressed stream (the config must name it before the layer is applied)."""
    digest = hashlib.sha256()
    with open(blob.path, "rb") as raw:
        try:
            src: Any = decompressed(raw)
            while chunk := src.read(CHUNK):
                digest.update(chunk)
        except (OSError, EOFError, LayerError) as exc:
            raise InvalidParameter(f"invalid layer archive: {exc}") from None
    return "sha256:" + digest.hexdigest()


def import_config(cmd: ImageUpload, diff_id: str) -> bytes:
    created = rfc3339nano()
    comment = cmd.message or "Imported from -"
    config = msgspec.to_builtins(apply_changes(cmd.changes))
    doc = {
        "architecture": HOST_ARCH,
        "comment": comment,
        "config": config,
        "created": created,
        "docker_version": "berth",
        "history": [{"created": created, "comment": comment}],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def import_name(cmd: ImageUpload) -> list[Reference]:
    if not cmd.repo:
        return []
    return [parse_repo_tag(cmd.repo, cmd.tag)]


async def import_image(images: Images, cmd: ImageUpload, layer: StagedBlob) -> dict[str, Any]:
    names = import_name(cmd)  # validate before any work
    apply_changes(cmd.changes)
    diff_id = await to_thread.run_sync(diff_id_of, layer)
    config = import_config(cmd, diff_id)
    stored = await images.store(config, [layer], names)
    await images.publish(image_event("import", stored.image_id, stored.image_id))
    return {"status": stored.image_id}
