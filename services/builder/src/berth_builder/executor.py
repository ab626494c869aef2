"""The steps of a build on the engine, as moby's builder drives the daemon (internals.go,
containerbackend.go): each step probes the classic cache, else makes a container from the
current image through the normal create path, runs it (RUN) or fills it (COPY/ADD, WORKDIR),
commits its writable layer (CommitBuildStep: the probe config recorded, no merge) and removes it.

Containers left behind: none on success (--rm), the failed step's on a RUN error unless
--force-rm (as dockerd 20.10), none when the build is cancelled (the client went away).
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import AsyncIterator
from typing import TypeVar

import anyio
import msgspec
from anyio import to_thread
from berth_common.platforms import platform_matches
from berth_contracts import subjects
from berth_contracts.archives import ArchiveOpened, ContainerArchive
from berth_contracts.base import Command, Reply
from berth_contracts.distribution import REGISTRY_AUTH_HEADER
from berth_contracts.docker import ContainerConfig, CreateRequest, HealthConfig, HostConfig
from berth_contracts.engine import (
    ContainerCreate,
    ContainerCreated,
    ContainerRemove,
    Done,
    ImageDetail,
    ImageGet,
    ImagePull,
    ImageTag,
    UploadTarget,
)
from berth_contracts.errors import BerthError, Conflict, NotFound
from berth_contracts.imaging import (
    ContainerCommit,
    ContainerCommitted,
    ImageCacheHit,
    ImageCacheLookup,
)
from berth_kit.rpc import RpcClient
from nats.aio.client import Client as NATS

from berth_builder import copyfrom, download, transfer
from berth_builder.build import BaseImage, BuildError, BuildInputs, Output, StageResults, StepDone
from berth_builder.chown import resolve_chown
from berth_builder.context import ContextError
from berth_builder.copysources import ContextHasher, CopySource
from berth_builder.copystep import CopyPlan, context_sources, plan, write_transfers
from berth_builder.dispatch import LayerStep, StageState
from berth_builder.runstep import run_container
from berth_builder.sourcetrees import ArchiveTree, DiskTree, SourceTree

R = TypeVar("R", bound=Reply)
COMMIT_TIMEOUT = 1800.0
CREATE_TIMEOUT = 120.0


def _short(cid: str) -> str:
    return cid.removeprefix("sha256:")[:12]


def _line(text: str) -> dict[str, str]:
    return {"stream": text}


class EngineExecutors:
    """Makes one EngineExecutor per build (the service's executor factory)."""

    def __init__(self, rpc: RpcClient, nc: NATS) -> None:
        self.rpc = rpc
        self.nc = nc

    def for_build(self, build: BuildInputs) -> EngineExecutor:
        return EngineExecutor(self, build)


class EngineExecutor:
    def __init__(self, engine: EngineExecutors, build: BuildInputs) -> None:
        self.rpc = engine.rpc
        self.nc = engine.nc
        self.registry_auth = build.registry_auth  # for FROM pulls only, over HTTP to lifecycle
        self.options = build.options
        self.context = build.context
        self.hasher = ContextHasher(build.context.index)
        self.work = posixpath.dirname(build.context.root.rstrip("/"))  # the build's own directory
        self.cache_busted = build.options.no_cache

    async def _engine(
        self, cmd: Command, reply: type[R], *, within: float = 60.0, attempts: int = 3
    ) -> R:
        return await self.rpc.request(
            subjects.ENGINE_RPC, cmd, reply, timeout=within, attempts=attempts
        )

    # --- base image and tags -----------------------------------------------------------------

    async def base_image(self, ref: str, *, pull: bool, platform: str) -> AsyncIterator[Output]:
        if not pull:
            with contextlib.suppress(NotFound):
                found = await self._engine(ImageGet(ref=ref), ImageDetail)
                image = found.image
                # A local image of another platform than `--platform` asks for is pulled
                # again for that one, as dockerd 20.10 does.
                if not platform or platform_matches(platform, image.os, image.architecture, image.variant):
                    yield BaseImage(image.id, image.config)
                    return
        # With the client's credentials the pull goes straight to the registry (resolved once
        # they arrive on the HTTP request), as `docker pull` with X-Registry-Auth does.
        auth = self.registry_auth.header_for(ref)
        headers = {REGISTRY_AUTH_HEADER: auth} if auth else {}
        target = await self._engine(
            ImagePull(ref=ref, platform=platform, credentials=bool(auth)), UploadTarget, within=100.0
        )
        async for message in transfer.post_lines(target.url, headers):
            if "errorDetail" in message or "error" in message:
                raise BuildError(
                    str((message.get("errorDetail") or {}).get("message") or message.get("error"))
                )
            yield message
        found = await self._engine(ImageGet(ref=ref), ImageDetail)
        yield BaseImage(found.image.id, found.image.config)

    async def tag(self, image_id: str, tag: str) -> str:
        repo, name_tag = tag, ""
        last = tag.rsplit("/", 1)[-1]
        if ":" in last:
            repo, name_tag = tag.rsplit(":", 1)
        try:
            await self._engine(ImageTag(ref=image_id, repo=repo, tag=name_tag), Done)
        except BerthError as exc:
            raise BuildError(exc.message) from None
        return f"{repo}:{name_tag or 'latest'}"

    # --- the cache ---------------------------------------------------------------------------

    def new_stage(self) -> None:
        self.cache_busted = self.options.no_cache

    async def _probe(self, image_id: str, probe: ContainerConfig) -> str:
        """moby's imageProber: after one miss, no step of the stage looks again."""
        if self.cache_busted:
            return ""
        lookup = ImageCacheLookup(
            parent=image_id, container_config=probe, cache_from=list(self.options.cache_from)
        )
        hit = await self._engine(lookup, ImageCacheHit)
        if not hit.id:
            self.cache_busted = True
        return hit.id

    # --- containers --------------------------------------------------------------------------

    def _host_config(self) -> HostConfig:
        o = self.options
        return HostConfig(
            network_mode=o.network_mode or "default",
            memory=o.memory, memory_swap=o.memory_swap, cpu_shares=o.cpu_shares,
            cpu_period=o.cpu_period, cpu_quota=o.cpu_quota, cpuset_cpus=o.cpuset_cpus,
            cpuset_mems=o.cpuset_mems, shm_size=o.shm_size, extra_hosts=list(o.extra_hosts) or None,
        )  # fmt: skip

    async def _create(self, config: ContainerConfig, image_id: str) -> str:
        fields = msgspec.structs.asdict(config)
        fields["image"] = image_id
        body = CreateRequest(**fields, host_config=self._host_config())
        try:
            created = await self._engine(
                ContainerCreate(body=body, scratch=not image_id),  # FROM scratch: no image
                ContainerCreated,
                within=CREATE_TIMEOUT,
            )
        except BerthError as exc:
            raise BuildError(exc.message) from None
        return str(created.id)

    async def _remove(self, cid: str) -> None:
        with anyio.CancelScope(shield=True), contextlib.suppress(NotFound, Conflict):
            await self._engine(ContainerRemove(ref=cid, force=True), Done, within=60.0)

    async def _commit(
        self, cid: str, state: StageState, image_id: str, probe: ContainerConfig
    ) -> str:
        config = msgspec.structs.replace(state.config, image=image_id)
        # With --rm (the default) the container goes right after: its layer is taken, not copied.
        consume = self.options.remove or self.options.force_remove
        cmd = ContainerCommit(
            ref=cid, pause=False, build_step=True, config=config, consume=consume,
            container_config=msgspec.structs.replace(probe, image=image_id), author=state.maintainer,
        )  # fmt: skip
        try:
            done = await self._engine(cmd, ContainerCommitted, within=COMMIT_TIMEOUT, attempts=1)
        except BerthError as exc:
            raise BuildError(exc.message) from None
        return str(done.id)

    async def _in_container(self, state: StageState, image_id: str, probe: ContainerConfig,
                            step: LayerStep | None, announce: bool,
                            copy: CopyPlan | None = None) -> AsyncIterator[Output]:  # fmt: skip
        """Create, do the step's work, commit, remove: moby's create + commitContainer."""
        cid = await self._create(
            probe if step is None or step.kind != "run" else self._run_config(state, step), image_id
        )
        keep = False
        try:
            if announce:
                yield _line(f" ---> Running in {_short(cid)}\n")
            if step is not None and step.kind == "run":
                async for item in run_container(self.rpc, self.nc, cid):
                    if isinstance(item, int):
                        if item != 0:
                            keep = not self.options.force_remove
                            cmd = " ".join(step.cmd)
                            raise BuildError(
                                f"The command '{cmd}' returned a non-zero code: {item}", code=item
                            )
                    else:
                        yield item
            elif step is not None and step.kind == "workdir":
                await self._put_empty(cid, state.config.working_dir)
            elif step is not None and copy is not None:
                await self._copy(cid, copy, step.kind)
            new_id = await self._commit(cid, state, image_id, probe)
            keep = not self.options.remove and not self.options.force_remove
        except BuildError:
            raise
        except BerthError as exc:
            keep = not self.options.force_remove
            raise BuildError(exc.message) from None
        finally:
            if not keep:
                await self._remove(cid)
        if announce and not keep:
            yield _line(f"Removing intermediate container {_short(cid)}\n")
        yield StepDone(new_id)

    @staticmethod
    def _run_config(state: StageState, step: LayerStep) -> ContainerConfig:
        """moby's RUN config: the command, build args in Env, no entrypoint, no healthcheck."""
        return msgspec.structs.replace(
            state.config,
            cmd=step.cmd,
            env=step.env,
            entrypoint=[""],
            healthcheck=HealthConfig(test=["NONE"]),
        )

    # --- steps -------------------------------------------------------------------------------

    async def metadata_step(self, state: StageState, image_id: str) -> AsyncIterator[Output]:
        probe = msgspec.structs.replace(state.config, cmd=state.history[-1].cmd)
        hit = await self._probe(image_id, probe)
        if hit:
            yield _line(" ---> Using cache\n")
            yield StepDone(hit)
            return
        async for item in self._in_container(state, image_id, probe, None, announce=True):
            yield item

    async def layer_step(
        self, state: StageState, image_id: str, step: LayerStep, results: StageResults
    ) -> AsyncIterator[Output]:
        copy: CopyPlan | None = None
        if step.kind in ("copy", "add"):
            try:
                copy = await self._plan_copy(state, step, results)
            except ContextError as exc:
                raise BuildError(f"{step.kind.upper()} failed: {exc}") from None
            step.cache_cmd = [*state.shell(), "#(nop) " + copy.comment]  # one word, as moby
        probe = msgspec.structs.replace(state.config, cmd=step.cache_cmd)
        if step.kind == "run":
            probe = msgspec.structs.replace(probe, entrypoint=None)
        hit = await self._probe(image_id, probe)
        if hit:
            yield _line(" ---> Using cache\n")
            yield StepDone(hit)
            return
        announce = step.kind in ("run", "workdir")  # moby creates COPY's container silently
        async for item in self._in_container(state, image_id, probe, step, announce, copy):
            yield item

    # --- files into a step container ---------------------------------------------------------

    async def _put(self, cid: str, path: str, tar_path: str, owner: tuple[int, int]) -> None:
        opened = await self._engine(
            ContainerArchive(
                ref=cid, path=path, mode="put", make_parents=True, parents_owner=owner
            ),
            ArchiveOpened,
        )
        await transfer.post_file(opened.url, tar_path)

    async def _put_empty(self, cid: str, path: str) -> None:
        """WORKDIR: moby's ContainerCreateWorkdir (0755, root) when it does not exist."""
        await transfer.post_file(
            (await self._engine(
                ContainerArchive(ref=cid, path=path or "/", mode="put", make_parents=True), ArchiveOpened
            )).url,
            transfer.EMPTY_TAR,
        )  # fmt: skip

    async def _copy(self, cid: str, copy: CopyPlan, kind: str) -> None:
        if copy.owner is None:
            copy.owner = await self._owner(cid, copy.chown)
        dest_is_dir = False
        if len(copy.sources) == 1 and not copy.dest.endswith("/"):
            with contextlib.suppress(NotFound):
                stat = await self._engine(
                    ContainerArchive(ref=cid, path=copy.dest, mode="stat"), ArchiveOpened
                )
                dest_is_dir = stat.stat is not None and bool(stat.stat.mode & (1 << 31))
        tree: SourceTree = DiskTree(copy.root)
        if copy.root == self.context.root:
            if kind == "copy" and not self.context.index.has_sparse:
                tree = ArchiveTree(self.context.index)  # straight from the context's tar
            else:  # ADD looks inside local archives; a sparse file is not one run in the tar
                await to_thread.run_sync(self.context.materialise)
        try:
            transfers = await to_thread.run_sync(
                write_transfers, copy, kind, dest_is_dir, self.work, tree
            )
        except (ContextError, OSError) as exc:
            raise BuildError(str(exc)) from None
        for item in transfers:
            await self._put(cid, item.dest_dir, item.tar_path, copy.owner)

    async def _plan_copy(
        self, state: StageState, step: LayerStep, results: StageResults
    ) -> CopyPlan:
        urls = [src for src in step.sources if download.is_url(src)]
        if step.from_stage:
            root, sources = await self._sources_from(results, step.from_stage, step.sources)
        elif urls and step.kind == "add":
            if len(urls) != len(step.sources):
                raise ContextError(
                    "berth's builder does not mix URLs and context files in one ADD yet"
                )
            root = await to_thread.run_sync(copyfrom.staging_dir, self.work)
            sources = [await download.download(url, root, i) for i, url in enumerate(urls)]
        else:
            sources = await to_thread.run_sync(
                context_sources, self.hasher, step.kind, step.sources
            )
            root = self.context.root  # read only if the step runs (_copy)
        copy = plan(root, step.kind, sources, step.dest, step.chown, state.config.working_dir)
        copy.no_decompress = bool(urls)  # a download is never extracted, as moby
        return copy

    async def _sources_from(
        self, results: StageResults, ref: str, srcs: list[str]
    ) -> tuple[str, list[CopySource]]:
        """COPY --from: each source out of the stage's (or image's) filesystem, staged here."""
        stage = results.get(ref)
        if stage is not None:
            image_id = stage[0]
        else:
            image_id = ""
            async for item in self.base_image(ref, pull=False, platform=""):
                if isinstance(item, BaseImage):
                    image_id = item.id
        wanted = [copyfrom.split_source(src) for src in srcs]
        staging = await to_thread.run_sync(copyfrom.staging_dir, self.work)
        cid = await self._create(ContainerConfig(cmd=["/"]), image_id)
        sources: list[CopySource] = []
        try:
            for i, (path, pattern) in enumerate(wanted):
                try:
                    opened = await self._engine(
                        ContainerArchive(ref=cid, path=path, mode="get"), ArchiveOpened
                    )
                except NotFound:
                    raise ContextError(
                        f"file not found in {ref}: stat {path}: file does not exist"
                    ) from None
                _, index = await copyfrom.fetch(opened.url, staging, i, path)
                for found in copyfrom.sources_in(index, pattern):
                    sources.append(CopySource(f"{i}/{found.path}", found.hash))
        finally:
            await self._remove(cid)
        return staging, sources

    async def _owner(self, cid: str, chown: str) -> tuple[int, int]:
        """--chown names: the step container's /etc/passwd and /etc/group."""
        tables: list[str] = []
        for path in ("/etc/passwd", "/etc/group"):
            try:
                opened = await self._engine(
                    ContainerArchive(ref=cid, path=path, mode="get"), ArchiveOpened
                )
                tables.append(await transfer.read_single_file(opened.url))
            except NotFound:
                tables.append("")
        try:
            return resolve_chown(chown, *tables)
        except ContextError as exc:
            raise BuildError(
                f"unable to convert uid/gid chown string to host mapping: {exc}"
            ) from None
