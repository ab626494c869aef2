"""Images from containers and disk usage: `docker commit`, `diff`, `export`, `history`, `system df`.

The gateway asks the engine (subjects.ENGINE_RPC), which knows the container (its config, its
state, pause); lifecycle (subjects.lifecycle_rpc(node)) owns the writable layer and the images,
so it walks, tars and stores. An export is bulk bytes: lifecycle answers a single-use URL of its
HTTP listener that the gateway POSTs to and streams back (never over NATS), as `docker cp` does.
"""

from __future__ import annotations

import msgspec

from berth_contracts.base import Command, Reply
from berth_contracts.docker import ContainerConfig, ContainerSummary, ImageSummary
from berth_contracts.identifiers import Identifier
from berth_contracts.volumes import Volume

# --- engine commands -----------------------------------------------------------------------------


class ContainerCommit(Command, frozen=True):
    """POST /commit?container=...: a new image from the container's writable layer."""

    ref: str
    repo: str = ""
    tag: str = ""
    author: str = ""
    comment: str = ""
    changes: list[str] = msgspec.field(default_factory=list)
    pause: bool = True
    config: ContainerConfig | None = None  # the request body; None = the container's config
    # The builder's step commit (moby's CommitBuildStep): `config` is the image config as it
    # is, `container_config` (the step's cache key, whose Cmd is the history text) is recorded
    # instead of the container's; no merge, no pause, no `commit` event.
    build_step: bool = False
    container_config: ContainerConfig | None = None
    # A build step whose container the builder removes next: its writable layer becomes the
    # new layer as it is (not unpacked again from its tar); the container is left empty.
    consume: bool = False


class ContainerCommitted(Reply, frozen=True):
    id: str  # "sha256:<hex>"


class ContainerChanges(Command, frozen=True):
    """GET /containers/{id}/changes."""

    ref: str


class Change(msgspec.Struct, frozen=True):
    Path: str  # noqa: N815 - Docker's JSON names
    Kind: int  # 0 modified, 1 added, 2 deleted


class ChangeList(Reply, frozen=True):
    changes: list[Change]


class ContainerExport(Command, frozen=True):
    """GET /containers/{id}/export."""

    ref: str


class ExportTarget(Reply, frozen=True):
    url: str  # POST here (no body): the tar of the container's whole filesystem comes back


class ImageHistoryGet(Command, frozen=True):
    """GET /images/{name}/history (engine and lifecycle alike)."""

    ref: str


class HistoryItem(msgspec.Struct, frozen=True):
    Id: str  # noqa: N815 - Docker's JSON names
    Created: int  # noqa: N815
    CreatedBy: str  # noqa: N815
    Tags: list[str] | None  # noqa: N815
    Size: int  # noqa: N815
    Comment: str  # noqa: N815


class HistoryItems(Reply, frozen=True):
    items: list[HistoryItem]


class SystemDf(Command, frozen=True):
    """GET /system/df; `types` (API 1.42+) limits the answer to some of container, image,
    volume, build-cache (empty = all)."""

    types: list[str] = msgspec.field(default_factory=list)


class VolumeUsage(msgspec.Struct, frozen=True):
    volume: Volume
    size: int
    ref_count: int


class DiskUsage(Reply, frozen=True):
    layers_size: int = 0
    images: list[ImageSummary] | None = None
    containers: list[ContainerSummary] | None = None
    volumes: list[VolumeUsage] | None = None


# --- lifecycle commands --------------------------------------------------------------------------


class SnapshotDiff(Command, frozen=True):
    key: Identifier


class SnapshotCommit(Command, frozen=True):
    """Store the writable layer `key` as a new image on top of `image_id`.

    `config` is the image config to start from (the container's, or the request's), the
    changes are applied to it and what is still empty is filled from `container_config`, as
    moby's commit merges them.
    """

    key: Identifier
    container_id: Identifier
    image_id: str
    container_config: ContainerConfig
    config: ContainerConfig
    changes: list[str] = msgspec.field(default_factory=list)
    author: str = ""
    comment: str = ""
    repo: str = ""
    tag: str = ""
    merge: bool = True  # False: `config` as it is (a build step)
    # The container is stopped and goes next (its task deleted, so nothing is mounted on it):
    # the writable layer is made what its tar holds and renamed into the new snapshot.
    take_upper: bool = False


class SnapshotCommitted(Reply, frozen=True):
    id: str
    ref: str = ""  # the familiar name tagged, if any


class ImageCacheLookup(Command, frozen=True):
    """The classic build cache (moby's getLocalCachedImage): the newest child image of
    `parent` ("" = FROM scratch: images without a parent) whose container_config matches
    (Cmd, Env, Labels, ExposedPorts, Entrypoint, Volumes, User, Tty, attach flags). Engine
    and lifecycle alike."""

    parent: str
    container_config: ContainerConfig
    # `docker build --cache-from`: images (references) whose history the step may also match
    # (moby's image/cache.ImageCache); a local hit then counts only within their parent chains.
    cache_from: list[str] = msgspec.field(default_factory=list)


class ImageCacheHit(Reply, frozen=True):
    id: str = ""  # "" = no cached image


class SnapshotExport(Command, frozen=True):
    key: Identifier


class LayerUsageGet(Command, frozen=True):
    """Sizes for `system df`: every image's own and shared bytes, every writable layer's."""


class ImageLayerUsage(msgspec.Struct, frozen=True):
    id: str
    size: int
    shared_size: int


class LayerUsage(Reply, frozen=True):
    layers_size: int
    images: list[ImageLayerUsage]
    writable: dict[str, int]  # snapshot key (container id) → bytes of its writable layer
