"""What a manager serves to the other nodes, over the bus between them (membership.py): joins
on subjects.SWARM_JOIN and each node's session on its subjects.swarm_node(id).

Served only while this node manages a swarm: a worker's own orchestrator must never take its
node's requests for the managers (a queue group prefers its local members).
"""

from __future__ import annotations

import logging

import anyio
from anyio.abc import TaskGroup
from berth_contracts import subjects
from berth_contracts import swarm as sw
from berth_contracts.errors import BerthError
from berth_kit.rpc import RpcServer
from nats.aio.client import Client as NATS

from berth_orchestrator.joining import Admission
from berth_orchestrator.store import SwarmStore

log = logging.getLogger(__name__)

RECHECK = 5.0  # besides init and leave, which check at once


class NodeEndpoints:
    def __init__(self, nc: NATS, tg: TaskGroup, store: SwarmStore, admission: Admission, name: str, node: str) -> None:
        self._tg = tg
        self._store = store
        self._lock = anyio.Lock()
        self._serving = False
        self._join = RpcServer(
            nc, subjects.SWARM_JOIN, sw.NodeAdmission, queue=subjects.SWARM_NODE_QUEUE, tracer_name=name, node=node
        )
        self._join.handle(sw.NodeJoin, admission.admit)
        self._sessions = RpcServer(
            nc, subjects.swarm_node("*"), sw.NodeSession, queue=subjects.SWARM_NODE_QUEUE, tracer_name=name, node=node
        )
        self._sessions.handle(sw.NodeHeartbeat, admission.heartbeat)
        self._sessions.handle(sw.NodeLeave, admission.leave)

    async def sync(self) -> None:
        async with self._lock:
            try:
                manager = await self._store.in_swarm()
            except BerthError as exc:  # JetStream away: keep serving as before
                log.debug("swarm endpoints: %s", exc.message)
                return
            if manager and not self._serving:
                await self._join.start(self._tg)
                await self._sessions.start(self._tg)
                self._serving = True
            elif not manager and self._serving:
                with anyio.move_on_after(10):
                    await self._join.stop()
                    await self._sessions.stop()
                self._serving = False

    async def run(self) -> None:
        while True:
            await self.sync()
            await anyio.sleep(RECHECK)
