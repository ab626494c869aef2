"""The lifecycle service: state under <data root>/lifecycle and the RPC handlers on NATS."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from anyio import to_thread
from berth_contracts import archives, distribution, imaging, lifecycle
from berth_contracts.base import Done
from berth_kit.diskmodes import ensure_dir, private_sqlite
from berth_kit.rpc import RpcServer

from berth_lifecycle.buildcache import BuildCache
from berth_lifecycle.committing import SCRATCH, Committer
from berth_lifecycle.containerfs import ContainerFiles
from berth_lifecycle.content import ContentStore
from berth_lifecycle.events import Publish
from berth_lifecycle.imageconfig import apply_changes
from berth_lifecycle.images import Images
from berth_lifecycle.imageusage import ImageUsage
from berth_lifecycle.importer import import_name
from berth_lifecycle.metadata import Metadata
from berth_lifecycle.pull import Puller
from berth_lifecycle.push import Pusher
from berth_lifecycle.save import Saver
from berth_lifecycle.sharing import Sharing
from berth_lifecycle.snapshots import Snapshotter
from berth_lifecycle.upload import UploadServer


def data_root() -> Path:
    return Path(os.environ.get("BERTH_DATA_ROOT", "/var/lib/berth")) / "lifecycle"


def http_listen() -> str:
    return os.environ.get("BERTH_LIFECYCLE_HTTP", "127.0.0.1:0")


@dataclass
class Lifecycle:
    meta: Metadata
    content: ContentStore
    snapshots: Snapshotter
    images: Images
    uploads: UploadServer
    puller: Puller
    files: ContainerFiles  # docker cp, docker export
    saver: Saver  # docker save
    sharing: Sharing  # docker push, docker login, GET /distribution

    @classmethod
    def open(cls, root: Path, publish: Publish, listen: str = "127.0.0.1:0") -> Lifecycle:
        """Blocking: open the stores and clean up what a crash may have left."""
        if any(c in str(root) for c in ",:"):
            # Snapshot paths go into overlay mount options, where these are separators.
            raise ValueError(f"lifecycle data directory {root} must not contain ',' or ':'")
        ensure_dir(root)  # 0700: snapshots hold containers' rootfs (setuid binaries, secrets)
        private_sqlite(root / "meta.db")
        meta = Metadata(root / "meta.db")
        content = ContentStore(root)
        snapshots = Snapshotter(root / "snapshots", meta)
        snapshots.recover()
        images = Images(meta, content, snapshots, publish)
        # A crash between committing blobs / unpacking layers and recording the image leaves
        # garbage no record points at: collect it before serving.
        snapshots.collect_layers()
        images.collect_blobs(content.digests())
        uploads = UploadServer(images, listen)
        puller = Puller(images)
        uploads.extra_posts.append(("/pulls/{token}", puller.handle))
        saver = Saver(images)
        uploads.extra_posts.append(("/saves/{token}", saver.handle))
        sharing = Sharing(Pusher(images))
        uploads.extra_posts.extend(sharing.routes())
        files = ContainerFiles(snapshots, uploads, root / "archive-mnt")
        return cls(meta, content, snapshots, images, uploads, puller, files, saver, sharing)

    def close(self) -> None:
        self.meta.close()

    # --- handlers --------------------------------------------------------------------------------

    async def image_resolve(self, cmd: lifecycle.ImageResolve) -> lifecycle.ImageFound:
        return lifecycle.ImageFound(
            image=await self.images.record(await self.images.resolve(cmd.ref))
        )

    async def image_list(self, _: lifecycle.ImageListAll) -> lifecycle.ImageRecords:
        return lifecycle.ImageRecords(images=await self.images.list_all())

    async def image_tag(self, cmd: lifecycle.ImageTagAdd) -> Done:
        await self.images.tag(cmd.ref, cmd.repo, cmd.tag)
        return Done()

    async def image_delete(self, cmd: lifecycle.ImageDelete) -> lifecycle.ImageDeleted:
        untagged, deleted = await self.images.delete(cmd.ref, force=cmd.force, noprune=cmd.noprune)
        return lifecycle.ImageDeleted(untagged=untagged, deleted=deleted)

    async def image_upload(self, cmd: lifecycle.ImageUpload) -> lifecycle.UploadTarget:
        if cmd.kind == "import":
            # Refuse a bad name or change before the caller sends a whole rootfs.
            import_name(cmd)
            apply_changes(cmd.changes)
        return lifecycle.UploadTarget(url=self.uploads.issue(cmd))

    async def image_pull(self, cmd: lifecycle.ImagePull) -> lifecycle.UploadTarget:
        return lifecycle.UploadTarget(url=await self.puller.prepare(cmd, self.uploads.base_url))

    async def image_save(self, cmd: distribution.ImageSave) -> lifecycle.UploadTarget:
        return lifecycle.UploadTarget(url=await self.saver.prepare(cmd, self.uploads.base_url))

    async def image_push(self, cmd: distribution.ImagePush) -> lifecycle.UploadTarget:
        return lifecycle.UploadTarget(url=self.sharing.pusher.prepare(cmd, self.uploads.base_url))

    async def registry_login(self, _: distribution.RegistryLogin) -> lifecycle.UploadTarget:
        return lifecycle.UploadTarget(url=self.sharing.login_url(self.uploads.base_url))

    async def distribution_inspect(
        self, cmd: distribution.DistributionInspect
    ) -> lifecycle.UploadTarget:
        return lifecycle.UploadTarget(url=self.sharing.inspect_url(cmd, self.uploads.base_url))

    async def snapshot_prepare(self, cmd: lifecycle.SnapshotPrepare) -> lifecycle.SnapshotMounts:
        async with self.images.lock:  # an image delete must not collect layers meanwhile
            row = await self.images.resolve(cmd.image_id) if cmd.image_id else SCRATCH
            return lifecycle.SnapshotMounts(mounts=await self.snapshots.prepare(cmd.key, row))

    async def snapshot_mounts(self, cmd: lifecycle.SnapshotGetMounts) -> lifecycle.SnapshotMounts:
        return lifecycle.SnapshotMounts(mounts=await self.snapshots.mounts(cmd.key))

    async def snapshot_remove(self, cmd: lifecycle.SnapshotRemove) -> lifecycle.SnapshotRemoved:
        size = await self.snapshots.remove(cmd.key, measure=cmd.measure)
        # Layers of an image deleted (forced) while this container used them go now.
        await to_thread.run_sync(self.snapshots.collect_layers)
        return lifecycle.SnapshotRemoved(size=size)

    async def snapshot_export(self, cmd: imaging.SnapshotExport) -> imaging.ExportTarget:
        return imaging.ExportTarget(url=await self.files.open_export(cmd.key))

    def register(self, server: RpcServer) -> None:
        server.handle(archives.ArchiveOpen, self.files.open)
        committer = Committer(self.images, self.snapshots.root.parent / "diff-mnt")
        server.handle(imaging.SnapshotDiff, committer.diff)
        server.handle(imaging.SnapshotCommit, committer.commit)
        server.handle(imaging.SnapshotExport, self.snapshot_export)
        server.handle(imaging.ImageCacheLookup, BuildCache(self.images).lookup)
        usage = ImageUsage(self.images)
        server.handle(imaging.ImageHistoryGet, usage.history)
        server.handle(imaging.LayerUsageGet, usage.usage)
        server.handle(lifecycle.ImageResolve, self.image_resolve)
        server.handle(lifecycle.ImageListAll, self.image_list)
        server.handle(lifecycle.ImageTagAdd, self.image_tag)
        server.handle(lifecycle.ImageDelete, self.image_delete)
        server.handle(lifecycle.ImageUpload, self.image_upload)
        server.handle(lifecycle.ImagePull, self.image_pull)
        server.handle(distribution.ImageSave, self.image_save)
        server.handle(distribution.ImagePush, self.image_push)
        server.handle(distribution.RegistryLogin, self.registry_login)
        server.handle(distribution.DistributionInspect, self.distribution_inspect)
        server.handle(lifecycle.SnapshotPrepare, self.snapshot_prepare)
        server.handle(lifecycle.SnapshotGetMounts, self.snapshot_mounts)
        server.handle(lifecycle.SnapshotRemove, self.snapshot_remove)
