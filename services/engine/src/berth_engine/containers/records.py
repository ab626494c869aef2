"""The engine's container record: everything dockerd keeps about one container."""

from __future__ import annotations

import msgspec
from berth_contracts.docker import (
    ZERO_TIME,
    ContainerConfig,
    CreateRequest,
    Health,
    HostConfig,
)

from berth_engine.containers.mountspec import MountEntry
from berth_engine.networks.model import Endpoint, Link, PublishedPort


class State(msgspec.Struct, kw_only=True):
    """Docker's container state, as the engine last knew it."""

    status: str = "created"  # created|running|paused|restarting|removing|exited|dead
    pid: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    error: str = ""
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    health: Health | None = None  # with a healthcheck: State.Health


class Record(msgspec.Struct, kw_only=True):
    id: str
    name: str  # without the leading "/"
    created: str  # RFC3339Nano
    request: CreateRequest  # the create body as the client sent it
    config: ContainerConfig  # merged with the image's config
    host_config: HostConfig
    path: str  # final command: executable ...
    args: list[str]  # ... and its arguments
    image_id: str  # sha256:<hex>
    image_name: str  # as the client gave it
    node: str
    state: State = msgspec.field(default_factory=State)
    restart_count: int = 0
    log_path: str = ""
    traceparent: str = ""
    has_task: bool = False  # the agent holds a task (created or running) for this container
    agent_used: bool = False  # a TaskCreate was sent: the agent may keep a log for it
    manually_stopped: bool = False  # stopped through the API: restart policies stand down
    mounts: list[MountEntry] = msgspec.field(default_factory=list)  # binds, volumes, tmpfs
    endpoints: list[Endpoint] = msgspec.field(default_factory=list)  # bridge networks joined
    ports: list[PublishedPort] = msgspec.field(default_factory=list)  # published, this run
    links: list[Link] = msgspec.field(default_factory=list)  # legacy links (--link), by child id
    link_env: list[str] = msgspec.field(default_factory=list)  # their variables, this run

    @property
    def running(self) -> bool:
        """Docker's State.Running: true while restarting too."""
        return self.state.status in ("running", "paused", "restarting")

    @property
    def alive(self) -> bool:
        """A process exists (what exits and signals are about)."""
        return self.state.status in ("running", "paused")

    @property
    def short_id(self) -> str:
        return self.id[:12]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Record)


def encode_record(rec: Record) -> bytes:
    return _encoder.encode(rec)


def decode_record(data: bytes) -> Record:
    return _decoder.decode(data)
