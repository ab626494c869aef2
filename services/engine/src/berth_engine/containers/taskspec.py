"""From a container record to what the agent runs, and from runc's failure to moby's error."""

from __future__ import annotations

from berth_contracts.agent import TaskSpec

from berth_engine import settings
from berth_engine.containers import hostopts
from berth_engine.containers.records import Record
from berth_engine.containers.secopts import parse_security_opts

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def replace_or_append_env(base: list[str], overrides: list[str]) -> list[str]:
    """moby's ReplaceOrAppendEnvValues: an override replaces the entry with its key."""
    result = list(base)
    index = {entry.split("=", 1)[0]: i for i, entry in enumerate(result)}
    for entry in overrides:
        key = entry.split("=", 1)[0]
        if key in index:
            result[index[key]] = entry
        else:
            index[key] = len(result)
            result.append(entry)
    return result


def process_env(rec: Record, linked: list[str] | None = None) -> list[str]:
    """moby's CreateDaemonEnvironment: PATH, HOSTNAME (and TERM with a TTY), the legacy links'
    variables, then Config.Env."""
    base = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={rec.config.hostname}"]
    if rec.config.tty:
        base.append("TERM=xterm")
    base += linked or []
    return replace_or_append_env(base, rec.config.env or [])


def task_spec(rec: Record) -> TaskSpec:
    hc = rec.host_config
    security = parse_security_opts(hc.security_opt)
    return TaskSpec(
        args=[rec.path, *rec.args],
        env=process_env(rec),
        cwd=rec.config.working_dir or "/",
        user=rec.config.user,
        hostname=rec.config.hostname,
        tty=rec.config.tty,
        open_stdin=rec.config.open_stdin,
        stdin_once=rec.config.stdin_once,
        # The agent makes a namespace of the task's own unless this is "host" or
        # "container:<full id>" (resolved at create, checked at start: netjoin); bridge
        # networks are attached in it from TaskSpec.networks.
        network_mode=hc.network_mode,
        memory=hc.memory,
        memory_swap=hc.memory_swap,
        nano_cpus=hc.nano_cpus,
        cpu_shares=hc.cpu_shares,
        cpu_period=hc.cpu_period,
        cpu_quota=hc.cpu_quota,
        pids_limit=max(hc.pids_limit or 0, 0),  # Docker's -1 (unlimited) is the agent's 0
        privileged=hc.privileged,
        readonly_rootfs=hc.readonly_rootfs,
        cap_add=list(hc.cap_add or []),
        cap_drop=list(hc.cap_drop or []),
        oom_score_adj=hc.oom_score_adj,
        seccomp=security.seccomp,
        no_new_privileges=security.no_new_privileges,
        labels=dict(rec.config.labels or {}),
        copy_up=[m.destination for m in rec.mounts if m.type == "volume" and m.copy_up],
        rlimits=hostopts.rlimits(hc.ulimits, settings.default_ulimits()),
        sysctls=dict(hc.sysctls or {}),
        devices=hostopts.devices(hc.devices),
        device_cgroup_rules=list(hc.device_cgroup_rules or []),
        group_add=list(hc.group_add or []),
        cgroup_parent=hc.cgroup_parent,
        pid_mode=hostopts.pid_mode(hc),
        ipc_mode=hc.ipc_mode or "private",
        uts_mode="host" if hc.uts_mode == "host" else "",
        cgroupns_mode=hc.cgroupns_mode or "host",
        cpuset_cpus=hc.cpuset_cpus,
        cpuset_mems=hc.cpuset_mems,
        memory_reservation=hc.memory_reservation,
        memory_swappiness=hc.memory_swappiness,
        oom_kill_disable=bool(hc.oom_kill_disable),
        masked_paths=hc.masked_paths,
        readonly_paths=hc.readonly_paths,
        init=bool(hc.init),
        dns=list(hc.dns or []),
        dns_search=list(hc.dns_search or []),
        dns_options=list(hc.dns_options or []),
        domainname=rec.config.domainname,
        annotations=dict(hc.annotations or {}),
    )


def exit_code_for_start_error(message: str) -> int:
    """moby's setExitCodeFromError: 127 not found, 126 not executable, else 128. The agent words
    runc's failures as dockerd does (berth_agent.runcerrors); the engine passes them on."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 128
