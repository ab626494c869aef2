"""`docker history` and the layer side of `docker system df`, as moby computes them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from anyio import to_thread
from berth_contracts import imaging
from berth_contracts.errors import NotFound
from berth_kit.dirsize import directory_size

from berth_lifecycle.imageconfig import parse_config
from berth_lifecycle.images import Images
from berth_lifecycle.metadata import ImageRow
from berth_lifecycle.reference import familiar

_FRACTION_RE = re.compile(r"\.(\d+)")


def unix_seconds(created: str) -> int:
    """RFC 3339 (nanoseconds allowed) → Unix seconds; 0 for what does not parse."""
    text = _FRACTION_RE.sub(lambda m: "." + m.group(1)[:6], created.strip()).replace("Z", "+00:00")
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return 0
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp())


class ImageUsage:
    def __init__(self, images: Images) -> None:
        self.images = images
        self.meta = images.meta

    def _layer_size(self, chain: str) -> int:
        row = self.meta.get_snapshot(chain)
        return row.size if row is not None else 0

    async def history(self, cmd: imaging.ImageHistoryGet) -> imaging.HistoryItems:
        row = await self.images.resolve(cmd.ref)
        return imaging.HistoryItems(items=await to_thread.run_sync(self._history, row))

    def _history(self, row: ImageRow) -> list[imaging.HistoryItem]:
        """moby's ImageHistory: entries newest first; ids (and tags) walk the parent chain
        from the top, every other entry is `<missing>`."""
        doc = parse_config(row.config)
        raw = doc.get("history")
        entries: list[Any] = raw if isinstance(raw, list) else []
        chains = row.chain_ids
        items: list[dict[str, Any]] = []
        layer = 0
        for h in entries:
            if not isinstance(h, dict):
                continue
            size = 0
            if not h.get("empty_layer"):
                if layer >= len(chains):
                    raise NotFound("too many non-empty layers in History section")
                size = self._layer_size(chains[layer])
                layer += 1
            items.insert(0, {"Id": "<missing>", "Created": unix_seconds(str(h.get("created") or "")),
                             "CreatedBy": str(h.get("created_by") or ""), "Tags": None, "Size": size,
                             "Comment": str(h.get("comment") or "")})  # fmt: skip
        image: ImageRow | None = row
        for item in items:
            if image is None:
                break
            item["Id"] = image.id
            tags = [familiar(n) for n in self.meta.names_of(image.id) if "@" not in n]
            item["Tags"] = tags or None
            parent = str(parse_config(image.config).get("parent") or "")
            image = self.meta.get_image(parent) if parent else None
        return [imaging.HistoryItem(**i) for i in items]

    async def usage(self, _: imaging.LayerUsageGet) -> imaging.LayerUsage:
        return await to_thread.run_sync(self._usage)

    def _usage(self) -> imaging.LayerUsage:
        """moby's Images(withExtraAttrs) SharedSize (layers other images use too) and
        LayerDiskUsage (every layer an image uses, once); writable layers as directory.Size."""
        rows = self.meta.images()
        refs: dict[str, int] = {}
        for row in rows:
            for chain in row.chain_ids:
                refs[chain] = refs.get(chain, 0) + 1
        sizes = {chain: self._layer_size(chain) for chain in refs}
        images = [
            imaging.ImageLayerUsage(
                id=row.id,
                size=row.size,
                shared_size=sum(sizes[c] for c in row.chain_ids if refs[c] > 1),
            )
            for row in rows
        ]
        writable: dict[str, int] = {}
        snapshots = self.images.snapshots
        for snap in self.meta.snapshots("active"):
            writable[snap.key] = directory_size(snapshots.fs(snap.n))
        return imaging.LayerUsage(layers_size=sum(sizes.values()), images=images, writable=writable)
