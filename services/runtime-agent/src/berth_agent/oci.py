"""The OCI runtime spec (config.json) for a TaskSpec, with Docker's defaults."""

from __future__ import annotations

import resource
import socket
from pathlib import Path
from typing import Any

from berth_contracts.agent import TaskSpec
from berth_contracts.errors import InvalidParameter
from berth_contracts.lifecycle import Mount

from berth_agent import hostspec, seccomp
from berth_agent.users import ExecUser

# moby oci/caps/defaults.go
DEFAULT_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]

# Every capability up to CAP_CHECKPOINT_RESTORE (40), in kernel order.
ALL_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]  # fmt: skip

# moby oci/defaults.go
MASKED_PATHS = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

NOFILE = 1048576
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _mount(dest: str, mtype: str, source: str, options: list[str]) -> dict[str, Any]:
    return {"destination": dest, "type": mtype, "source": source, "options": options}


def default_mounts(privileged: bool) -> list[dict[str, Any]]:
    sys_mode = "rw" if privileged else "ro"
    return [
        _mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        _mount(
            "/dev/pts",
            "devpts",
            "devpts",
            ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", sys_mode]),
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", [sys_mode, "nosuid", "noexec", "nodev"]),
        _mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        _mount(
            "/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
        ),
    ]


def _cap_name(cap: str) -> str:
    up = cap.strip().upper()
    return up if up.startswith("CAP_") else f"CAP_{up}"


def available_caps() -> list[str]:
    """The capabilities this process may hand on (its bounding set): "all" for --privileged.

    Like dockerd, which uses what the kernel supports; here the bounding set can be smaller
    (e.g. a sandbox without CAP_SYS_RESOURCE), and asking runc for more fails the container.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    mask = int(line.split()[1], 16)
                    return [c for i, c in enumerate(ALL_CAPS) if mask >> i & 1]
    except (OSError, ValueError):
        pass
    return list(ALL_CAPS)


def capabilities(spec: TaskSpec) -> list[str]:
    """Docker's TweakCapabilities: defaults, then drops, then adds ("ALL" works in both)."""
    if spec.privileged:
        return available_caps()
    adds = [_cap_name(c) for c in spec.cap_add]
    drops = [_cap_name(c) for c in spec.cap_drop]
    for cap in adds + drops:
        if cap != "CAP_ALL" and cap not in ALL_CAPS:
            raise InvalidParameter(f"unknown capability: {cap!r}")
    caps = [] if "CAP_ALL" in drops else [c for c in DEFAULT_CAPS if c not in drops]
    if "CAP_ALL" in adds:
        caps = [c for c in available_caps() if c not in drops or c in adds]
    for cap in adds:
        if cap != "CAP_ALL" and cap not in caps:
            caps.append(cap)
    return caps


def _devices(privileged: bool) -> list[dict[str, Any]]:
    if privileged:
        return [{"allow": True, "access": "rwm"}]
    rules: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}]
    # moby's DefaultLinuxSpec device rules, then runc's always-allowed devices.
    for dtype, major, minor in (
        ("c", None, None),
        ("b", None, None),
    ):
        rules.append({"allow": True, "type": dtype, "major": major, "minor": minor, "access": "m"})
    for major, minor in (
        (1, 3),
        (1, 5),
        (1, 7),
        (5, 0),
        (5, 1),
        (5, 2),
        (1, 8),
        (1, 9),
        (136, None),
        (10, 200),
    ):
        rules.append({"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"})
    for rule in rules:
        for key in ("major", "minor"):
            if key in rule and rule[key] is None:
                del rule[key]
    return rules


def resources(spec: TaskSpec, swap_supported: bool) -> dict[str, Any]:
    res: dict[str, Any] = {"devices": _devices(spec.privileged)}
    memory: dict[str, Any] = {}
    if spec.memory > 0:
        memory["limit"] = spec.memory
        if swap_supported:
            if spec.memory_swap == -1:
                memory["swap"] = -1
            elif spec.memory_swap > 0:
                memory["swap"] = spec.memory_swap
            else:
                memory["swap"] = spec.memory * 2  # Docker's default: as much swap as memory
    if memory:
        res["memory"] = memory
    cpu: dict[str, Any] = {}
    if spec.cpu_shares:
        cpu["shares"] = spec.cpu_shares
    if spec.nano_cpus:
        cpu["period"] = 100000
        cpu["quota"] = spec.nano_cpus * 100000 // 1_000_000_000
    else:
        if spec.cpu_period:
            cpu["period"] = spec.cpu_period
        if spec.cpu_quota:
            cpu["quota"] = spec.cpu_quota
    if cpu:
        res["cpu"] = cpu
    if spec.pids_limit > 0:
        res["pids"] = {"limit": spec.pids_limit}
    return res


def nofile_limit() -> int:
    """Docker's 1048576, unless this process's hard limit is lower (raising it is not permitted)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return NOFILE if hard == resource.RLIM_INFINITY else min(NOFILE, hard)


def process_env(spec: TaskSpec, user: ExecUser, hostname: str) -> list[str]:
    env = list(spec.env)
    keys = {e.split("=", 1)[0] for e in env}
    # What dockerd's CreateDaemonEnvironment adds when the image and user did not set it.
    if "PATH" not in keys:
        env.insert(0, DEFAULT_PATH)
    if "HOSTNAME" not in keys and hostname:
        env.append(f"HOSTNAME={hostname}")
    if spec.tty and "TERM" not in keys:
        env.append("TERM=xterm")
    if "HOME" not in keys:
        env.append(f"HOME={user.home or '/'}")
    return env


def build_config(
    container_id: str,
    spec: TaskSpec,
    user: ExecUser,
    extra_mounts: list[Mount],
    etc_files: dict[str, Path],
    swap_supported: bool,
    joined: dict[str, str] | None = None,
    shm_source: str = "",
) -> dict[str, Any]:
    """config.json for the task. joined: namespace type -> the /proc/<pid>/ns path of another
    container's to join (`--network/--pid/--ipc container:`); shm_source: the host directory
    bind-mounted at /dev/shm (`--ipc host|shareable|container:`), "" for a private tmpfs."""
    joined = joined or {}
    host_net = spec.network_mode == "host"
    hostname = spec.hostname or (socket.gethostname() if host_net else container_id[:12])
    caps = capabilities(spec)
    nofile = nofile_limit()
    namespaces = hostspec.namespaces(spec, joined, host_net)
    mounts = default_mounts(spec.privileged)
    for m in extra_mounts:
        mounts.append(_mount(m.target, m.type, m.source, list(m.options)))
    for dest, src in etc_files.items():
        if host_net and dest == "/etc/hostname":
            continue
        mounts.append(_mount(dest, "bind", str(src), ["rbind", "rprivate"]))
    user_spec = hostspec.process_user(user)
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "resources": resources(spec, swap_supported),
    }
    if not spec.privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    profile = seccomp.for_container(spec.seccomp, spec.privileged, caps)
    if profile is not None:
        linux["seccomp"] = profile
    config = {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": spec.tty,
            "user": user_spec,
            "args": list(spec.args),
            "env": process_env(spec, user, hostname),
            "cwd": spec.cwd or "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": hostspec.rlimits(spec, nofile),
            "noNewPrivileges": spec.no_new_privileges,
            "oomScoreAdj": spec.oom_score_adj,
        },
        "root": {"path": "rootfs", "readonly": spec.readonly_rootfs},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
    }
    return hostspec.apply(config, spec, container_id, shm_source)
