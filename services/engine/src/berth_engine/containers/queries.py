"""Read-only container requests, served from the in-memory records: inspect, list, resolve;
and ContainerLogs, which the agent on the container's node streams."""

from __future__ import annotations

import logging

from berth_contracts.agent import TaskLogs
from berth_contracts.base import Done
from berth_contracts.codec import encode
from berth_contracts.engine import (
    ContainerDetail,
    ContainerGet,
    ContainerList,
    ContainerListing,
    ContainerLogs,
    ContainerRef,
    ContainerResolve,
    LogsStarted,
)
from berth_contracts.errors import InvalidParameter, NotFound, NotImplementedByBerth
from berth_contracts.lifecycle import ImageFound, ImageResolve
from berth_contracts.streams import LogBatch

from berth_engine.containers import listing, views
from berth_engine.containers.logdrivers import READ_NOT_SUPPORTED, driver_of
from berth_engine.core import EngineCore

log = logging.getLogger(__name__)


class QueryService:
    def __init__(self, core: EngineCore) -> None:
        self.core = core

    async def get(self, cmd: ContainerGet) -> ContainerDetail:
        rec = self.core.store.lookup(cmd.ref)
        return ContainerDetail(container=views.inspect(rec, self.core.running_execs(rec.id)))

    async def list_containers(self, cmd: ContainerList) -> ContainerListing:
        ancestors = await self._ancestor_ids(cmd.filters.get("ancestor", []))
        records = listing.select(
            self.core.store.all(),
            all_=cmd.all,
            limit=cmd.limit,
            filters=cmd.filters,
            image_ids=lambda ref: ancestors.get(ref, set()),
            lookup=self.core.store.lookup,
        )
        return ContainerListing(items=[views.summary(r) for r in records])

    async def _ancestor_ids(self, refs: list[str]) -> dict[str, set[str]]:
        """Image ids the `ancestor` filter values name: one lifecycle lookup per value, none
        per container. An unknown image matches nothing (moby ignores it the same way)."""
        found: dict[str, set[str]] = {}
        for ref in refs:
            try:
                img = await self.core.lifecycle(self.core.node, ImageResolve(ref=ref), ImageFound)
                found[ref] = {img.image.id}
            except NotFound:
                found[ref] = set()
        return found

    async def resolve(self, cmd: ContainerResolve) -> ContainerRef:
        return views.ref(self.core.store.lookup(cmd.ref))

    async def logs(self, cmd: ContainerLogs) -> LogsStarted:
        if not (cmd.stdout or cmd.stderr):
            raise InvalidParameter("Bad parameters: you must choose at least one stream")
        rec = self.core.store.lookup(cmd.ref)
        if driver_of(rec.host_config.log_config) == "none":
            raise NotImplementedByBerth(READ_NOT_SUPPORTED)  # dockerd's 501, in its words
        try:
            await self.core.agent(
                rec.node,
                TaskLogs(
                    container_id=rec.id,
                    stream_subject=cmd.stream_subject,
                    stdout=cmd.stdout,
                    stderr=cmd.stderr,
                    follow=cmd.follow,
                    tail=cmd.tail,
                    since=cmd.since,
                    until=cmd.until,
                ),
                Done,
            )
        except NotFound:
            # Never started: no log yet. Docker answers with an empty log, so do we.
            await self.core.nc.publish(cmd.stream_subject, encode(LogBatch(lines=[], end=True)))
        return LogsStarted(tty=rec.config.tty)
