"""What `berth status` reports: each process's pid and liveness, NATS reachability, and whether
each service answers a Ping on its health subject."""

from __future__ import annotations

from typing import Any

import anyio
import nats
from berth_contracts import subjects
from berth_contracts.base import Ping, Pong
from berth_contracts.codec import decode_as, encode
from berth_contracts.errors import ErrorReply
from nats.errors import Error as NatsError

from berth_cli import apiprobe, natsd, procs
from berth_cli.state import BerthState, ChildState

PING_TIMEOUT = 2.0
CONNECT_TIMEOUT = 2.0


async def ping_services(url: str, names: list[str]) -> tuple[bool, dict[str, int | None]]:
    """(nats reachable, {service: pid in its Pong, or None when it does not answer})."""
    answers: dict[str, int | None] = dict.fromkeys(names)
    try:
        with anyio.fail_after(CONNECT_TIMEOUT + 1):
            nc = await nats.connect(
                servers=url.split(","),
                connect_timeout=CONNECT_TIMEOUT,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                name="berth-status",
            )
    except (OSError, TimeoutError, NatsError):
        return False, answers

    async def one(name: str) -> None:
        try:
            msg = await nc.request(subjects.health(name), encode(Ping()), timeout=PING_TIMEOUT)
            reply = decode_as(msg.data, Pong | ErrorReply)
        except Exception:  # noqa: BLE001 - no answer, or a garbled one: not healthy
            return
        if isinstance(reply, Pong):
            answers[name] = reply.pid

    try:
        async with anyio.create_task_group() as tg:
            for name in names:
                tg.start_soon(one, name)
    finally:
        with anyio.move_on_after(2):
            await nc.close()
    return True, answers


def _child(c: ChildState, pong_pid: int | None = None, with_health: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": c.name,
        "pid": c.pid or None,
        "alive": procs.alive(c.pid, c.start_ticks),
        "state": c.state,
        "restarts": c.restarts,
        "last_exit": c.last_exit,
    }
    if c.module:
        out["module"] = c.module
    if with_health:
        out["healthy"] = pong_pid is not None and out["alive"]
        out["answered_pid"] = pong_pid
    return out


async def collect(state: BerthState) -> dict[str, Any]:
    names = [s.name for s in state.services]
    nats_ok, pongs = await ping_services(state.nats.url, names)
    api_ok = await anyio.to_thread.run_sync(apiprobe.ping, state.docker_host, 2.0)
    nats_info: dict[str, Any] = {
        "url": state.nats.url,
        "embedded": state.nats.embedded,
        "reachable": nats_ok and await anyio.to_thread.run_sync(natsd.reachable, state.nats.url),
    }
    if state.nats.process is not None:
        nats_info.update(
            {k: v for k, v in _child(state.nats.process, with_health=False).items() if k != "name"}
        )
    services = [_child(c, pongs.get(c.name)) for c in state.services]
    return {
        "running": procs.alive(state.supervisor_pid, state.supervisor_start_ticks),
        "healthy": nats_ok and api_ok and all(s["healthy"] for s in services),
        "supervisor": {"pid": state.supervisor_pid},
        "docker_host": state.docker_host,
        "hosts": state.hosts,
        "api": {"host": state.docker_host, "ping": api_ok},
        "data_root": state.data_root,
        "exec_root": state.exec_root,
        "log_file": state.log_file or None,
        "nats": nats_info,
        "services": services,
    }
