"""The engine's RPC surface (subjects.ENGINE_RPC): what the api-gateway asks of dockerd's role."""

from __future__ import annotations

from typing import Literal

import msgspec

from berth_contracts.archives import ContainerArchive
from berth_contracts.base import Command, Done, Ping, Pong, Reply  # noqa: F401 - Done, Pong re-exported
from berth_contracts.containerops import (
    ContainerPause,
    ContainerStats,
    ContainerTop,
    ContainerUnpause,
    ContainerUpdate,
)
from berth_contracts.distribution import DistributionInspect, ImagePush, ImageSave, RegistryLogin
from berth_contracts.docker import (
    ContainerInspect,
    ContainerSummary,
    CreateRequest,
    ImageDeleteItem,
    ImageInspect,
    ImageSummary,
)
from berth_contracts.eventlog import EventHistory
from berth_contracts.execs import ExecCreate, ExecGet, ExecResize, ExecStart
from berth_contracts.identifiers import Subject
from berth_contracts.imaging import (
    ContainerChanges,
    ContainerCommit,
    ContainerExport,
    ImageCacheLookup,
    ImageHistoryGet,
    SystemDf,
)
from berth_contracts.networks import (
    NetworkConnect,
    NetworkCreate,
    NetworkDisconnect,
    NetworkGet,
    NetworkList,
    NetworkPrune,
    NetworkRemove,
)
from berth_contracts.volumes import (
    VolumeCreate,
    VolumeGet,
    VolumeList,
    VolumePrune,
    VolumeRemove,
)

Filters = dict[str, list[str]]

# --- containers ----------------------------------------------------------------------------------


class ContainerCreate(Command, frozen=True):
    body: CreateRequest
    name: str = ""
    platform: str = ""
    # The builder's `FROM scratch` step: no image at all (body.image is empty), an empty rootfs.
    scratch: bool = False


class ContainerCreated(Reply, frozen=True):
    id: str
    warnings: list[str] = msgspec.field(default_factory=list)


class ContainerStart(Command, frozen=True):
    ref: str


class ContainerStop(Command, frozen=True):
    ref: str
    timeout: int | None = None  # seconds; None = the container's StopTimeout or 10
    signal: str = ""  # "" = the container's StopSignal or SIGTERM


class ContainerKill(Command, frozen=True):
    ref: str
    signal: str = "KILL"  # "KILL", "SIGKILL" or "9"


class ContainerRemove(Command, frozen=True):
    ref: str
    force: bool = False
    volumes: bool = False
    link: bool = False  # ?link=1: remove the legacy link named by ref ("/parent/alias")


class ContainerGet(Command, frozen=True):
    """Inspect."""

    ref: str
    size: bool = False


class ContainerList(Command, frozen=True):
    all: bool = False
    limit: int = -1
    size: bool = False
    filters: Filters = msgspec.field(default_factory=dict)


class ContainerDetail(Reply, frozen=True):
    container: ContainerInspect


class ContainerListing(Reply, frozen=True):
    items: list[ContainerSummary]


class ContainerResolve(Command, frozen=True):
    """Look a container up by id, name or unique id prefix; what stream endpoints need."""

    ref: str


ContainerStatus = Literal["created", "running", "paused", "restarting", "removing", "exited", "dead"]


class ContainerRef(Reply, frozen=True):
    id: str
    name: str  # without the leading "/"
    status: ContainerStatus
    tty: bool
    open_stdin: bool
    stdin_once: bool
    auto_remove: bool
    exit_code: int = 0


class ContainerLogs(Command, frozen=True):
    """Stream the container's log as LogBatch messages to stream_subject; reply once validated."""

    ref: str
    stream_subject: Subject
    stdout: bool = True
    stderr: bool = True
    follow: bool = False
    tail: int = -1  # -1 = all
    since: float = 0.0  # unix seconds; 0 = from the start
    until: float = 0.0  # unix seconds; 0 = no limit
    timestamps: bool = False


class LogsStarted(Reply, frozen=True):
    tty: bool


class ContainerResize(Command, frozen=True):
    """Set a TTY container's window size (POST /containers/{id}/resize); Done when applied.

    Not running → Conflict("container <id> is not running"); without a TTY it is a no-op.
    """

    ref: str
    height: int
    width: int


class ContainerRename(Command, frozen=True):
    """POST /containers/{id}/rename?name=: Done; publishes a `rename` event (oldName)."""

    ref: str
    name: str


class ContainerPrune(Command, frozen=True):
    """POST /containers/prune: remove every stopped container the filters select
    (`until`: unix time, RFC3339 or Go duration; `label` / `label!`: `k` or `k=v`)."""

    filters: Filters = msgspec.field(default_factory=dict)


class ContainersPruned(Reply, frozen=True):
    containers_deleted: list[str]  # ids
    space_reclaimed: int = 0


# --- images --------------------------------------------------------------------------------------


class ImageList(Command, frozen=True):
    all: bool = False
    filters: Filters = msgspec.field(default_factory=dict)


class ImageListing(Reply, frozen=True):
    items: list[ImageSummary]


class ImageGet(Command, frozen=True):
    ref: str


class ImageDetail(Reply, frozen=True):
    image: ImageInspect


class ImageRemove(Command, frozen=True):
    ref: str
    force: bool = False
    noprune: bool = False


class ImageRemoved(Reply, frozen=True):
    items: list[ImageDeleteItem]


class ImageTag(Command, frozen=True):
    ref: str
    repo: str
    tag: str = ""


UploadKind = Literal["load", "import"]


class ImageUpload(Command, frozen=True):
    """Ask where to send the bytes of `docker load` / `docker import`.

    Bulk bytes never travel over NATS: the reply names an HTTP URL of the lifecycle service;
    the caller POSTs the archive there and relays the JSON-lines progress it answers with.
    """

    kind: UploadKind
    repo: str = ""
    tag: str = ""
    message: str = ""
    changes: list[str] = msgspec.field(default_factory=list)
    quiet: bool = False


class UploadTarget(Reply, frozen=True):
    url: str  # http://host:port/path or http+unix://<percent-encoded socket path>/path


class ImagePull(Command, frozen=True):
    """`docker pull`: resolve `ref` (+ `tag`, which may be a digest) at its registry, through
    registry-proxy, and hand out where to fetch the progress stream.

    Errors found before any download (bad reference, unknown repository or tag, no manifest
    for the platform, registry unreachable) are the reply's error. The reply is an
    UploadTarget: the caller POSTs (empty body) to its URL and relays the answer, Docker's
    JSON-lines progress ending in `Status: ...` or an errorDetail line. Served by the engine
    (EngineRequest) and by lifecycle (LifecycleRequest), like ImageUpload.
    """

    ref: str
    tag: str = ""
    platform: str = ""  # "os/arch[/variant]"; "" = the host's
    # The client sent credentials: they come with the POST (X-Registry-Auth), never on NATS, so
    # resolving waits for it and lifecycle then talks to the registry directly (not the proxy).
    credentials: bool = False


class ImagePrune(Command, frozen=True):
    """POST /images/prune: delete images no container uses; only dangling ones unless the
    filter says dangling=false (`docker image prune -a`). Filters: dangling, until, label, label!."""

    filters: Filters = msgspec.field(default_factory=dict)


class ImagesPruned(Reply, frozen=True):
    items: list[ImageDeleteItem]
    space_reclaimed: int = 0


# --- system --------------------------------------------------------------------------------------


class SystemInfo(Command, frozen=True):
    pass


class EngineInfo(Reply, frozen=True):
    id: str
    name: str
    containers: int
    running: int
    paused: int
    stopped: int
    images: int
    data_root: str
    kernel_version: str
    operating_system: str
    ncpu: int
    mem_total: int
    cgroup_version: str
    runtime_version: str


EngineRequest = (
    ContainerCreate
    | ContainerStart
    | ContainerStop
    | ContainerKill
    | ContainerRemove
    | ContainerGet
    | ContainerList
    | ContainerResolve
    | ContainerLogs
    | ContainerResize
    | ContainerPrune
    | ContainerRename
    | ImageList
    | ImageGet
    | ImageRemove
    | ImageTag
    | ImageUpload
    | ImagePull
    | ImagePrune
    | ImageSave
    | ImagePush
    | RegistryLogin
    | DistributionInspect
    | SystemInfo
    | ContainerArchive
    | NetworkCreate
    | NetworkGet
    | NetworkList
    | NetworkRemove
    | NetworkConnect
    | NetworkDisconnect
    | NetworkPrune
    | VolumeCreate
    | VolumeGet
    | VolumeList
    | VolumeRemove
    | VolumePrune
    | ExecCreate
    | ExecGet
    | ExecStart
    | ExecResize
    | EventHistory
    | ContainerPause
    | ContainerUnpause
    | ContainerUpdate
    | ContainerTop
    | ContainerStats
    | ContainerCommit
    | ContainerChanges
    | ContainerExport
    | ImageHistoryGet
    | ImageCacheLookup
    | SystemDf
    | Ping
)
