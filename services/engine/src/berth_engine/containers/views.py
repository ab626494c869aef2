"""Docker's views of a record: inspect, list item, the status text and the command line."""

from __future__ import annotations

import time

from berth_common.gotime import is_zero, parse_ns
from berth_contracts.docker import (
    ContainerInspect,
    ContainerState,
    ContainerSummary,
    PortSummary,
    SummaryHostConfig,
    SummaryNetworkSettings,
)
from berth_contracts.engine import ContainerRef

from berth_engine.containers.health import health_text
from berth_engine.containers.logdrivers import driver_of
from berth_engine.containers.mountspec import mount_points
from berth_engine.containers.records import Record
from berth_engine.containers.timefmt import human_duration
from berth_engine.networks.controller import network_settings


def status_text(rec: Record, now_ns: int | None = None) -> str:
    """moby's State.String()."""
    now = time.time_ns() if now_ns is None else now_ns
    st = rec.state
    if st.status in ("running", "paused"):
        up = human_duration((now - parse_ns(st.started_at)) / 1e9)
        if st.status == "paused":
            return f"Up {up} (Paused)"
        return f"Up {up}{health_text(st.health)}"
    if st.status == "restarting":
        ago = human_duration((now - parse_ns(st.finished_at)) / 1e9)
        return f"Restarting ({st.exit_code}) {ago} ago"
    if st.status == "removing":
        return "Removal In Progress"
    if st.status == "dead":
        return "Dead"
    if is_zero(st.started_at):
        return "Created"
    if is_zero(st.finished_at):
        return ""
    ago = human_duration((now - parse_ns(st.finished_at)) / 1e9)
    return f"Exited ({st.exit_code}) {ago} ago"


def command_line(rec: Record) -> str:
    """The list's Command as moby builds it (daemon/list.go): path and args joined by spaces,
    arguments containing a space in single quotes. The CLI adds the surrounding double quotes."""
    args = [f"'{a}'" if " " in a else a for a in rec.args]
    return " ".join([rec.path, *args]) if args else rec.path


def exposed_ports(rec: Record) -> list[tuple[int, str]]:
    """The container's exposed ports as (number, protocol), sorted; "80" means "80/tcp"."""
    ports: list[tuple[int, str]] = []
    for key in rec.config.exposed_ports or {}:
        number, _, proto = key.partition("/")
        if number.isdigit():
            ports.append((int(number), proto or "tcp"))
    return sorted(ports)


def port_summaries(rec: Record) -> list[PortSummary]:
    """ps's Ports: published ones with their host side, the other exposed ones bare."""
    if not rec.alive:
        return []
    published = {(p.container_port, p.protocol) for p in rec.ports}
    out = [
        PortSummary(PrivatePort=p.container_port, Type=p.protocol, IP=p.host_ip or "0.0.0.0",
                    PublicPort=p.host_port)
        for p in rec.ports
    ]  # fmt: skip
    out += [
        PortSummary(PrivatePort=n, Type=p) for n, p in exposed_ports(rec) if (n, p) not in published
    ]
    return out


def inspect(rec: Record, exec_ids: list[str] | None = None) -> ContainerInspect:
    st = rec.state
    return ContainerInspect(
        id=rec.id,
        created=rec.created,
        path=rec.path,
        args=list(rec.args),
        state=ContainerState(
            status=st.status,
            running=st.status in ("running", "paused", "restarting"),
            paused=st.status == "paused",
            restarting=st.status == "restarting",
            oom_killed=st.oom_killed,
            dead=st.status == "dead",
            pid=st.pid,
            exit_code=st.exit_code,
            error=st.error,
            started_at=st.started_at,
            finished_at=st.finished_at,
            health=st.health,
        ),
        image=rec.image_id,
        # dockerd shows the path of a json-file log only (local's file is its own business).
        log_path=rec.log_path if driver_of(rec.host_config.log_config) == "json-file" else "",
        name="/" + rec.name,
        restart_count=rec.restart_count,
        host_config=rec.host_config,
        config=rec.config,
        exec_ids=exec_ids,
        mounts=mount_points(rec.mounts),
        # While running, moby lists every exposed port; unpublished ones map to null.
        network_settings=network_settings(rec),
    )


def summary(rec: Record, now_ns: int | None = None) -> ContainerSummary:
    return ContainerSummary(
        id=rec.id,
        names=["/" + rec.name],
        image=rec.image_name,
        image_id=rec.image_id,
        command=command_line(rec),
        created=parse_ns(rec.created) // 1_000_000_000,
        state=rec.state.status,
        status=status_text(rec, now_ns),
        ports=port_summaries(rec),
        labels=dict(rec.config.labels or {}),
        host_config=SummaryHostConfig(network_mode=rec.host_config.network_mode),
        network_settings=SummaryNetworkSettings(networks=network_settings(rec).networks),
        mounts=mount_points(rec.mounts),
    )


def ref(rec: Record) -> ContainerRef:
    return ContainerRef(
        id=rec.id,
        name=rec.name,
        status=rec.state.status,  # type: ignore[arg-type]
        tty=rec.config.tty,
        open_stdin=rec.config.open_stdin,
        stdin_once=rec.config.stdin_once,
        auto_remove=rec.host_config.auto_remove,
        exit_code=rec.state.exit_code,
    )
