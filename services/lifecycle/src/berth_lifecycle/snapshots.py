"""Overlay snapshots: one committed snapshot per layer (keyed by ChainID), one active per container.

Each snapshot lives in snapshots/<n>/ (n from the metadata row): `fs` is the layer content (an
overlay lowerdir once committed, the upperdir while active) and `work` the overlay workdir of an
active one. Layers being unpacked for an image that is not stored yet are pinned (containerd's
leases) so a concurrent image delete cannot collect them.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from anyio import to_thread
from berth_common.gotime import rfc3339nano
from berth_contracts.errors import Conflict, InvalidParameter, NotFound
from berth_contracts.identifiers import validate_identifier
from berth_contracts.lifecycle import Mount
from berth_kit.dirsize import directory_size
from berth_kit.diskmodes import ensure_dir
from opentelemetry import trace

from berth_lifecycle.layers import apply_layer, chain_ids
from berth_lifecycle.metadata import ImageRow, Metadata, SnapshotRow

_tracer = trace.get_tracer("berth-lifecycle")


class Snapshotter:
    def __init__(self, root: Path, meta: Metadata) -> None:
        self.root = root
        self.meta = meta
        ensure_dir(self.root)  # 0700 (moby: 0710 overlay2), set again on every start
        self._locks: dict[str, anyio.Lock] = {}
        self._pins: Counter[str] = Counter()

    def dir(self, n: int) -> Path:
        return self.root / str(n)

    def fs(self, n: int) -> Path:
        return self.dir(n) / "fs"

    # --- start-up --------------------------------------------------------------------------------

    def recover(self) -> None:
        """Drop half-made snapshots and directories no row owns (a crash mid-unpack or mid-remove)."""
        for row in self.meta.snapshots("extracting"):
            self.meta.delete_snapshot(row.n)
        owned = {str(row.n) for row in self.meta.snapshots()}
        for entry in self.root.iterdir():
            if entry.name not in owned:
                shutil.rmtree(entry, ignore_errors=True)

    # --- layers ----------------------------------------------------------------------------------

    def pin(self, chains: list[str]) -> None:
        self._pins.update(chains)

    def unpin(self, chains: list[str]) -> None:
        self._pins.subtract(chains)
        self._pins += Counter()  # drop zero counts

    async def ensure_layer(self, chain_id: str, parent: str, blob: Path, diff_id: str, index: int) -> int:
        """Make sure the committed snapshot `chain_id` exists, unpacking `blob` if needed.

        Returns the unpacked size. One unpack per chain id at a time; a second caller waits
        and then finds it committed.
        """

        async def unpack(fs: Path) -> None:
            await to_thread.run_sync(lambda: fs.mkdir(parents=True, mode=0o755))
            with _tracer.start_as_current_span("unpack layer") as span:
                span.set_attribute("berth.layer.chain_id", chain_id)
                span.set_attribute("berth.layer.diff_id", diff_id)
                applied = await apply_layer(blob, fs)
                span.set_attribute("berth.layer.size", applied.size)
            if applied.diff_id != diff_id:
                raise InvalidParameter(
                    f"invalid diffID for layer {index}: expected {diff_id!r}, got {applied.diff_id!r}"
                )

        return await self._committed(chain_id, parent, unpack)

    async def take_layer(self, chain_id: str, parent: str, upper: Path) -> int:
        """Make the committed snapshot `chain_id` out of a writable layer whose container goes
        next (a build step's): `upper` is renamed into place, not unpacked from its tar again,
        and an empty one is left for the container's removal. The caller has made `upper`
        exactly what the layer's tar holds (snapshot_child's take mode)."""

        def rename(fs: Path) -> None:
            fs.parent.mkdir(parents=True, mode=0o755)
            upper.rename(fs)
            upper.mkdir(mode=0o755)

        async def take(fs: Path) -> None:
            await to_thread.run_sync(rename, fs)

        return await self._committed(chain_id, parent, take)

    async def _committed(self, chain_id: str, parent: str, fill: Callable[[Path], Awaitable[None]]) -> int:
        """The committed snapshot `chain_id`, made by `fill(fs)` unless it exists; its size. One
        at a time per chain id: a second caller waits and then finds it committed."""
        lock = self._locks.setdefault(chain_id, anyio.Lock())
        try:
            async with lock:
                existing = await to_thread.run_sync(self.meta.get_snapshot, chain_id)
                if existing is not None and existing.kind == "committed":
                    return existing.size
                row = await to_thread.run_sync(
                    self.meta.add_snapshot, f"extract-{uuid.uuid4().hex}", "extracting", parent, "", rfc3339nano()
                )
                fs = self.fs(row.n)
                try:
                    await fill(fs)
                    # The layer's size as moby's overlay2 ApplyDiff reports it (directory.Size:
                    # symlinks count too), which `docker history`, `images` and `system df` show.
                    size = await to_thread.run_sync(directory_size, fs)
                    if not await to_thread.run_sync(self.meta.commit_snapshot, row.n, chain_id, size):
                        raise RuntimeError(f"layer {chain_id} committed twice")
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await to_thread.run_sync(self._drop, row)
                    raise
                return size
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(chain_id, None)

    def _drop(self, row: SnapshotRow) -> None:
        self.meta.delete_snapshot(row.n)
        shutil.rmtree(self.dir(row.n), ignore_errors=True)

    def has_layers(self, chains: list[str]) -> bool:
        for chain in chains:
            row = self.meta.get_snapshot(chain)
            if row is None or row.kind != "committed":
                return False
        return True

    # --- containers' writable layers -------------------------------------------------------------

    async def prepare(self, key: str, image: ImageRow) -> list[Mount]:
        validate_identifier(key, "snapshot key")
        chains = image.chain_ids or chain_ids(image.diff_ids)
        if not await to_thread.run_sync(self.has_layers, chains):
            raise NotFound(f"layers of image {image.id} are not unpacked")
        try:
            row = await to_thread.run_sync(
                self.meta.add_snapshot, key, "active", chains[-1] if chains else "", image.id, rfc3339nano()
            )
        except sqlite3.IntegrityError:
            existing = await to_thread.run_sync(self.meta.get_snapshot, key)
            if existing is not None and existing.kind == "active" and existing.image_id == image.id:
                # A retried prepare (the caller lost our reply): same answer again.
                return await to_thread.run_sync(self._mounts, existing)
            raise Conflict(f"snapshot {key} already exists") from None
        try:
            await to_thread.run_sync(self._make_active_dirs, row.n)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await to_thread.run_sync(self._drop, row)
            raise
        return await to_thread.run_sync(self._mounts, row)

    def _make_active_dirs(self, n: int) -> None:
        self.fs(n).mkdir(parents=True, mode=0o755)
        (self.dir(n) / "work").mkdir(mode=0o700)

    async def mounts(self, key: str) -> list[Mount]:
        row = await to_thread.run_sync(self.meta.get_snapshot, key)
        if row is None or row.kind != "active":
            raise NotFound(f"snapshot {key} does not exist")
        return await to_thread.run_sync(self._mounts, row)

    async def layer_dirs(self, key: str) -> tuple[Path, list[Path]]:
        """The writable layer `key`'s upper dir and its image's layer dirs, top first."""
        row = await to_thread.run_sync(self.meta.get_snapshot, key)
        if row is None or row.kind != "active":
            raise NotFound(f"snapshot {key} does not exist")
        lowers = await to_thread.run_sync(self._lower_chain, row.parent)
        return self.fs(row.n), [self.fs(lower.n) for lower in lowers]

    def _lower_chain(self, top: str) -> list[SnapshotRow]:
        """Committed snapshots from `top` down to the bottom layer."""
        out: list[SnapshotRow] = []
        key = top
        while key:
            row = self.meta.get_snapshot(key)
            if row is None:
                raise NotFound(f"parent snapshot {key} does not exist")
            out.append(row)
            key = row.parent
        return out

    def _mounts(self, row: SnapshotRow) -> list[Mount]:
        lowers = self._lower_chain(row.parent)
        upper = self.fs(row.n)
        if not lowers:
            # No image layers at all: the writable layer is the whole rootfs.
            return [Mount(type="bind", source=str(upper), target="/", options=["rbind", "rw"])]
        return [
            Mount(
                type="overlay",
                source="overlay",
                target="/",
                options=[
                    "lowerdir=" + ":".join(str(self.fs(lower.n)) for lower in lowers),
                    f"upperdir={upper}",
                    f"workdir={self.dir(row.n) / 'work'}",
                    "index=off",
                ],
            )
        ]

    async def remove(self, key: str, *, measure: bool = False) -> int:
        """Drop the writable layer `key`; its size first when asked (0 otherwise)."""
        row = await to_thread.run_sync(self.meta.get_snapshot, key)
        if row is None or row.kind != "active":
            raise NotFound(f"snapshot {key} does not exist")
        size = await to_thread.run_sync(directory_size, self.fs(row.n)) if measure else 0
        await to_thread.run_sync(self._drop, row)
        return size

    # --- garbage ---------------------------------------------------------------------------------

    def collect_layers(self) -> list[str]:
        """Remove committed layers no image, active snapshot or in-flight unpack uses.

        Returns the chain ids removed, top layers first.
        """
        used: set[str] = set(self._pins)
        for image in self.meta.images():
            used.update(image.chain_ids)
        snaps = self.meta.snapshots()
        by_key = {s.key: s for s in snaps}
        for s in snaps:
            if s.kind in ("active", "extracting"):
                key = s.parent
                while key and key not in used:
                    used.add(key)
                    key = by_key[key].parent if key in by_key else ""
        removed: list[SnapshotRow] = [s for s in snaps if s.kind == "committed" and s.key not in used]
        # Top layers first, the order Docker reports deleted layers in.
        depth: dict[str, int] = {}

        def level(key: str) -> int:
            if key not in depth:
                parent = by_key[key].parent if key in by_key else ""
                depth[key] = 0 if not parent else 1 + level(parent)
            return depth[key]

        removed.sort(key=lambda s: -level(s.key))
        for s in removed:
            self._drop(s)
        return [s.key for s in removed]
