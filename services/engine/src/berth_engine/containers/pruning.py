"""POST /containers/prune: remove the stopped containers the filters select."""

from __future__ import annotations

import logging
import re
import time

from berth_common.gotime import parse_ns
from berth_contracts.engine import ContainerPrune, ContainersPruned
from berth_contracts.errors import BerthError, InvalidParameter

from berth_engine.containers.listing import label_matches
from berth_engine.containers.records import Record
from berth_engine.core import EngineCore

log = logging.getLogger(__name__)

PRUNE_FILTERS = ("until", "label", "label!")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}  # fmt: skip


def _go_duration_ns(text: str) -> int | None:
    """Go's time.ParseDuration, without sign; None if text is not a duration."""
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if not m:
            return None
        total += float(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    return int(total) if text else None


def until_ns(value: str, now_ns: int | None = None) -> int:
    """moby's timetypes.GetTimestamp: unix seconds, a Go duration before now, or RFC3339."""
    now = time.time_ns() if now_ns is None else now_ns
    try:
        return int(float(value) * 1_000_000_000)
    except ValueError:
        pass
    duration = _go_duration_ns(value)
    if duration is not None:
        return now - duration
    text = value
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        text += "T00:00:00Z"
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?", text):
        text += "Z"
    ns = parse_ns(text)
    if not ns:
        raise InvalidParameter(f'failed to parse value as time or duration: "{value}"')
    return ns


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
        for key in cmd.filters:
            if key not in PRUNE_FILTERS:
                raise InvalidParameter(f"invalid filter '{key}'")
        untils = cmd.filters.get("until", [])
        if len(untils) > 1:
            raise InvalidParameter("more than one until filter specified")
        before_ns = until_ns(untils[0]) if untils else None
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
