"""Images: resolve, list, tag, delete and store, with Docker's reference and deletion rules."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
from anyio import to_thread
from berth_common.gotime import ZERO_TIME, rfc3339nano
from berth_contracts.errors import Conflict, InvalidParameter, NotFound
from berth_contracts.lifecycle import ImageRecord

from berth_lifecycle.content import ContentStore, IngestWriter
from berth_lifecycle.events import Publish, image_event
from berth_lifecycle.imageconfig import diff_ids_of, image_record, parse_config
from berth_lifecycle.layers import chain_ids
from berth_lifecycle.metadata import ImageRow, Metadata
from berth_lifecycle.reference import (
    DIGEST_RE,
    HEX64_RE,
    Reference,
    familiar,
    parse_normalized_named,
    parse_repo_tag,
)
from berth_lifecycle.snapshots import Snapshotter

_HEX_PREFIX_RE = re.compile(r"^[a-f0-9]{1,64}$")


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


@dataclass
class StagedBlob:
    """A blob written to ingest/ and verified, not yet under its final name."""

    writer: IngestWriter
    digest: str

    @property
    def path(self) -> Path:
        return self.writer.path


@dataclass(frozen=True)
class Stored:
    image_id: str
    replaced: dict[str, str]  # full name → id of the image it pointed at before


class Images:
    def __init__(self, meta: Metadata, content: ContentStore, snapshots: Snapshotter, publish: Publish) -> None:
        self.meta = meta
        self.content = content
        self.snapshots = snapshots
        self.publish = publish
        # Serializes name changes, deletes and snapshot creation, so "last name gone → delete"
        # and "no container uses it" decisions hold while they are acted on.
        self.lock = anyio.Lock()

    # --- lookups ---------------------------------------------------------------------------------

    async def record(self, row: ImageRow) -> ImageRecord:
        names = await to_thread.run_sync(self.meta.names_of, row.id)
        return image_record(row, names, familiar)

    async def list_all(self) -> list[ImageRecord]:
        rows = await to_thread.run_sync(self.meta.images)
        names = await to_thread.run_sync(self.meta.all_names)
        return [image_record(r, names.get(r.id, []), familiar) for r in rows]

    async def resolve(self, ref: str) -> ImageRow:
        return await to_thread.run_sync(self._resolve, ref)

    def _resolve(self, ref: str) -> ImageRow:
        """Docker's GetImage: full id, sha256:id, name[:tag], name@digest, then unique id prefix."""
        if HEX64_RE.match(ref) or DIGEST_RE.match(ref):
            image_id = ref if ref.startswith("sha256:") else f"sha256:{ref}"
            row = self.meta.get_image(image_id)
            if row is None:
                raise NotFound(f"No such image: {image_id}")
            return row
        named = parse_normalized_named(ref)
        if named.tag and named.digest:  # moby's reference store: the digest names the image
            named = replace(named, tag="")
        image_id = self.meta.lookup_name(str(named.with_default_tag()))
        if image_id:
            row = self.meta.get_image(image_id)
            if row is not None:
                return row
        prefix = ref.removeprefix("sha256:")
        if _HEX_PREFIX_RE.match(prefix):
            found = self.meta.image_ids_with_prefix(prefix)
            if len(found) > 1:
                raise InvalidParameter(f"multiple IDs found with provided prefix: {prefix}")
            if found:
                row = self.meta.get_image(found[0])
                if row is not None:
                    return row
        raise NotFound(f"No such image: {named.with_default_tag().familiar()}")

    # --- names -----------------------------------------------------------------------------------

    async def tag(self, ref: str, repo: str, tag: str) -> None:
        target = parse_repo_tag(repo, tag)
        async with self.lock:
            row = await self.resolve(ref)
            await to_thread.run_sync(self.meta.set_name, str(target), row.id, rfc3339nano())
        await self.publish(image_event("tag", row.id, target.familiar()))

    # --- delete ----------------------------------------------------------------------------------

    async def delete(self, ref: str, force: bool = False, noprune: bool = False) -> tuple[list[str], list[str]]:
        """Docker's ImageDelete; returns (untagged familiar names, deleted ids)."""
        async with self.lock:
            row = await self.resolve(ref)
            untagged: list[str] = []
            names = await to_thread.run_sync(self.meta.names_of, row.id)
            by_id = row.id.startswith(ref) or row.id.removeprefix("sha256:").startswith(ref)
            if not by_id:
                named = parse_normalized_named(ref).with_default_tag()
                await self._untag(row.id, [str(named)], untagged)
                names = [n for n in names if n != str(named)]
                if not named.digest and not any(
                    "@" not in n and parse_normalized_named(n).name == named.name for n in names
                ):
                    # No tag of this repository is left: its digest references go too.
                    same_repo = [n for n in names if "@" in n and parse_normalized_named(n).name == named.name]
                    await self._untag(row.id, same_repo, untagged)
                    names = [n for n in names if n not in same_repo]
                if names:
                    return untagged, []
                if not force and await self._in_use(row.id):
                    # A container still uses it: it stays, dangling. Forced, it goes like in
                    # Docker (which the engine allows only for stopped containers); the layers
                    # the container needs stay until its snapshot is removed.
                    return untagged, []
            else:
                if not _single_reference(names) and not force:
                    raise Conflict(
                        f"conflict: unable to delete {short_id(row.id)} (must be forced) - "
                        "image is referenced in multiple repositories"
                    )
                users = await self._in_use(row.id)
                if users and not force:
                    raise Conflict(
                        f"conflict: unable to delete {short_id(row.id)} (must be forced) - "
                        f"image is being used by stopped container {users[0][:12]}"
                    )
                await self._untag(row.id, names, untagged)
            deleted = await self._delete_image(row)
            if not noprune:
                deleted += await self._prune_parents(row)
        return untagged, deleted

    async def _prune_parents(self, row: ImageRow) -> list[str]:
        """moby's delete with prune: the parent goes too while it is dangling (no name, no
        other child) and no container uses it; a build's steps go with the image built."""
        deleted: list[str] = []
        parent = str(parse_config(row.config).get("parent") or "")
        while parent:
            found = await to_thread.run_sync(self.meta.get_image, parent)
            if found is None:
                break
            if await to_thread.run_sync(self.meta.names_of, found.id):
                break  # a name keeps it
            rows = await to_thread.run_sync(self.meta.images)
            if any(parse_config(r.config).get("parent") == found.id for r in rows):
                break
            if await self._in_use(found.id):
                break
            deleted += await self._delete_image(found)
            parent = str(parse_config(found.config).get("parent") or "")
        return deleted

    async def _untag(self, image_id: str, names: list[str], untagged: list[str]) -> None:
        for name in names:
            await to_thread.run_sync(self.meta.remove_name, name)
            untagged.append(familiar(name))
            await self.publish(image_event("untag", image_id, image_id))

    async def _in_use(self, image_id: str) -> list[str]:
        snaps = await to_thread.run_sync(self.meta.snapshots, "active")
        return [s.key for s in snaps if s.image_id == image_id]

    async def _delete_image(self, row: ImageRow) -> list[str]:
        await to_thread.run_sync(self.meta.delete_image, row.id)
        await self.publish(image_event("delete", row.id, row.id))
        removed_layers = await to_thread.run_sync(self.snapshots.collect_layers)
        await to_thread.run_sync(self.collect_blobs, [row.id, *row.layer_blobs])
        return [row.id, *removed_layers]

    def collect_blobs(self, candidates: list[str]) -> None:
        """Delete the candidate blobs no image references (blocking)."""
        used: set[str] = set()
        for image in self.meta.images():
            used.add(image.id)
            used.update(image.layer_blobs)
        for digest in candidates:
            if digest not in used:
                self.content.delete(digest)

    # --- store -----------------------------------------------------------------------------------

    async def store(
        self,
        config: bytes,
        layers: list[StagedBlob],
        names: list[Reference],
        config_blob: StagedBlob | None = None,
    ) -> Stored:
        """Unpack the layers (verifying diffIDs), commit the blobs, record the image and names.

        Nothing is recorded unless every layer unpacked and verified; a failure leaves only
        layers other images may reuse, and those are collected once nobody pins them.
        """
        doc = parse_config(config)
        diff_ids = diff_ids_of(doc)
        if len(diff_ids) != len(layers):
            raise InvalidParameter(
                f"invalid manifest, layers length mismatch: expected {len(diff_ids)}, got {len(layers)}"
            )
        chains = chain_ids(diff_ids)
        self.snapshots.pin(chains)
        try:
            size = 0
            for i, layer in enumerate(layers):
                size += await self.snapshots.ensure_layer(
                    chains[i], chains[i - 1] if i else "", layer.path, diff_ids[i], i
                )
            # Under the lock: a concurrent delete's blob collection must see this image's
            # blobs either not yet committed or already referenced by its row.
            async with self.lock:
                blob_digests = await to_thread.run_sync(self._commit_blobs, config, layers, config_blob)
                image_id = blob_digests[0]
                row = ImageRow(
                    id=image_id,
                    config=config,
                    diff_ids=diff_ids,
                    chain_ids=chains,
                    layer_blobs=blob_digests[1:],
                    size=size,
                    added=rfc3339nano(),
                    last_tag_time=ZERO_TIME,
                )
                replaced = await to_thread.run_sync(
                    self.meta.put_image, row, [str(n) for n in names], rfc3339nano()
                )
        finally:
            self.snapshots.unpin(chains)
        return Stored(image_id=image_id, replaced=replaced)

    def _commit_blobs(self, config: bytes, layers: list[StagedBlob], config_blob: StagedBlob | None) -> list[str]:
        config_digest = config_blob.writer.commit() if config_blob else self.content.write_bytes(config)
        return [config_digest, *(layer.writer.commit() for layer in layers)]

    async def collect_garbage(self) -> list[str]:
        """Layers no image, snapshot or unpack uses (after a failed load, at start-up)."""
        return await to_thread.run_sync(self.snapshots.collect_layers)


def _single_reference(names: list[str]) -> bool:
    """At most one tag, and every reference in one repository (Docker's isSingleReference)."""
    tags = [n for n in names if "@" not in n]
    repos = {parse_normalized_named(n).name for n in names}
    return len(tags) <= 1 and len(repos) <= 1
