"""`docker swarm unlock` and `docker swarm unlock-key` (autolock: see autolock.py)."""

from __future__ import annotations

import anyio
from berth_contracts import swarm as sw
from berth_contracts.base import Done
from berth_contracts.errors import Conflict, Unavailable

from berth_orchestrator.api import NOT_MANAGER, SwarmApi
from berth_orchestrator.autolock import NOT_LOCKED

UNLOCKED_WITHIN = 30.0  # the supervisor starts the server, the link connects to it
# moby's errSwarmNotManager
WORKER_NODE = (
    "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. "
    "Please run this command on a manager node or promote the current node to a manager."
)


class Unlocking:
    def __init__(self, api: SwarmApi) -> None:
        self.api = api

    async def unlock(self, cmd: sw.SwarmUnlock) -> Done:
        """As moby's UnlockSwarm: only a locked manager takes a key; the answer comes once its
        state reads again."""
        membership, link = self.api.membership, self.api.link
        server = membership.read().server
        if link is None or server is None or not link.locked:
            if membership.worker() is not None:
                raise Unavailable(WORKER_NODE)
            if not await self.api.store.in_swarm():
                raise Unavailable(NOT_MANAGER)
            raise Conflict(NOT_LOCKED)
        await anyio.to_thread.run_sync(membership.store_key.unlock, server.store_key_id, cmd.unlock_key)
        with anyio.move_on_after(UNLOCKED_WITHIN):
            while True:
                await link.sync()
                try:
                    await self.api.store.load()
                    return Done()
                except Unavailable:
                    await anyio.sleep(0.25)
        raise Unavailable(
            f"the swarm was unlocked, but its state did not read on this manager within {UNLOCKED_WITHIN:.0f}s; "
            "it keeps trying"
        )

    async def unlock_key(self, cmd: sw.SwarmUnlockKey) -> sw.UnlockKey:
        snap = await self.api.managed()
        assert snap.cluster is not None
        return sw.UnlockKey(unlock_key=snap.cluster.unlock_key)
