"""Create-time decisions dockerd makes: merge the image's config into the container's, normalise
the HostConfig, and refuse what berth cannot honour yet (instead of silently ignoring it)."""

from __future__ import annotations

from pathlib import Path

import msgspec
from berth_contracts.docker import ContainerConfig, CreateRequest, HostConfig, LogConfig, StrSlice
from berth_contracts.errors import InvalidParameter, NotImplementedByBerth

DEFAULT_SHM_SIZE = 64 * 1024 * 1024
# What the runtime agent applies to unprivileged containers (moby v28's oci defaults).
DEFAULT_MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
]  # fmt: skip
DEFAULT_READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def strslice(value: StrSlice) -> list[str] | None:
    """Docker's strslice: a JSON string is a one-element list; null stays "not given"."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return list(value)


def _env_key(entry: str) -> str:
    return entry.split("=", 1)[0]


def merge_env(image_env: list[str] | None, user_env: list[str] | None) -> list[str]:
    """moby's merge: the container's entries first, then image entries whose key it did not set."""
    if not user_env:
        return list(image_env or [])
    keys = {_env_key(e) for e in user_env}
    return list(user_env) + [e for e in image_env or [] if _env_key(e) not in keys]


def merge_config(
    request: CreateRequest, image: ContainerConfig, container_id: str, image_name: str
) -> ContainerConfig:
    """The container's effective Config: request fields, defaulted from the image like moby."""
    entrypoint = strslice(request.entrypoint)
    cmd = strslice(request.cmd)
    if not entrypoint:
        # No entrypoint from the request: both come from the image, the request's Cmd winning.
        if not cmd:
            cmd = strslice(image.cmd)
        if entrypoint is None:
            entrypoint = strslice(image.entrypoint)
    elif entrypoint == [""]:
        # `--entrypoint ""` clears the image's entrypoint; the request's Cmd is the command.
        entrypoint = []
    labels = dict(image.labels or {})
    labels.update(request.labels or {})
    volumes = dict(image.volumes or {})
    volumes.update(request.volumes or {})
    exposed = dict(image.exposed_ports or {})
    exposed.update(request.exposed_ports or {})
    return ContainerConfig(
        hostname=request.hostname or container_id[:12],
        domainname=request.domainname,
        user=request.user or image.user,
        attach_stdin=request.attach_stdin,
        attach_stdout=request.attach_stdout,
        attach_stderr=request.attach_stderr,
        exposed_ports=exposed or None,
        tty=request.tty,
        open_stdin=request.open_stdin,
        stdin_once=request.stdin_once,
        env=merge_env(image.env, request.env),
        cmd=cmd if cmd else None,
        healthcheck=request.healthcheck if request.healthcheck is not None else image.healthcheck,
        args_escaped=request.args_escaped,
        image=image_name,
        volumes=volumes or None,
        working_dir=request.working_dir or image.working_dir,
        entrypoint=entrypoint if entrypoint else None,
        network_disabled=request.network_disabled,
        on_build=request.on_build if request.on_build is not None else image.on_build,
        labels=labels,
        stop_signal=request.stop_signal or image.stop_signal,
        stop_timeout=request.stop_timeout,
        shell=request.shell if request.shell is not None else image.shell,
    )


def final_command(config: ContainerConfig) -> list[str]:
    """Entrypoint + Cmd; InvalidParameter("no command specified") when there is nothing to run."""
    argv = (strslice(config.entrypoint) or []) + (strslice(config.cmd) or [])
    if not argv or not argv[0]:
        raise InvalidParameter("no command specified")
    return argv


def check_supported(request: CreateRequest) -> None:
    """Refuse, with a clear 501, the features berth does not implement yet."""
    hc = request.host_config
    refused: list[str] = []
    if hc.shm_size not in (0, DEFAULT_SHM_SIZE):
        refused.append("a /dev/shm size other than 64 MiB (HostConfig.ShmSize)")
    if hc.runtime not in ("", "runc"):
        refused.append(f"runtime {hc.runtime!r} (only runc)")
    if refused:
        raise NotImplementedByBerth("berth does not support " + ", ".join(refused) + " yet")


def normalise_network_mode(mode: str) -> str:
    return "bridge" if mode in ("", "default") else mode


def _cgroup_v2() -> bool:
    return Path("/sys/fs/cgroup/cgroup.controllers").exists()


def normalise_host_config(hc: HostConfig) -> HostConfig:
    """What dockerd stores at create, so inspect shows what the container really gets:
    NetworkMode default → bridge, LogConfig.Type → json-file, the daemon's IPC / cgroupns /
    runtime / shm defaults, the default masked and read-only paths, and "unlimited" values
    (PidsLimit ≤ 0, MemorySwappiness -1) as null."""
    log_config = hc.log_config
    if not log_config.type:
        log_config = LogConfig(type="json-file", config=log_config.config or {})
    unprivileged = not hc.privileged
    return msgspec.structs.replace(
        hc,
        network_mode=normalise_network_mode(hc.network_mode),
        log_config=log_config,
        ipc_mode=hc.ipc_mode or "private",
        cgroupns_mode=hc.cgroupns_mode or ("private" if _cgroup_v2() else "host"),
        runtime=hc.runtime or "runc",
        shm_size=hc.shm_size or DEFAULT_SHM_SIZE,
        pids_limit=hc.pids_limit if hc.pids_limit and hc.pids_limit > 0 else None,
        memory_swappiness=None if hc.memory_swappiness == -1 else hc.memory_swappiness,
        masked_paths=hc.masked_paths
        if hc.masked_paths is not None or not unprivileged
        else list(DEFAULT_MASKED_PATHS),
        readonly_paths=hc.readonly_paths
        if hc.readonly_paths is not None or not unprivileged
        else list(DEFAULT_READONLY_PATHS),
    )
