"""The classic build cache (moby's daemon/images/cache.go + image/cache/compare.go): a build
step reuses the newest child of the current image whose container_config is the step's probe.

The parent and the container_config live in each image's config (lifecycle's meta.db), so the
cache survives restarts like the images themselves.

With `--cache-from` (moby's image/cache/cache.go), a step may also match the history of the
images named: a loaded or pulled image has no parent chain here, so its steps are matched by
their history (`created_by` is the step's command) and the image for the step is put together
from its layers ("restored"); a local child then counts only when it lies in their parent chains.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import msgspec
from anyio import to_thread
from berth_common.gotime import ZERO_TIME, rfc3339nano
from berth_contracts.docker import ContainerConfig
from berth_contracts.errors import BerthError
from berth_contracts.imaging import ImageCacheHit, ImageCacheLookup

from berth_lifecycle.committing import DOCKER_VERSION
from berth_lifecycle.imageconfig import parse_config
from berth_lifecycle.images import Images
from berth_lifecycle.layers import chain_ids
from berth_lifecycle.metadata import ImageRow

log = logging.getLogger(__name__)


def configs_match(a: ContainerConfig | None, b: ContainerConfig | None) -> bool:
    """moby's compare(): what a step's result depends on; OpenStdin never matches."""
    if a is None or b is None or a.open_stdin or b.open_stdin:
        return False
    if (a.attach_stdout, a.attach_stderr, a.user, a.tty) != (
        b.attach_stdout,
        b.attach_stderr,
        b.user,
        b.tty,
    ):
        return False
    return (
        list(a.cmd or []) == list(b.cmd or [])
        and list(a.env or []) == list(b.env or [])
        and (a.labels or {}) == (b.labels or {})
        and set(a.exposed_ports or {}) == set(b.exposed_ports or {})
        and list(a.entrypoint or []) == list(b.entrypoint or [])
        and set(a.volumes or {}) == set(b.volumes or {})
    )


def _container_config(doc: dict[str, Any]) -> ContainerConfig | None:
    raw = doc.get("container_config")
    if not isinstance(raw, dict):
        return None
    try:
        return msgspec.convert(raw, ContainerConfig, strict=False)
    except msgspec.ValidationError:
        return None


class BuildCache:
    def __init__(self, images: Images) -> None:
        self.images = images

    def _find(self, cmd: ImageCacheLookup) -> str:
        best_id, best_created = "", ""
        for row in self.images.meta.images():
            doc = parse_config(row.config)
            if (doc.get("parent") or "") != cmd.parent:
                continue
            if not configs_match(_container_config(doc), cmd.container_config):
                continue
            created = str(doc.get("created") or "")
            if not best_id or created > best_created:  # RFC3339 UTC: text order is time order
                best_id, best_created = row.id, created
        return best_id

    async def lookup(self, cmd: ImageCacheLookup) -> ImageCacheHit:
        if not cmd.cache_from:
            return ImageCacheHit(id=await to_thread.run_sync(self._find, cmd))
        sources: list[ImageRow] = []
        for ref in cmd.cache_from:
            try:
                sources.append(await self.images.resolve(ref))
            except BerthError as exc:  # moby: skipped with a warning
                log.warning("cache source %s skipped: %s", ref, exc.message)
        async with self.images.lock:  # a restored image must not race a delete's collection
            return ImageCacheHit(id=await to_thread.run_sync(self._find_from, cmd, sources))

    def _find_from(self, cmd: ImageCacheLookup, sources: list[ImageRow]) -> str:
        local = self._find(cmd)
        if local and any(self._is_ancestor(local, s) for s in sources):
            return local
        parent = self.images.meta.get_image(cmd.parent) if cmd.parent else None
        parent_doc = parse_config(parent.config) if parent else {}
        parent_history = list(parent_doc.get("history") or [])
        for target in sources:
            doc = parse_config(target.config)
            history = list(doc.get("history") or [])
            if not _valid_parent(history, target.diff_ids, parent_history, parent) or len(
                history
            ) <= len(parent_history):
                continue
            entry = history[len(parent_history)]
            if " ".join(cmd.container_config.cmd or []) != entry.get("created_by", ""):
                continue
            if len(history) == len(parent_history) + 1:
                return target.id  # the step is the source's own last one
            return self._restore(cmd, parent, parent_history, target, doc, history)
        return ""

    def _is_ancestor(self, image_id: str, of: ImageRow) -> bool:
        """Whether image_id is in the parent chain of `of` (not `of` itself), as moby's isParent."""
        seen: set[str] = set()
        doc = parse_config(of.config)
        while (parent := str(doc.get("parent") or "")) and parent not in seen:
            if parent == image_id:
                return True
            seen.add(parent)
            row = self.images.meta.get_image(parent)
            if row is None:
                return False
            doc = parse_config(row.config)
        return False

    def _restore(
        self,
        cmd: ImageCacheLookup,
        parent: ImageRow | None,
        parent_history: list[Any],
        target: ImageRow,
        target_doc: dict[str, Any],
        history: list[Any],
    ) -> str:
        """moby's restoreCachedImage: the parent plus the source's next history entry and its
        layer, configured with the step's probe config. Content-addressed: the same step again
        gives the same image."""
        index = len(parent_history)
        entry = history[index]
        diff_ids = list(parent.diff_ids) if parent else []
        blobs = list(parent.layer_blobs) if parent else []
        size = parent.size if parent else 0
        if not entry.get("empty_layer"):
            layer = sum(1 for h in history[:index] if not h.get("empty_layer"))
            diff_ids.append(target.diff_ids[layer])
            blobs.append(target.layer_blobs[layer])
            unpacked = self.images.meta.get_snapshot(chain_ids(diff_ids)[-1])
            size += unpacked.size if unpacked else 0
        doc: dict[str, Any] = {
            "architecture": target_doc.get("architecture") or "amd64",
            "config": msgspec.to_builtins(cmd.container_config),
            "created": entry.get("created", ""),
            "docker_version": DOCKER_VERSION,
            "history": [*parent_history, entry],
            "os": target_doc.get("os") or "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        if target_doc.get("author"):
            doc["author"] = target_doc["author"]
        if parent is not None:
            doc["parent"] = parent.id
        config = json.dumps(doc, separators=(",", ":")).encode()
        image_id = self.images.content.write_bytes(config)
        if self.images.meta.get_image(image_id) is None:
            row = ImageRow(
                id=image_id, config=config, diff_ids=diff_ids, chain_ids=chain_ids(diff_ids),
                layer_blobs=blobs, size=size, added=rfc3339nano(), last_tag_time=ZERO_TIME,
            )  # fmt: skip
            self.images.meta.put_image(row, [], rfc3339nano())
        return image_id


def _valid_parent(
    history: list[Any], diff_ids: list[str], parent_history: list[Any], parent: ImageRow | None
) -> bool:
    """moby's isValidParent: the source starts with the parent's history and layers."""
    if not history:
        return False
    if parent is None or (not parent_history and not parent.diff_ids):
        return True
    if len(parent_history) >= len(history) or len(parent.diff_ids) > len(diff_ids):
        return False
    return history[: len(parent_history)] == parent_history and diff_ids[: len(parent.diff_ids)] == list(
        parent.diff_ids
    )
