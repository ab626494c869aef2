"""HostConfig.Binds / Mounts / Tmpfs and Config.Volumes → the container's mount points, the way
moby's volume parser reads them (daemon/volume/mounts/linux_parser.go), with its error words."""

from __future__ import annotations

import os
import posixpath
from typing import Any

import msgspec
from berth_contracts.docker import ContainerConfig, HostConfig, MountPoint
from berth_contracts.errors import InvalidParameter
from berth_contracts.lifecycle import Mount

_PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
_MODES = ("ro", "rw", "z", "Z", "nocopy", *_PROPAGATIONS)
DEFAULT_PROPAGATION = "rprivate"
TMPFS_DEFAULTS = ["noexec", "nosuid", "nodev"]


class MountEntry(msgspec.Struct, kw_only=True):
    """One mount of a container, as the engine keeps it in the record."""

    type: str  # bind | volume | tmpfs
    destination: str
    source: str = ""  # host path: the bind source, or "" for a volume until it exists
    name: str = ""  # volume name ("" = anonymous, named at create)
    rw: bool = True
    mode: str = ""
    propagation: str = ""
    copy_up: bool = False  # fill an empty volume from the image (not with nocopy)
    tmpfs_options: list[str] = msgspec.field(default_factory=list)
    listed: bool = True  # shown in inspect's Mounts (`--tmpfs` mounts are not, as in moby)
    volume_labels: dict[str, str] = msgspec.field(default_factory=dict)


def _clean_dest(dest: str, spec: str) -> str:
    if not dest.startswith("/"):
        raise InvalidParameter(
            f"invalid volume specification: '{spec}': invalid mount config for type \"volume\": "
            f"invalid mount path: '{dest}' mount path must be absolute"
        )
    cleaned = posixpath.normpath(dest)
    if cleaned == "/":
        raise InvalidParameter(
            f"invalid volume specification: '{spec}': invalid mount config: "
            "destination can't be '/'"
        )
    return cleaned


def parse_bind(spec: str) -> MountEntry:
    """`-v src:dst[:mode]`: an absolute src is a bind, anything else a named volume."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    src, dst = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    flags = [f for f in mode.split(",") if f] if mode else []
    if any(f not in _MODES for f in flags) or ("ro" in flags and "rw" in flags):
        raise InvalidParameter(f"invalid mode: {mode}")
    rw = "ro" not in flags
    propagation = next((f for f in flags if f in _PROPAGATIONS), "")
    dest = _clean_dest(dst, spec)
    if src.startswith("/"):
        if "nocopy" in flags:
            raise InvalidParameter(f"invalid mode: {mode}")
        return MountEntry(
            type="bind",
            source=posixpath.normpath(src),
            destination=dest,
            rw=rw,
            mode=mode,
            propagation=propagation or DEFAULT_PROPAGATION,
        )
    if propagation:
        raise InvalidParameter(f"invalid mode: {mode}")
    return MountEntry(
        type="volume",
        name=src,
        destination=dest,
        rw=rw,
        mode=mode or "z",
        copy_up="nocopy" not in flags,
    )


def parse_mount(m: dict[str, Any]) -> MountEntry:
    """One HostConfig.Mounts entry (`--mount type=...`)."""
    mtype = m.get("Type") or ""
    target = m.get("Target") or ""
    source = m.get("Source") or ""
    readonly = bool(m.get("ReadOnly"))
    if not target:
        raise InvalidParameter(
            f'invalid mount config for type "{mtype}": field Target must not be empty'
        )
    if not target.startswith("/"):
        raise InvalidParameter(
            f"invalid mount config for type \"{mtype}\": invalid mount path: '{target}' "
            "mount path must be absolute"
        )
    dest = posixpath.normpath(target)
    if mtype == "bind":
        if not source:
            raise InvalidParameter(
                'invalid mount config for type "bind": field Source must not be empty'
            )
        if not os.path.exists(source):
            raise InvalidParameter(
                f'invalid mount config for type "bind": bind source path does not exist: {source}'
            )
        opts = m.get("BindOptions") or {}
        return MountEntry(
            type="bind",
            source=posixpath.normpath(source),
            destination=dest,
            rw=not readonly,
            propagation=opts.get("Propagation") or DEFAULT_PROPAGATION,
        )
    if mtype == "volume":
        vopts = m.get("VolumeOptions") or {}
        driver = (vopts.get("DriverConfig") or {}).get("Name") or "local"
        if driver != "local":
            raise InvalidParameter(f"berth supports only the local volume driver, not {driver!r}")
        return MountEntry(
            type="volume",
            name=source,
            destination=dest,
            rw=not readonly,
            mode="z",
            copy_up=not vopts.get("NoCopy"),
            volume_labels=dict(vopts.get("Labels") or {}),
        )
    if mtype == "tmpfs":
        if source:
            raise InvalidParameter(
                'invalid mount config for type "tmpfs": field Source must not be specified'
            )
        topts = m.get("TmpfsOptions") or {}
        extra: list[str] = []
        if topts.get("SizeBytes"):
            extra.append(f"size={int(topts['SizeBytes'])}")
        if topts.get("Mode"):
            extra.append(f"mode={int(topts['Mode']):o}")
        if readonly:
            extra.append("ro")
        return MountEntry(
            type="tmpfs", destination=dest, rw=not readonly, tmpfs_options=TMPFS_DEFAULTS + extra
        )
    raise InvalidParameter(f'invalid mount config for type "{mtype}": mount type unknown')


def parse_tmpfs(dest: str, data: str) -> MountEntry:
    """`--tmpfs /dst[:opts]`: options after the defaults (later ones win in the kernel)."""
    if not dest.startswith("/"):
        raise InvalidParameter(f"invalid mount path: '{dest}' mount path must be absolute")
    extra = [o for o in data.split(",") if o] if data else []
    return MountEntry(
        type="tmpfs",
        destination=posixpath.normpath(dest),
        rw="ro" not in extra,
        tmpfs_options=TMPFS_DEFAULTS + extra,
        listed=False,
    )


def parse_all(hc: HostConfig, config: ContainerConfig) -> list[MountEntry]:
    """Every mount of a new container; image/Config volumes not covered become anonymous."""
    entries = [parse_bind(b) for b in hc.binds or []]
    entries += [parse_mount(m) for m in hc.mounts or []]
    entries += [parse_tmpfs(d, o) for d, o in (hc.tmpfs or {}).items()]
    seen: set[str] = set()
    for e in entries:
        if e.destination in seen:
            raise InvalidParameter(f"Duplicate mount point: {e.destination}")
        seen.add(e.destination)
    for dest in config.volumes or {}:
        cleaned = posixpath.normpath(dest) if dest.startswith("/") else ""
        if not cleaned or cleaned in seen:
            continue
        seen.add(cleaned)
        entries.append(MountEntry(type="volume", destination=cleaned, mode="", copy_up=True))
    # Parents before children, so a volume inside a bind lands on top (moby sorts the same way).
    entries.sort(key=lambda e: e.destination.count("/"))
    return entries


def oci_mounts(entries: list[MountEntry]) -> list[Mount]:
    out: list[Mount] = []
    for e in entries:
        if e.type == "tmpfs":
            out.append(
                Mount(
                    type="tmpfs",
                    source="tmpfs",
                    target=e.destination,
                    options=[*e.tmpfs_options, DEFAULT_PROPAGATION],
                )
            )
            continue
        opts = ["rbind", e.propagation or DEFAULT_PROPAGATION]
        if not e.rw:
            opts.append("ro")
        out.append(Mount(type="bind", source=e.source, target=e.destination, options=opts))
    return out


def mount_points(entries: list[MountEntry]) -> list[MountPoint]:
    """inspect's Mounts (and the list's)."""
    return [
        MountPoint(
            type=e.type,
            name=e.name if e.type == "volume" else "",
            source=e.source,
            destination=e.destination,
            driver="local" if e.type == "volume" else "",
            mode=e.mode,
            rw=e.rw,
            propagation=e.propagation if e.type == "bind" else "",
        )
        for e in entries
        if e.listed
    ]
