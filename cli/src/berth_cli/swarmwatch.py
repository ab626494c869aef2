"""Swarm mode's changes to the embedded nats-server: the orchestrator writes
<bus-dir>/swarm.json (berth_kit.swarmbus); this loop renders it into nats.conf and has
nats-server reload it, or restarts nats-server when the swarm port changed (a leafnode
listener cannot be reloaded). The services reconnect on their own, as after any NATS restart.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio
from berth_kit.busauth import write_bus_dir
from berth_kit.swarmbus import SwarmBus, read_swarm_bus

from berth_cli.child import Child

log = logging.getLogger("berth.supervisor")

POLL = 0.25
# Before a restart: the reply to the request that changed the file (`swarm init`, `leave`)
# leaves the orchestrator within milliseconds; let it cross the bus before the bus goes down.
SETTLE = 0.5


def _signature(path: Path) -> tuple[int, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


async def watch_swarm_bus(
    bus_dir: Path, swarm_file: Path, settings: Callable[[], tuple[str, ...]], nats: Child
) -> None:
    """Runs for the supervisor's life; nats.conf was rendered from the file at start."""
    seen = _signature(swarm_file)
    current = read_swarm_bus(swarm_file)
    while True:
        await anyio.sleep(POLL)
        now = _signature(swarm_file)
        if now == seen:
            continue
        seen = now
        new: SwarmBus = await anyio.to_thread.run_sync(read_swarm_bus, swarm_file)
        await anyio.to_thread.run_sync(partial(write_bus_dir, bus_dir, settings(), swarm=new))
        if new.listen != current.listen:
            log.info("swarm port %s: restarting nats-server", new.listen or "closed")
            await anyio.sleep(SETTLE)
            nats.restart()
        else:
            log.info("swarm bus changed: nats-server reloads its configuration")
            nats.signal(signal.SIGHUP)
        current = new
