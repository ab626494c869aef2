"""The builder service's RPC surface (subjects.BUILDER_RPC): dockerd's classic builder.

`POST /build` → the gateway sends BuildPrepare with the query options; the reply is an
UploadTarget, an HTTP URL of the builder where the gateway POSTs the context (a tar, possibly
compressed, or a bare Dockerfile) and relays the answer: Docker's JSON-lines build stream
(`{"stream": "Step 1/3 : FROM busybox"}`, ..., `{"aux": {"ID": ...}}`, or an errorDetail line).
The context never travels over NATS.
"""

from __future__ import annotations

import msgspec

from berth_contracts.base import Command, Ping
from berth_contracts.engine import UploadTarget

__all__ = ["BuildOptions", "BuildPrepare", "BuilderRequest", "UploadTarget"]


class BuildOptions(msgspec.Struct, frozen=True, kw_only=True):
    """The query of POST /build (api/types.ImageBuildOptions), as the gateway decoded it."""

    tags: list[str] = msgspec.field(default_factory=list)  # t (repeated)
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str | None] = msgspec.field(default_factory=dict)
    target: str = ""
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False
    quiet: bool = False  # q
    remove: bool = True  # rm
    force_remove: bool = False  # forcerm
    network_mode: str = ""
    extra_hosts: list[str] = msgspec.field(default_factory=list)
    cache_from: list[str] = msgspec.field(default_factory=list)
    platform: str = ""
    memory: int = 0
    memory_swap: int = 0
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    shm_size: int = 0
    remote: str = ""  # a URL context: refused until supported
    build_id: str = ""  # buildid: what POST /build/cancel?id= names


class BuildPrepare(Command, frozen=True):
    """Validate the options and hand out where to send the context (reply: UploadTarget)."""

    options: BuildOptions = msgspec.field(default_factory=BuildOptions)


class BuildCancel(Command, frozen=True):
    """POST /build/cancel: stop the running build started with this buildid (reply: Done).
    None running under that id is no error, as dockerd (it cancels only builds it knows)."""

    id: str


BuilderRequest = BuildPrepare | BuildCancel | Ping
