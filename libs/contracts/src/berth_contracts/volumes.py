"""Volume commands on subjects.ENGINE_RPC (dockerd's volume service lives in the engine) and the
Docker `Volume` object the API returns."""

from __future__ import annotations

import msgspec

from berth_contracts.base import Command, Reply

Filters = dict[str, list[str]]


class Volume(msgspec.Struct, rename="pascal", omit_defaults=False, frozen=True):
    """Docker's Volume (GET /volumes/{name})."""

    name: str
    driver: str = "local"
    mountpoint: str = ""
    created_at: str = ""
    labels: dict[str, str] | None = None
    scope: str = "local"
    options: dict[str, str] | None = None


class VolumeCreate(Command, frozen=True):
    """POST /volumes/create; an existing name answers the existing volume (as dockerd)."""

    name: str = ""
    driver: str = ""
    driver_opts: dict[str, str] = msgspec.field(default_factory=dict)
    labels: dict[str, str] = msgspec.field(default_factory=dict)


class VolumeGet(Command, frozen=True):
    name: str


class VolumeList(Command, frozen=True):
    filters: Filters = msgspec.field(default_factory=dict)


class VolumeRemove(Command, frozen=True):
    """DELETE /volumes/{name}: Conflict "volume is in use - [ids]" while a container uses it."""

    name: str
    force: bool = False


class VolumePrune(Command, frozen=True):
    """POST /volumes/prune: unused anonymous volumes (all unused ones with filter all=true)."""

    filters: Filters = msgspec.field(default_factory=dict)


class VolumeDetail(Reply, frozen=True):
    volume: Volume


class VolumeListing(Reply, frozen=True):
    volumes: list[Volume]


class VolumesPruned(Reply, frozen=True):
    volumes_deleted: list[str]
    space_reclaimed: int = 0
