"""`docker cp`: the archive API (GET/PUT/HEAD /containers/{id}/archive).

The gateway asks the engine (ContainerArchive on subjects.ENGINE_RPC); the engine asks lifecycle
(ArchiveOpen on subjects.lifecycle_rpc(node)), which owns the container's filesystem. A "stat"
answers at once; "get" and "put" answer with a single-use URL of lifecycle's HTTP listener that
the gateway POSTs to (the tar comes back, or goes there as the body): bulk bytes never cross NATS.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from berth_contracts.base import Command, Reply
from berth_contracts.identifiers import Identifier

ArchiveMode = Literal["stat", "get", "put"]


class PathStat(msgspec.Struct, frozen=True):
    """Docker's container path stat (the X-Docker-Container-Path-Stat header, base64 JSON)."""

    name: str
    size: int
    mode: int  # Go's os.FileMode bits
    mtime: str  # RFC3339
    linkTarget: str = ""  # noqa: N815 - Docker's JSON name


class ArchiveMount(msgspec.Struct, frozen=True):
    """A volume or bind of a stopped container, mounted over its snapshot for the copy."""

    source: str
    target: str
    readonly: bool = False


class ContainerArchive(Command, frozen=True):
    ref: str
    path: str
    mode: ArchiveMode = "stat"
    no_overwrite_dir_non_dir: bool = False
    make_parents: bool = False  # put: create the path (0755) when missing (builder COPY)
    parents_owner: tuple[int, int] = (0, 0)  # uid, gid of the directories make_parents creates


class ArchiveOpen(Command, frozen=True):
    """Lifecycle: the container `key`'s filesystem; pid > 0 = running (its mount namespace is
    used as it is), else the snapshot is mounted with `mounts` (volumes, binds) on top."""

    key: Identifier
    path: str
    container_id: Identifier
    mode: ArchiveMode = "stat"
    pid: int = 0
    mounts: list[ArchiveMount] = msgspec.field(default_factory=list)
    no_overwrite_dir_non_dir: bool = False
    make_parents: bool = False
    parents_owner: tuple[int, int] = (0, 0)


class ArchiveOpened(Reply, frozen=True):
    stat: PathStat | None = None  # for get (the source) and stat; None for put
    url: str = ""  # get / put: POST here (http://host:port/archives/<token>)
