"""What `berth status` reports: each process's pid and liveness, NATS reachability, and whether
each service answers a Ping on its health subject."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import nats
from berth_contracts import subjects
from berth_contracts.base import Ping, Pong
from berth_contracts.buspermissions import STATUS
from berth_contracts.codec import decode_as, encode
from berth_contracts.errors import ErrorReply
from berth_kit.busauth import CredentialsError, creds_path
from berth_kit.nats_conn import credentials_options
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from berth_cli import apiprobe, natsd, procs
from berth_cli.state import BerthState, ChildState

PING_TIMEOUT = 2.0
CONNECT_TIMEOUT = 2.0


async def ping_services(
    url: str, expected: dict[str, int], creds_dir: str = ""
) -> tuple[bool, dict[str, list[int]]]:
    """Ping every service; (nats reachable, {service: pids that answered with a Pong}).

    With a bus directory, as the berth-status identity (it may only ping health subjects).

    All Pongs are gathered, not just the first: on a NATS shared with other berths (--nats-url)
    several processes answer on one health subject, and only the one with our pid counts.
    Stops early once every expected pid has answered.
    """
    answers: dict[str, list[int]] = {name: [] for name in expected}
    try:
        creds = str(creds_path(Path(creds_dir), STATUS)) if creds_dir else ""
        auth = credentials_options(STATUS, creds)
        with anyio.fail_after(CONNECT_TIMEOUT + 1):
            nc = await nats.connect(
                servers=url.split(","),
                connect_timeout=CONNECT_TIMEOUT,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                name=STATUS,
                **auth,
            )
    except (OSError, TimeoutError, NatsError, CredentialsError):
        return False, answers

    by_subject = {subjects.health(name): name for name in expected}
    inbox = nc.new_inbox()
    pending = {name for name, pid in expected.items() if pid}
    all_in = anyio.Event()

    async def on_reply(msg: Msg) -> None:
        try:
            reply = decode_as(msg.data, Pong | ErrorReply)
        except Exception:  # noqa: BLE001 - a garbled answer is no answer
            return
        if isinstance(reply, Pong) and reply.service in answers:
            answers[reply.service].append(reply.pid)
            if reply.pid == expected[reply.service]:
                pending.discard(reply.service)
                if not pending:
                    all_in.set()

    try:
        await nc.subscribe(inbox, cb=on_reply)
        for subject in by_subject:
            await nc.publish(subject, encode(Ping()), reply=inbox)
        await nc.flush(timeout=int(CONNECT_TIMEOUT))
        if pending:
            with anyio.move_on_after(PING_TIMEOUT):
                await all_in.wait()
    except (OSError, TimeoutError, NatsError):
        return False, answers
    finally:
        with anyio.move_on_after(2):
            await nc.close()
    return True, answers


def _child(c: ChildState, answered: list[int] | None = None, with_health: bool = True) -> dict[str, Any]:
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
        answered = answered or []
        out["healthy"] = bool(out["alive"] and c.pid in answered)
        # The pid that answered: ours if it did, else whoever else answers on that subject.
        out["answered_pid"] = c.pid if c.pid in answered else (answered[0] if answered else None)
        out["health"] = "healthy" if out["healthy"] else "unhealthy"
    return out


async def collect(state: BerthState) -> dict[str, Any]:
    expected = {s.name: s.pid for s in state.services}
    nats_ok, pongs = await ping_services(state.nats.url, expected, state.nats.creds_dir)
    api_ok = await anyio.to_thread.run_sync(apiprobe.ping, state.docker_host, 2.0, state.api_tls)
    nats_info: dict[str, Any] = {
        "url": state.nats.url,
        "embedded": state.nats.embedded,
        "reachable": nats_ok and await anyio.to_thread.run_sync(natsd.reachable, state.nats.url),
    }
    nats_info["health"] = "healthy" if nats_info["reachable"] else "unhealthy"
    if state.nats.process is not None:
        nats_info.update(
            {k: v for k, v in _child(state.nats.process, with_health=False).items() if k != "name"}
        )
    services = [_child(c, pongs.get(c.name)) for c in state.services]
    return {
        "running": procs.alive(state.supervisor_pid, state.supervisor_start_ticks),
        "healthy": nats_ok and api_ok and all(s["healthy"] for s in services),
        "supervisor": {"pid": state.supervisor_pid},
        "forkserver": {"pid": state.forkserver_pid or None},
        "docker_host": state.docker_host,
        "hosts": state.hosts,
        "api": {"host": state.docker_host, "ping": api_ok},
        "data_root": state.data_root,
        "exec_root": state.exec_root,
        "log_file": state.log_file or None,
        "nats": nats_info,
        "services": services,
    }
