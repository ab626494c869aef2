"""The parts of config.json that come from HostConfig options dockerd applies in its spec opts
(daemon/oci_linux.go): namespaces (private, host, or joined), rlimits, sysctls, devices and
device cgroup rules, the cgroup parent, and the /dev/shm of the IPC mode."""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import stat
from typing import Any

from berth_contracts.agent import DeviceMapping, TaskSpec
from berth_contracts.errors import InternalError

from berth_agent.users import ExecUser

DEFAULT_CGROUP_PARENT = "/berth"
INIT_BINARY = "docker-init"  # moby's DefaultInitBinary (Debian: tini-static)
IN_CONTAINER_INIT = "/sbin/docker-init"
GROUP_ADD_ANNOTATION = "org.berth.group-add"
_SHM_OPTIONS = ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]


def process_user(user: ExecUser, group_add: list[int] | None = None) -> dict[str, Any]:
    """moby's getUser (since CVE-2022-36109): the primary gid is a supplementary group too,
    then the user's groups, then `--group-add`'s."""
    gids = [user.gid, *user.additional_gids, *(group_add or [])]
    return {"uid": user.uid, "gid": user.gid, "additionalGids": gids}


def group_add_of(config: dict[str, Any]) -> list[int]:
    """The container's resolved `--group-add` gids, kept in config.json for its execs."""
    text = str(config.get("annotations", {}).get(GROUP_ADD_ANNOTATION, ""))
    return [int(g) for g in text.split(",") if g.isdigit()]


def namespaces(spec: TaskSpec, joined: dict[str, str], host_net: bool) -> list[dict[str, Any]]:
    """moby's setNamespaces: a path for a joined container's namespace, none for "host"."""
    out: list[dict[str, Any]] = [{"type": "mount"}]
    wanted = {
        "pid": spec.pid_mode != "host",
        "ipc": spec.ipc_mode != "host",
        "uts": spec.uts_mode != "host",
        "network": not host_net,
        "cgroup": spec.cgroupns_mode == "private",
    }
    for ns, private in wanted.items():
        if ns in joined:
            out.append({"type": ns, "path": joined[ns]})
        elif private:
            out.append({"type": ns})
    return out


def cgroups_path(spec: TaskSpec, container_id: str) -> str:
    """moby with the cgroupfs driver: filepath.Join(cgroup parent, id)."""
    return posixpath.join(spec.cgroup_parent or DEFAULT_CGROUP_PARENT, container_id)


def rlimits(spec: TaskSpec, default_nofile: int) -> list[dict[str, Any]]:
    """The TaskSpec's limits; NOFILE, when not given, as containerd's unit (LimitNOFILE) would
    leave it to a dockerd container."""
    out = [{"type": r.type, "soft": r.soft, "hard": r.hard} for r in spec.rlimits or []]
    if not any(r["type"] == "RLIMIT_NOFILE" for r in out):
        out.insert(0, {"type": "RLIMIT_NOFILE", "hard": default_nofile, "soft": default_nofile})
    return out


def shm_mount(spec: TaskSpec, shm_source: str) -> dict[str, Any] | None:
    """/dev/shm per IPC mode: a host directory (host, shareable, a donor's), a private tmpfs,
    or none at all for "none"."""
    if spec.ipc_mode == "none":
        return None
    if shm_source:
        return {
            "destination": "/dev/shm",
            "type": "bind",
            "source": shm_source,
            "options": ["rbind", "nosuid", "noexec", "nodev"],
        }
    return {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": _SHM_OPTIONS}


def _device_error(path: str, reason: str) -> InternalError:
    return InternalError(
        f"error gathering device information while adding custom device {json.dumps(path)}: "
        f"{reason}"
    )


def _device_node(path: str, container_path: str, access: str) -> tuple[dict, dict] | None:
    """libcontainer's DeviceFromPath: None when `path` is not a character or block device."""
    st = os.lstat(path)
    if stat.S_ISCHR(st.st_mode):
        dtype = "c"
    elif stat.S_ISBLK(st.st_mode):
        dtype = "b"
    else:
        return None
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    node = {
        "path": container_path,
        "type": dtype,
        "major": major,
        "minor": minor,
        "fileMode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
    }
    rule = {"allow": True, "type": dtype, "major": major, "minor": minor, "access": access}
    return node, rule


def devices(mappings: list[DeviceMapping]) -> tuple[list[dict], list[dict]]:
    """moby's DevicesFromPath for each `--device`: the host path with its symlinks resolved, a
    device node, or a directory whose device nodes are all added under the container path."""
    nodes: list[dict] = []
    rules: list[dict] = []
    for m in mappings:
        host = m.path_on_host
        resolved = os.path.realpath(host) if os.path.islink(host) else host
        target = m.path_in_container or host
        try:
            found = _device_node(resolved, target, m.permissions)
        except OSError as exc:
            raise _device_error(host, (exc.strerror or str(exc)).lower()) from None
        if found is not None:
            nodes.append(found[0])
            rules.append(found[1])
            continue
        if not os.path.isdir(resolved):
            raise _device_error(host, "not a device node")
        for dirpath, _dirs, files in os.walk(resolved):
            for name in sorted(files):
                child = os.path.join(dirpath, name)
                inner = target + child[len(resolved) :]
                try:
                    found = _device_node(child, inner, m.permissions)
                except OSError:
                    continue  # moby ignores what it cannot stat inside a directory
                if found is not None:
                    nodes.append(found[0])
                    rules.append(found[1])
    return nodes, rules


def device_cgroup_rule(rule: str) -> dict[str, Any]:
    """`c 42:* rmw` (the engine checked the format) as an OCI device cgroup rule."""
    dtype, numbers, access = rule.split(" ")
    major, _, minor = numbers.partition(":")
    out: dict[str, Any] = {"allow": True, "type": dtype, "access": access}
    if major != "*":
        out["major"] = int(major)
    if minor != "*":
        out["minor"] = int(minor)
    return out


def _resources(spec: TaskSpec, res: dict[str, Any]) -> None:
    """The resources dockerd sets besides limits: reservation, swappiness, OOM killer, cpusets."""
    memory = dict(res.get("memory", {}))
    if spec.memory_reservation > 0:
        memory["reservation"] = spec.memory_reservation
    if spec.memory_swappiness is not None and spec.memory_swappiness >= 0:
        memory["swappiness"] = spec.memory_swappiness
    if spec.oom_kill_disable:
        memory["disableOOMKiller"] = True
    if memory:
        res["memory"] = memory
    cpu = dict(res.get("cpu", {}))
    if spec.cpuset_cpus:
        cpu["cpus"] = spec.cpuset_cpus
    if spec.cpuset_mems:
        cpu["mems"] = spec.cpuset_mems
    if cpu:
        res["cpu"] = cpu


def _init(config: dict[str, Any], spec: TaskSpec) -> None:
    """`--init` as moby: docker-init bind-mounted read-only at /sbin/docker-init, run as
    `docker-init -- <command>`, only with a private pid namespace."""
    if not spec.init or spec.pid_mode:
        return
    binary = shutil.which(INIT_BINARY)
    if binary is None:
        raise InternalError(f'exec: "{INIT_BINARY}": executable file not found in $PATH')
    config["process"]["args"] = [IN_CONTAINER_INIT, "--", *config["process"]["args"]]
    config["mounts"].append(
        {"destination": IN_CONTAINER_INIT, "type": "bind", "source": binary, "options": ["bind", "ro"]}
    )


def apply(
    config: dict[str, Any], spec: TaskSpec, container_id: str, shm_source: str
) -> dict[str, Any]:
    """Add the host options to a config.json built with Docker's defaults."""
    linux = config["linux"]
    linux["cgroupsPath"] = cgroups_path(spec, container_id)
    sysctls = {}
    if spec.domainname and spec.uts_mode != "host":
        # moby's setLinuxDomainname: no OCI field, the sysctl does what setdomainname(2) does.
        sysctls["kernel.domainname"] = spec.domainname
    sysctls.update(spec.sysctls)
    if sysctls:
        linux["sysctl"] = sysctls
    _resources(spec, linux["resources"])
    if spec.privileged:
        linux.pop("maskedPaths", None)
        linux.pop("readonlyPaths", None)
    else:
        if spec.masked_paths is not None:
            linux["maskedPaths"] = list(spec.masked_paths)
        if spec.readonly_paths is not None:
            linux["readonlyPaths"] = list(spec.readonly_paths)
    _init(config, spec)
    if spec.annotations:
        config["annotations"] = dict(spec.annotations)
    if spec.uts_mode == "host":
        config.pop("hostname", None)  # the host's, as dockerd leaves it
    mounts = [m for m in config["mounts"] if m["destination"] != "/dev/shm"]
    shm = shm_mount(spec, shm_source)
    if shm is not None:
        at = next((i for i, m in enumerate(mounts) if m["destination"] == "/dev/mqueue"), 0)
        mounts.insert(at + 1, shm)
    config["mounts"] = mounts
    if not spec.privileged:
        nodes, rules = devices(list(spec.devices))
        rules += [device_cgroup_rule(r) for r in spec.device_cgroup_rules]
        if nodes:
            linux["devices"] = nodes
        linux["resources"]["devices"] = [*linux["resources"]["devices"], *rules]
    return config
