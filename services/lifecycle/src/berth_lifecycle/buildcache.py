"""The classic build cache (moby's daemon/images/cache.go + image/cache/compare.go): a build
step reuses the newest child of the current image whose container_config is the step's probe.

The parent and the container_config live in each image's config (lifecycle's meta.db), so the
cache survives restarts like the images themselves."""

from __future__ import annotations

from typing import Any

import msgspec
from anyio import to_thread
from berth_contracts.docker import ContainerConfig
from berth_contracts.imaging import ImageCacheHit, ImageCacheLookup

from berth_lifecycle.imageconfig import parse_config
from berth_lifecycle.images import Images


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
        return ImageCacheHit(id=await to_thread.run_sync(self._find, cmd))
