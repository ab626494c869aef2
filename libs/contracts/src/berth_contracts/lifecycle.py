"""The lifecycle service's RPC surface (subjects.lifecycle_rpc(node)): containerd's role.

Lifecycle owns content (blobs by digest), image records (names → image id, config, layers) and
snapshots (overlayfs layer chains plus one writable layer per container). It hands out mount
specs; the runtime side performs the mounts.
"""

from __future__ import annotations

import msgspec

from berth_contracts.base import Command, Done, Ping, Reply
from berth_contracts.docker import ContainerConfig
from berth_contracts.engine import ImagePull, ImageUpload, UploadTarget
from berth_contracts.identifiers import Identifier

__all__ = ["Done", "ImagePull", "ImageUpload", "UploadTarget"]


class Mount(msgspec.Struct, frozen=True):
    """One mount, as in an OCI runtime spec: `mount -t type -o options source target`."""

    type: str
    source: str
    target: str
    options: list[str] = msgspec.field(default_factory=list)


class ImageRecord(msgspec.Struct, frozen=True):
    id: str  # "sha256:<hex>" of the image config blob
    repo_tags: list[str]  # familiar form, e.g. "busybox:latest", "127.0.0.1:5000/x:1"
    repo_digests: list[str]
    created: str  # RFC3339Nano
    size: int  # bytes of the unpacked layers
    config: ContainerConfig
    diff_ids: list[str]
    architecture: str = "amd64"
    os: str = "linux"
    variant: str = ""
    author: str = ""
    comment: str = ""
    docker_version: str = ""
    parent: str = ""
    last_tag_time: str = "0001-01-01T00:00:00Z"


class ImageResolve(Command, frozen=True):
    """Find an image by id, unique id prefix, name[:tag] or name@digest."""

    ref: str


class ImageFound(Reply, frozen=True):
    image: ImageRecord


class ImageListAll(Command, frozen=True):
    pass


class ImageRecords(Reply, frozen=True):
    images: list[ImageRecord]


class ImageTagAdd(Command, frozen=True):
    ref: str
    repo: str
    tag: str = ""


class ImageDelete(Command, frozen=True):
    """Untag `ref`; delete the image when no name is left (or when ref is an id).

    The engine, which knows the containers, has already refused the removal of an image in use
    unless it is forced; lifecycle still never deletes layers a snapshot depends on.
    """

    ref: str
    force: bool = False
    noprune: bool = False


class ImageDeleted(Reply, frozen=True):
    untagged: list[str]
    deleted: list[str]


class SnapshotPrepare(Command, frozen=True):
    """Make the writable layer `key` on top of the image's layers; reply with the rootfs mounts."""

    key: Identifier
    image_id: str


class SnapshotGetMounts(Command, frozen=True):
    key: Identifier


class SnapshotMounts(Reply, frozen=True):
    mounts: list[Mount]  # targets are relative to the rootfs ("/")


class SnapshotRemove(Command, frozen=True):
    key: Identifier
    measure: bool = False  # size the writable layer before removing it (prune's SpaceReclaimed)


class SnapshotRemoved(Reply, frozen=True):
    size: int = 0  # bytes of the writable layer, as moby's directory.Size counts; 0 unmeasured


from berth_contracts.archives import ArchiveOpen  # noqa: E402 - no cycle: archives is a leaf
from berth_contracts.distribution import (  # noqa: E402 - a leaf too
    DistributionInspect,
    ImagePush,
    ImageSave,
    RegistryLogin,
)
from berth_contracts.imaging import (  # noqa: E402 - no cycle: imaging does not import this
    ImageCacheLookup,
    ImageHistoryGet,
    LayerUsageGet,
    SnapshotCommit,
    SnapshotDiff,
    SnapshotExport,
)

LifecycleRequest = (
    ArchiveOpen
    | ImageResolve
    | ImageListAll
    | ImageTagAdd
    | ImageDelete
    | ImageUpload
    | ImagePull
    | ImageSave
    | ImagePush
    | RegistryLogin
    | DistributionInspect
    | SnapshotPrepare
    | SnapshotGetMounts
    | SnapshotRemove
    | SnapshotDiff
    | SnapshotCommit
    | SnapshotExport
    | ImageHistoryGet
    | ImageCacheLookup
    | LayerUsageGet
    | Ping
)
