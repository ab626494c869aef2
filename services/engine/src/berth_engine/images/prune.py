"""POST /images/prune (moby's ImagesPrune): delete the images no container uses; only dangling
ones (no name) unless dangling=false, as `docker image prune -a` asks."""

from __future__ import annotations

import logging

from berth_common.gotime import parse_ns
from berth_contracts.docker import ImageDeleteItem
from berth_contracts.engine import ImagePrune, ImagesPruned
from berth_contracts.errors import BerthError, InvalidParameter
from berth_contracts.lifecycle import ImageDelete, ImageDeleted, ImageListAll, ImageRecords

from berth_engine.containers.listing import label_matches
from berth_engine.core import EngineCore
from berth_engine.prunefilters import check_filter_keys, prune_before_ns

log = logging.getLogger(__name__)
IMAGE_PRUNE_FILTERS = ("dangling", "until", "label", "label!")


def _dangling_only(values: list[str]) -> bool:
    if not values:
        return True
    value = values[0].lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InvalidParameter(f"invalid filter 'dangling={values[0]}'")


class ImagePruneService:
    def __init__(self, core: EngineCore) -> None:
        self.core = core

    async def prune(self, cmd: ImagePrune) -> ImagesPruned:
        check_filter_keys(cmd.filters, IMAGE_PRUNE_FILTERS)
        dangling_only = _dangling_only(cmd.filters.get("dangling", []))
        before_ns = prune_before_ns(cmd.filters)
        images = (await self.core.lifecycle(self.core.node, ImageListAll(), ImageRecords)).images
        used = {rec.image_id for rec in self.core.store.all()}
        items: list[ImageDeleteItem] = []
        reclaimed = 0
        parents = {img.parent for img in images if img.parent}
        for img in images:
            labels = img.config.labels or {}
            if img.id in used or (dangling_only and img.repo_tags):
                continue
            if not img.repo_tags and not img.repo_digests and img.id in parents:
                continue  # moby: an untagged image with children (a build step) goes with its child

            if (wanted := cmd.filters.get("label")) and not label_matches(labels, wanted):
                continue
            if any(label_matches(labels, [item]) for item in cmd.filters.get("label!", [])):
                continue
            if before_ns is not None and parse_ns(img.created) >= before_ns:
                continue
            try:
                # By id with force: every name goes, then the image (no container uses it).
                deleted = await self.core.lifecycle(
                    self.core.node, ImageDelete(ref=img.id, force=True), ImageDeleted, attempts=1
                )
            except BerthError as exc:
                log.warning("image prune: could not delete %s: %s", img.id[:19], exc.message)
                continue
            items += [ImageDeleteItem(untagged=u) for u in deleted.untagged]
            items += [ImageDeleteItem(deleted=d) for d in deleted.deleted]
            if deleted.deleted:
                reclaimed += img.size
        return ImagesPruned(items=items, space_reclaimed=reclaimed)
