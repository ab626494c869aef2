"""`docker diff` and `docker commit` on lifecycle's side: the writable layer read by the confined
snapshot_child, its tar stored as a new layer on top of the container's image."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import msgspec
from anyio import to_thread
from berth_common.gotime import ZERO_TIME, rfc3339nano
from berth_common.mounts import mountinfo
from berth_contracts.docker import ContainerConfig
from berth_contracts.errors import InternalError, NotFound
from berth_contracts.imaging import (
    Change,
    ChangeList,
    SnapshotCommit,
    SnapshotCommitted,
    SnapshotDiff,
)

from berth_lifecycle.content import IngestWriter
from berth_lifecycle.imageconfig import apply_changes, parse_config
from berth_lifecycle.images import Images
from berth_lifecycle.layers import chain_ids
from berth_lifecycle.metadata import ImageRow
from berth_lifecycle.reference import parse_repo_tag

CHILD_TIMEOUT = 3600.0  # a big writable layer on a slow disk; a hung child is killed after it
DOCKER_VERSION = "berth"

# A build step on `FROM scratch`: no parent image, no layers.
SCRATCH = ImageRow(
    id="", config=b"{}", diff_ids=[], chain_ids=[], layer_blobs=[], size=0, added="", last_tag_time=ZERO_TIME
)

def _child_argv(spec: dict[str, Any]) -> list[str]:
    # -I: nothing from the environment or the working directory on the import path.
    return [sys.executable, "-I", "-m", "berth_lifecycle.snapshot_child", json.dumps(spec)]


async def run_child(spec: dict[str, Any], pass_fds: tuple[int, ...] = ()) -> Any:
    with anyio.fail_after(CHILD_TIMEOUT):
        res = await anyio.run_process(_child_argv(spec), check=False, cwd="/", pass_fds=pass_fds)
    if res.returncode != 0:
        lines = res.stderr.decode(errors="replace").strip().splitlines()
        raise InternalError(f"reading the container's layer: {lines[-1] if lines else res.returncode}")
    return json.loads(res.stdout)


def _in_use_as_upper(upper: Path) -> bool:
    """Whether an overlay this process can see still writes to `upper` (a task whose unmount
    failed): then the layer is copied, not taken."""
    try:
        return any(f"upperdir={upper}" in options for _, kind, options in mountinfo() if kind == "overlay")
    except OSError:
        return True


def _is_empty_dir(path: Path) -> bool:
    with os.scandir(path) as entries:
        return next(entries, None) is None


def merge_config(user: ContainerConfig, image: ContainerConfig) -> ContainerConfig:
    """moby's daemon/commit.go merge(): what the new config leaves empty comes from `image`."""
    out = msgspec.structs.asdict(user)
    if not user.user:
        out["user"] = image.user
    out["exposed_ports"] = {**(image.exposed_ports or {}), **(user.exposed_ports or {})} or None
    keys = {e.split("=", 1)[0] for e in user.env or []}
    env = list(user.env or []) + [e for e in image.env or [] if e.split("=", 1)[0] not in keys]
    out["env"] = env or None
    out["labels"] = {**(image.labels or {}), **(user.labels or {})}
    if not user.entrypoint:
        if not user.cmd:
            out["cmd"], out["args_escaped"] = image.cmd, image.args_escaped
        if user.entrypoint is None:
            out["entrypoint"] = image.entrypoint
    if user.healthcheck is None:
        out["healthcheck"] = image.healthcheck
    out["working_dir"] = user.working_dir or image.working_dir
    out["volumes"] = {**(image.volumes or {}), **(user.volumes or {})} or None
    out["stop_signal"] = user.stop_signal or image.stop_signal
    return ContainerConfig(**out)


class Committer:
    def __init__(self, images: Images, scratch: Path) -> None:
        self.images = images
        self.snapshots = images.snapshots
        self.scratch = scratch  # mount points of the diff child, in its own namespace only
        for sub in ("upper", "lower"):
            (scratch / sub).mkdir(parents=True, exist_ok=True, mode=0o700)

    async def diff(self, cmd: SnapshotDiff) -> ChangeList:
        upper, lowers = await self.snapshots.layer_dirs(cmd.key)
        spec = {"mode": "diff", "upper": str(upper), "lowers": [str(p) for p in lowers],
                "scratch": str(self.scratch)}  # fmt: skip
        found = await run_child(spec)
        return ChangeList(changes=[Change(Path=p, Kind=k) for p, k in found])

    async def commit(self, cmd: SnapshotCommit) -> SnapshotCommitted:
        names = [parse_repo_tag(cmd.repo, cmd.tag)] if cmd.repo else []  # bad names before work
        config = apply_changes(cmd.changes, cmd.config, commit=True)
        if cmd.merge:
            config = merge_config(config, cmd.container_config)
        parent = await self.images.resolve(cmd.image_id) if cmd.image_id else SCRATCH
        upper, _ = await self.snapshots.layer_dirs(cmd.key)
        if await to_thread.run_sync(_is_empty_dir, upper):
            # Nothing written (a build's metadata step): no tar to read, no child to start.
            doc = self._config(cmd, parent, config, "", True)
            image_id = await self._store(parent, doc, None, None)
        else:
            image_id = await self._commit_layer(cmd, parent, config, upper)
        ref = ""
        if names:
            await self.images.tag(image_id, cmd.repo, cmd.tag)
            ref = names[0].familiar()
        return SnapshotCommitted(id=image_id, ref=ref)

    async def _commit_layer(
        self, cmd: SnapshotCommit, parent: ImageRow, config: ContainerConfig, upper: Path
    ) -> str:
        writer = await to_thread.run_sync(self.images.content.writer)
        try:
            take = cmd.take_upper and not await to_thread.run_sync(_in_use_as_upper, upper)
            spec = {"mode": "layer", "upper": str(upper), "out_fd": writer.fileno(), "take": take}
            layer = await run_child(spec, pass_fds=(writer.fileno(),))
            doc = self._config(cmd, parent, config, str(layer["diff_id"]), bool(layer["empty"]))
            return await self._store(
                parent, doc, None if layer["empty"] else writer, upper if take else None
            )
        finally:
            await to_thread.run_sync(writer.abort)

    @staticmethod
    def _config(
        cmd: SnapshotCommit, parent: ImageRow, config: ContainerConfig, diff_id: str, empty: bool
    ) -> bytes:
        """The image config as moby's NewChildImage writes it (plus `parent`, which moby keeps
        in its image store's metadata and berth keeps in the config)."""
        base = parse_config(parent.config)
        created = rfc3339nano()
        entry: dict[str, Any] = {"created": created}
        if cmd.author:
            entry["author"] = cmd.author
        entry["created_by"] = " ".join(cmd.container_config.cmd or [])
        if cmd.comment:
            entry["comment"] = cmd.comment
        if empty:
            entry["empty_layer"] = True
        raw = base.get("history")
        history: list[Any] = raw if isinstance(raw, list) else []
        doc: dict[str, Any] = {
            "architecture": base.get("architecture") or "amd64",
            "config": msgspec.to_builtins(config),
            "container": cmd.container_id,
            "container_config": msgspec.to_builtins(cmd.container_config),
            "created": created,
            "docker_version": DOCKER_VERSION,
            "history": [*history, entry],
            "os": base.get("os") or "linux",
            "rootfs": {"type": "layers", "diff_ids": [*parent.diff_ids, *([] if empty else [diff_id])]},
        }
        if parent.id:  # FROM scratch: none, as moby
            doc["parent"] = parent.id
        if cmd.author:
            doc["author"] = cmd.author
        if cmd.comment:
            doc["comment"] = cmd.comment
        if base.get("variant"):
            doc["variant"] = base["variant"]
        return json.dumps(doc, separators=(",", ":")).encode()

    async def _store(
        self, parent: ImageRow, config: bytes, layer: IngestWriter | None, take: Path | None
    ) -> str:
        """Unpack the new layer (berth's own applier: what runs is what the tar says), or take
        the writable layer `take` itself as it (made what its tar holds), then commit the blobs
        and record the image, as Images.store does for a load."""
        doc = parse_config(config)
        diff_ids: list[str] = doc["rootfs"]["diff_ids"]
        chains = chain_ids(diff_ids)
        self.snapshots.pin(chains)
        try:
            if not await to_thread.run_sync(self.snapshots.has_layers, chains[: len(parent.diff_ids)]):
                raise NotFound(f"layers of image {parent.id} are not unpacked")
            size = parent.size
            blobs = list(parent.layer_blobs)
            if layer is not None:
                await to_thread.run_sync(layer.rehash)
                top = len(chains) - 1
                below = chains[top - 1] if top else ""
                if take is not None:
                    size += await self.snapshots.take_layer(chains[top], below, take)
                else:
                    size += await self.snapshots.ensure_layer(chains[top], below, layer.path, diff_ids[top], top)
            async with self.images.lock:
                if layer is not None:
                    blobs.append(await to_thread.run_sync(layer.commit))
                image_id = await to_thread.run_sync(self.images.content.write_bytes, config)
                row = ImageRow(
                    id=image_id, config=config, diff_ids=diff_ids, chain_ids=chains, layer_blobs=blobs,
                    size=size, added=rfc3339nano(), last_tag_time=ZERO_TIME,
                )  # fmt: skip
                await to_thread.run_sync(self.images.meta.put_image, row, [], rfc3339nano())
        finally:
            self.snapshots.unpin(chains)
        return image_id
