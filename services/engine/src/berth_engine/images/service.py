"""Images as dockerd shows them, over lifecycle's image store, plus the engine's own rule:
an image in use by a container is not removed without force (and never while running)."""

from __future__ import annotations

import msgspec
from berth_common.gotime import parse_ns
from berth_contracts.base import Done
from berth_contracts.distribution import DistributionInspect, ImagePush, ImageSave, RegistryLogin
from berth_contracts.docker import (
    ImageDeleteItem,
    ImageInspect,
    ImageMetadata,
    ImageSummary,
    RootFS,
)
from berth_contracts.engine import (
    ImageDetail,
    ImageGet,
    ImageList,
    ImageListing,
    ImagePrune,
    ImagePull,
    ImageRemove,
    ImageRemoved,
    ImagesPruned,
    ImageTag,
    ImageUpload,
    UploadTarget,
)
from berth_contracts.errors import Conflict, InvalidParameter
from berth_contracts.lifecycle import (
    ImageDelete,
    ImageDeleted,
    ImageFound,
    ImageListAll,
    ImageRecord,
    ImageRecords,
    ImageResolve,
    ImageTagAdd,
)

from berth_engine.containers.listing import label_matches
from berth_engine.core import EngineCore
from berth_engine.images.refs import reference_matches, validate_repo_tag

IMAGE_FILTERS = ("reference", "dangling", "label", "before", "since", "until")


def short_image_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def image_inspect(img: ImageRecord) -> ImageInspect:
    return ImageInspect(
        id=img.id,
        repo_tags=list(img.repo_tags),
        repo_digests=list(img.repo_digests),
        created=img.created,
        size=img.size,
        config=img.config,
        root_fs=RootFS(type="layers", layers=list(img.diff_ids)),
        parent=img.parent,
        comment=img.comment,
        docker_version=img.docker_version,
        author=img.author,
        architecture=img.architecture,
        variant=img.variant,
        os=img.os,
        metadata=ImageMetadata(last_tag_time=img.last_tag_time),
    )


def image_summary(img: ImageRecord, containers: int) -> ImageSummary:
    return ImageSummary(
        id=img.id,
        parent_id=img.parent,
        repo_tags=list(img.repo_tags) or ["<none>:<none>"],
        repo_digests=list(img.repo_digests) or (["<none>@<none>"] if not img.repo_tags else []),
        created=parse_ns(img.created) // 1_000_000_000,
        size=img.size,
        shared_size=-1,
        labels=dict(img.config.labels or {}),
        containers=containers,
    )


def _is_id_ref(ref: str, image_id: str) -> bool:
    hex_ref = ref.removeprefix("sha256:")
    return (
        bool(hex_ref)
        and image_id.removeprefix("sha256:").startswith(hex_ref.lower())
        and all(c in "0123456789abcdefABCDEF" for c in hex_ref)
    )


class ImageService:
    def __init__(self, core: EngineCore) -> None:
        self.core = core

    async def _records(self) -> list[ImageRecord]:
        return (await self.core.lifecycle(self.core.node, ImageListAll(), ImageRecords)).images

    async def resolve(self, ref: str) -> ImageRecord:
        return (await self.core.lifecycle(self.core.node, ImageResolve(ref=ref), ImageFound)).image

    def _usage(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for rec in self.core.store.all():
            counts[rec.image_id] = counts.get(rec.image_id, 0) + 1
        return counts

    async def list_images(self, cmd: ImageList) -> ImageListing:
        for key in cmd.filters:
            if key not in IMAGE_FILTERS:
                raise InvalidParameter(f"invalid filter '{key}'")
        dangling: bool | None = None
        for value in cmd.filters.get("dangling", []):
            if value.lower() in ("true", "1"):
                dangling = True
            elif value.lower() in ("false", "0"):
                dangling = False
            else:
                raise InvalidParameter(f"invalid filter 'dangling={value}'")
        images = await self._records()
        by_ref = {t: img for img in images for t in img.repo_tags}
        before = self._bound(cmd.filters.get("before"), images, by_ref)
        since = self._bound(cmd.filters.get("since"), images, by_ref)
        usage = self._usage()
        parents = {img.parent for img in images if img.parent}
        items: list[ImageSummary] = []
        for img in sorted(images, key=lambda i: parse_ns(i.created), reverse=True):
            if not cmd.all and not img.repo_tags and not img.repo_digests and img.id in parents:
                continue  # moby: an untagged image with children (a build step) shows with -a only
            if dangling is not None and (not img.repo_tags) != dangling:
                continue
            if labels := cmd.filters.get("label"):
                if not label_matches(img.config.labels or {}, labels):
                    continue
            if patterns := cmd.filters.get("reference"):
                # moby shows only the names that matched, so one row per matching tag; an image
                # pulled by digest alone matches by its digest (a row with tag <none>).
                tags = [t for t in img.repo_tags if any(reference_matches(p, t) for p in patterns)]
                digests = [d for d in img.repo_digests
                           if any(reference_matches(p, d) for p in patterns)]  # fmt: skip
                if not tags and not digests:
                    continue
                img = msgspec.structs.replace(img, repo_tags=tags, repo_digests=digests)
            created = parse_ns(img.created)
            if before is not None and created >= before:
                continue
            if since is not None and created <= since:
                continue
            items.append(image_summary(img, usage.get(img.id, 0)))
        return ImageListing(items=items)

    @staticmethod
    def _bound(
        refs: list[str] | None, images: list[ImageRecord], by_ref: dict[str, ImageRecord]
    ) -> int | None:
        if not refs:
            return None
        ref = refs[0]
        img = by_ref.get(ref) or by_ref.get(f"{ref}:latest")
        if img is None:
            img = next((i for i in images if _is_id_ref(ref, i.id)), None)
        if img is None:
            raise InvalidParameter(f"No such image: {ref}")
        return parse_ns(img.created)

    async def get(self, cmd: ImageGet) -> ImageDetail:
        return ImageDetail(image=image_inspect(await self.resolve(cmd.ref)))

    async def tag(self, cmd: ImageTag) -> Done:
        repo, tag = validate_repo_tag(cmd.repo, cmd.tag)
        await self.core.lifecycle(
            self.core.node, ImageTagAdd(ref=cmd.ref, repo=repo, tag=tag), Done
        )
        return Done()

    async def remove(self, cmd: ImageRemove) -> ImageRemoved:
        img = await self.resolve(cmd.ref)
        self._check_in_use(cmd, img)
        deleted = await self.core.lifecycle(
            self.core.node,
            ImageDelete(ref=cmd.ref, force=cmd.force, noprune=cmd.noprune),
            ImageDeleted,
        )
        items = [ImageDeleteItem(untagged=u) for u in deleted.untagged]
        items += [ImageDeleteItem(deleted=d) for d in deleted.deleted]
        return ImageRemoved(items=items)

    def _check_in_use(self, cmd: ImageRemove, img: ImageRecord) -> None:
        """moby's image_delete.go conflict rules, for the cases where the image itself would go."""
        users = [r for r in self.core.store.all() if r.image_id == img.id]
        running = [r for r in users if r.running]
        short = short_image_id(img.id)
        by_id = _is_id_ref(cmd.ref, img.id)
        if not by_id and len(img.repo_tags) > 1:
            return  # only this name is untagged; the image stays
        if not by_id and users and not cmd.force:
            raise Conflict(
                f'conflict: unable to remove repository reference "{cmd.ref}" (must force) - '
                f"container {users[0].short_id} is using its referenced image {short}"
            )
        if running:
            raise Conflict(
                f"conflict: unable to delete {short} (cannot be forced) - "
                f"image is being used by running container {running[0].short_id}"
            )
        if users and not cmd.force:
            raise Conflict(
                f"conflict: unable to delete {short} (must be forced) - "
                f"image is being used by stopped container {users[0].short_id}"
            )
        repos = {t.rsplit(":", 1)[0] for t in img.repo_tags}
        if by_id and len(repos) > 1 and not cmd.force:
            raise Conflict(
                f"conflict: unable to delete {short} (must be forced) - "
                "image is referenced in multiple repositories"
            )

    async def upload(self, cmd: ImageUpload) -> UploadTarget:
        return await self.core.lifecycle(self.core.node, cmd, UploadTarget, attempts=1)

    async def pull(self, cmd: ImagePull) -> UploadTarget:
        # Resolving at the registry may wait for an upstream's connect timeout: allow for it.
        # Retried while lifecycle is not there yet (just started): resolving is idempotent.
        return await self.core.lifecycle(self.core.node, cmd, UploadTarget, within=90.0, attempts=4)

    async def forward(self, cmd: ImageSave | ImagePush | RegistryLogin | DistributionInspect) -> UploadTarget:
        """save, push, login, distribution: lifecycle checks what it can and names its URL."""
        return await self.core.lifecycle(self.core.node, cmd, UploadTarget, within=90.0, attempts=1)

    async def prune(self, cmd: ImagePrune) -> ImagesPruned:
        from berth_engine.images.prune import ImagePruneService

        return await ImagePruneService(self.core).prune(cmd)
