"""POST /containers/prune: remove the stopped containers the filters select."""

from __future__ import annotations

import logging

from berth_common.gotime import parse_ns
from berth_contracts.engine import ContainerPrune, ContainersPruned
from berth_contracts.errors import BerthError

from berth_engine.containers.listing import label_matches
from berth_engine.containers.records import Record
from berth_engine.core import EngineCore
from berth_engine.prunefilters import check_filter_keys, prune_before_ns

log = logging.getLogger(__name__)

PRUNE_FILTERS = ("until", "label", "label!")
def selected(rec: Record, filters: dict[str, list[str]], before_ns: int | None) -> bool:
    labels = rec.config.labels or {}
    if (wanted := filters.get("label")) and not label_matches(labels, wanted):
        return False
    if any(label_matches(labels, [item]) for item in filters.get("label!", [])):
        return False
    return before_ns is None or parse_ns(rec.created) < before_ns


class PruneService:
    def __init__(self, core: EngineCore) -> None:
        self.core = core

    async def prune(self, cmd: ContainerPrune) -> ContainersPruned:
        check_filter_keys(cmd.filters, PRUNE_FILTERS)
        before_ns = prune_before_ns(cmd.filters)
        deleted: list[str] = []
        reclaimed = 0
        for rec in self.core.store.all():
            if rec.running or rec.id in self.core.removing or rec.id in self.core.starting:
                continue
            if not selected(rec, cmd.filters, before_ns):
                continue
            self.core.removing.add(rec.id)
            try:
                async with self.core.lock(rec.id):
                    if rec.running or self.core.store.get(rec.id) is not rec:
                        continue
                    reclaimed += await self.core.destroy(rec, measure=True)
                    deleted.append(rec.id)
            except BerthError as exc:
                log.warning("prune: could not remove %s: %s", rec.short_id, exc.message)
            finally:
                self.core.removing.discard(rec.id)
        return ContainersPruned(containers_deleted=deleted, space_reclaimed=reclaimed)
