"""Swarm mode's changes to the embedded NATS: the orchestrator writes <bus-dir>/swarm.json
(berth_kit.swarmbus); this loop applies it.

- The node's own nats-server: a worker's link to the managers, rendered into nats.conf and
  reloaded (SIGHUP; leafnode remotes reload).
- A manager's swarm server (a second nats-server for a swarm across hosts): started when the file
  names one, reloaded when only its users or routes changed, restarted when a listener, its store
  or its cluster changed (nats-server reloads none of those), stopped when the file no longer
  names one. The orchestrator reconnects on its own, as after any NATS restart.
- Its store's key (berth_kit.storekey) goes into its environment. A key wrapped by the swarm's
  unlock key (autolock) keeps the server from starting until `docker swarm unlock` leaves the
  unwrapped key in memory; `berth up` forgets that one when it starts.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio
from anyio.abc import TaskGroup
from berth_common.privatefile import write_private
from berth_kit.busauth import jetstream_settings, write_bus_dir
from berth_kit.storekey import STORE_KEY_ENV, forget_unlocked, usable_key
from berth_kit.swarmbus import (
    SwarmBus,
    SwarmServer,
    file_signature,
    read_swarm_bus,
    render_swarm_server,
)
from berth_kit.testing import nats_server_binary

from berth_cli.child import Child
from berth_cli.state import ChildState

log = logging.getLogger("berth.supervisor")

POLL = 0.25
# Before a restart: the reply to the request that changed the file (`swarm join` of a second
# manager) leaves the orchestrator within milliseconds; let it cross the bus before it goes down.
SETTLE = 0.5
SWARM_SERVER_CONFIG = "swarm-server.conf"
SWARM_SERVER_STOP_GRACE = 5.0


def write_swarm_server_config(path: Path, server: SwarmServer) -> None:
    Path(server.store).mkdir(mode=0o700, parents=True, exist_ok=True)
    key_env = STORE_KEY_ENV if server.store_key_id else ""
    write_private(path, render_swarm_server(server, jetstream_settings(Path(server.store), key_env)))


class SwarmServerRunner:
    """The swarm server's Child, when the file names one. on_state: its ChildState (None when
    there is none), for the supervisor's state file (`berth down` reaps it)."""

    def __init__(self, bus_dir: Path, tg: TaskGroup, on_state: Callable[[ChildState | None], None]) -> None:
        self._bus_dir = bus_dir
        self._config = bus_dir / SWARM_SERVER_CONFIG
        self._tg = tg
        self._on_state = on_state
        self._child: Child | None = None
        self._server: SwarmServer | None = None
        self.locked: SwarmServer | None = None  # the server waiting for `docker swarm unlock`

    async def _stop(self, why: str) -> None:
        if self._child is not None:
            log.info("swarm server: stopping (%s)", why)
            await self._child.stop()
            self._child = None
            self._on_state(None)

    async def apply(self, server: SwarmServer | None) -> None:
        old, self._server, self.locked = self._server, server, None
        if server is None:
            await self._stop("no longer a manager of a swarm across hosts")
            return
        env = dict(os.environ)
        if server.store_key_id:
            key = await anyio.to_thread.run_sync(usable_key, self._bus_dir, server.store_key_id)
            if key is None:
                await self._stop("its store's key is locked")
                self._server, self.locked = None, server
                log.warning('swarm server: locked; `docker swarm unlock` starts it (autolock)')
                return
            env[STORE_KEY_ENV] = key
        if old is not None and old.store_key_id != server.store_key_id:
            await self._stop("its store's key changed")  # a Child keeps the environment it was made with
        await anyio.to_thread.run_sync(write_swarm_server_config, self._config, server)
        if self._child is None:
            state = ChildState(name="nats-swarm-server")
            self._child = Child(
                state, [nats_server_binary(), "-c", str(self._config)], env, lambda: self._on_state(state),
                stop_grace=SWARM_SERVER_STOP_GRACE,
            )  # fmt: skip
            log.info("swarm server: starting (swarm port %s)", server.listen)
            self._tg.start_soon(self._child.run)
        elif old is not None and server.restart_needed(old):
            log.info("swarm server: restarting (%s)", "cluster of managers" if server.cluster else "one manager")
            await anyio.sleep(SETTLE)
            self._child.restart()
        else:
            log.info("swarm server: reloading its configuration")
            self._child.signal(signal.SIGHUP)


async def watch_swarm_bus(
    bus_dir: Path,
    swarm_file: Path,
    settings: Callable[[], tuple[str, ...]],
    nats: Child,
    on_server_state: Callable[[ChildState | None], None],
) -> None:
    """Runs for the supervisor's life; nats.conf was rendered from the file at start."""
    seen = file_signature(swarm_file)
    current: SwarmBus = await anyio.to_thread.run_sync(read_swarm_bus, swarm_file)
    await anyio.to_thread.run_sync(forget_unlocked, bus_dir)
    async with anyio.create_task_group() as tg:
        runner = SwarmServerRunner(bus_dir, tg, on_server_state)
        await runner.apply(current.server)  # a manager restarted: its swarm server too
        while True:
            await anyio.sleep(POLL)
            locked = runner.locked
            if locked is not None and await anyio.to_thread.run_sync(usable_key, bus_dir, locked.store_key_id) is not None:
                log.info("swarm server: unlocked")
                await runner.apply(locked)
            now = file_signature(swarm_file)
            if now == seen:
                continue
            seen = now
            new: SwarmBus = await anyio.to_thread.run_sync(read_swarm_bus, swarm_file)
            if new.remote != current.remote:
                await anyio.to_thread.run_sync(partial(write_bus_dir, bus_dir, settings(), swarm=new))
                log.info("swarm link changed: nats-server reloads its configuration")
                nats.signal(signal.SIGHUP)
            if new.server != current.server:
                await runner.apply(new.server)
            current = new
