"""The service over real NATS and the real HTTP upload endpoint: load, import, resolve, tag, delete."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from typing import Any

import pytest
import zstandard
from berth_contracts.base import Done
from berth_contracts.engine import ImageUpload
from berth_contracts.errors import Conflict, InvalidParameter, NotFound
from berth_contracts.lifecycle import (
    ImageDelete,
    ImageDeleted,
    ImageFound,
    ImageListAll,
    ImageRecords,
    ImageResolve,
    ImageTagAdd,
)
from berth_testsupport import images as testimages

pytestmark = pytest.mark.anyio


def _blobs(h: Any) -> set[str]:
    return {p.name for p in (h.root / "blobs" / "sha256").iterdir()}


async def test_load_docker_save_then_oci(harness: Any) -> None:
    img = testimages.docker_save_archive(["busybox:latest", "localhost:5000/bb:1"])
    lines = await harness.upload(ImageUpload(kind="load"), img.data)
    assert lines == [
        {"stream": "Loaded image: busybox:latest\n"},
        {"stream": "Loaded image: localhost:5000/bb:1\n"},
    ]
    found = await harness.call(ImageResolve(ref="busybox"), ImageFound)
    rec = found.image
    assert rec.id == img.image_id
    assert sorted(rec.repo_tags) == ["busybox:latest", "localhost:5000/bb:1"]
    assert rec.config.cmd == ["sh"]
    assert rec.config.env == testimages.DEFAULT_ENV
    assert rec.diff_ids == img.diff_ids
    assert rec.created == testimages.CREATED and rec.author == "berth tests"
    assert rec.size > 1_000_000  # the busybox binary
    # The config and the layer are in the content store.
    assert img.image_id.split(":")[1] in _blobs(harness)
    assert img.diff_ids[0].split(":")[1] in _blobs(harness)
    assert list((harness.root / "ingest").iterdir()) == []

    # The same image as an OCI layout under another name: same id, one more tag, layer reused.
    oci = testimages.oci_layout_archive("berth-test/oci:v1")
    assert oci.image_id == img.image_id
    lines = await harness.upload(ImageUpload(kind="load"), oci.data)
    assert lines == [{"stream": "Loaded image: berth-test/oci:v1\n"}]
    listing = await harness.call(ImageListAll(), ImageRecords)
    assert len(listing.images) == 1
    assert len(harness.lifecycle.meta.snapshots("committed")) == 1

    events = await harness.wait_events(2)
    assert [(e.Type, e.Action, e.Actor.ID) for e in events] == [("image", "load", img.image_id)] * 2
    assert events[0].status == "load" and events[0].id == img.image_id and events[0].timeNano > 0


async def test_load_untagged_oci_and_gzip_save(harness: Any) -> None:
    oci = testimages.oci_layout_archive("x:1", ref_name_only_tag=True)
    assert await harness.upload(ImageUpload(kind="load"), oci.data) == [
        {"stream": f"Loaded image ID: {oci.image_id}\n"}
    ]
    multi = testimages.multilayer_docker_save(["multi:1"], gzip_layers=True)
    # docker load also takes a compressed archive.
    assert await harness.upload(ImageUpload(kind="load"), gzip.compress(multi.data)) == [
        {"stream": "Loaded image: multi:1\n"}
    ]
    # zstd works too, and a truncated compressed archive is an error, not a hang.
    zdata = zstandard.ZstdCompressor().compress(testimages.docker_save_archive(["z:1"]).data)
    assert await harness.upload(ImageUpload(kind="load"), zdata) == [{"stream": "Loaded image: z:1\n"}]
    lines = await harness.upload(ImageUpload(kind="load"), gzip.compress(multi.data)[:5000])
    assert "invalid archive" in lines[-1]["error"]
    # Loading another image under an existing tag moves the tag, as Docker says.
    other = testimages.docker_save_archive(["multi:1"], cmd=["echo", "other"])
    lines = await harness.upload(ImageUpload(kind="load"), other.data)
    assert lines == [
        {
            "stream": f"The image multi:1 already exists, renaming the old one with ID {multi.image_id} to empty string\n"
        },
        {"stream": "Loaded image: multi:1\n"},
    ]
    assert (await harness.call(ImageResolve(ref="multi:1"), ImageFound)).image.config.cmd == ["echo", "other"]
    assert (await harness.call(ImageResolve(ref=multi.image_id), ImageFound)).image.repo_tags == []


def _tamper_diff_id(data: bytes) -> bytes:
    """A docker-save archive whose config names a diffID its layer does not have."""
    src = tarfile.open(fileobj=io.BytesIO(data))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as dst:
        manifest = json.loads(src.extractfile("manifest.json").read())  # type: ignore[union-attr]
        for m in src.getmembers():
            f = src.extractfile(m)
            body = f.read() if f else b""
            if m.name == manifest[0]["Config"]:
                cfg = json.loads(body)
                cfg["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]
                body = json.dumps(cfg).encode()
                m.size = len(body)
            dst.addfile(m, io.BytesIO(body) if f else None)
    return out.getvalue()


async def test_load_errors_store_nothing(harness: Any) -> None:
    lines = await harness.upload(ImageUpload(kind="load"), b"definitely not a tar" * 1000)
    assert len(lines) == 1 and "errorDetail" in lines[0] and lines[0]["error"] == lines[0]["errorDetail"]["message"]
    bad = _tamper_diff_id(testimages.docker_save_archive(["bad:1"]).data)
    lines = await harness.upload(ImageUpload(kind="load"), bad)
    assert "invalid diffID for layer 0" in lines[-1]["error"]
    empty = io.BytesIO()
    tarfile.open(fileobj=empty, mode="w").close()
    lines = await harness.upload(ImageUpload(kind="load"), empty.getvalue())
    assert "no manifest.json or index.json" in lines[-1]["error"]
    assert (await harness.call(ImageListAll(), ImageRecords)).images == []
    assert harness.lifecycle.meta.snapshots() == []
    assert list((harness.root / "snapshots").iterdir()) == []
    assert _blobs(harness) == set()
    assert list((harness.root / "ingest").iterdir()) == []


async def test_upload_token_is_single_use(harness: Any) -> None:
    import aiohttp
    from berth_contracts.engine import UploadTarget

    target = await harness.call(ImageUpload(kind="load"), UploadTarget)
    assert target.url.startswith("http://127.0.0.1:")
    data = testimages.docker_save_archive(["once:1"]).data
    async with aiohttp.ClientSession() as session:
        async with session.post(target.url, data=data) as resp:
            assert resp.status == 200
            await resp.read()
        async with session.post(target.url, data=b"x") as resp:
            assert resp.status == 404


async def test_import_with_changes(harness: Any) -> None:
    rootfs = gzip.compress(testimages.busybox_rootfs_tar())
    changes = [
        'CMD ["echo", "hi"]',
        "ENTRYPOINT /bin/sh -c",
        "ENV A=1 B=\"two words\"",
        "ENV C 3",
        "WORKDIR /srv",
        "WORKDIR app",
        "USER 1000:1000",
        "EXPOSE 80 53/udp",
        'LABEL com.example.a=b "c=d e"',
        'VOLUME ["/data"]',
        "STOPSIGNAL SIGINT",
    ]
    lines = await harness.upload(
        ImageUpload(kind="import", repo="imported", tag="v1", message="made by test", changes=changes), rootfs
    )
    assert len(lines) == 1 and lines[0]["status"].startswith("sha256:"), lines
    image_id = lines[0]["status"]
    rec = (await harness.call(ImageResolve(ref="imported:v1"), ImageFound)).image
    assert rec.id == image_id and rec.repo_tags == ["imported:v1"]
    assert rec.comment == "made by test"
    c = rec.config
    assert c.cmd == ["echo", "hi"]
    assert c.entrypoint == ["/bin/sh", "-c", "/bin/sh -c"]
    assert c.env == ["A=1", "B=two words", "C=3"]
    assert c.working_dir == "/srv/app"
    assert c.user == "1000:1000"
    assert c.exposed_ports == {"80/tcp": {}, "53/udp": {}}
    assert c.labels == {"com.example.a": "b", "c": "d e"}
    assert c.volumes == {"/data": {}}
    assert c.stop_signal == "SIGINT"
    assert rec.diff_ids == [testimages.sha256(testimages.busybox_rootfs_tar())]
    events = await harness.wait_events(1)
    assert events[-1].Action == "import" and events[-1].Actor.ID == image_id

    # Untagged import without changes: Docker's default comment; a bad change is refused.
    lines = await harness.upload(ImageUpload(kind="import"), testimages.busybox_rootfs_tar())
    rec = (await harness.call(ImageResolve(ref=lines[0]["status"]), ImageFound)).image
    assert rec.repo_tags == [] and rec.comment == "Imported from -"
    # Bad changes or names are refused when the upload is asked for, before any bytes move.
    from berth_contracts.engine import UploadTarget

    with pytest.raises(InvalidParameter, match="^RUN is not a valid change command$"):
        await harness.call(ImageUpload(kind="import", changes=["RUN rm -rf /"]), UploadTarget)
    with pytest.raises(InvalidParameter, match="must be lowercase"):
        await harness.call(ImageUpload(kind="import", repo="Bad"), UploadTarget)


async def test_resolve_tag_and_delete(harness: Any) -> None:
    img = testimages.docker_save_archive(["busybox:latest"])
    await harness.upload(ImageUpload(kind="load"), img.data)
    hex_id = img.image_id.split(":")[1]
    for ref in (img.image_id, hex_id, hex_id[:12], hex_id[:1], "sha256:" + hex_id[:5], "busybox", "busybox:latest",
                "docker.io/library/busybox:latest"):
        assert (await harness.call(ImageResolve(ref=ref), ImageFound)).image.id == img.image_id, ref
    with pytest.raises(NotFound, match=r"^No such image: nosuch:latest$"):
        await harness.call(ImageResolve(ref="nosuch"), ImageFound)
    with pytest.raises(NotFound, match=r"^No such image: busybox:other$"):
        await harness.call(ImageResolve(ref="busybox:other"), ImageFound)
    with pytest.raises(NotFound, match=f"^No such image: sha256:{'f' * 64}$"):
        await harness.call(ImageResolve(ref="f" * 64), ImageFound)
    with pytest.raises(InvalidParameter, match="must be lowercase"):
        await harness.call(ImageResolve(ref="BusyBox"), ImageFound)

    await harness.call(ImageTagAdd(ref="busybox", repo="localhost:5000/mine", tag="v2"), Done)
    await harness.call(ImageTagAdd(ref=hex_id[:6], repo="other:x"), Done)
    rec = (await harness.call(ImageResolve(ref="localhost:5000/mine:v2"), ImageFound)).image
    assert sorted(rec.repo_tags) == ["busybox:latest", "localhost:5000/mine:v2", "other:x"]
    assert rec.last_tag_time != "0001-01-01T00:00:00Z"
    tag_events = [e for e in await harness.wait_events(3) if e.Action == "tag"]
    assert [e.Actor.Attributes["name"] for e in tag_events] == ["localhost:5000/mine:v2", "other:x"]

    # By id with names in several repositories: refused unless forced.
    with pytest.raises(
        Conflict,
        match=f"^conflict: unable to delete {hex_id[:12]} \\(must be forced\\) - image is referenced in multiple repositories$",
    ):
        await harness.call(ImageDelete(ref=hex_id[:12]), ImageDeleted)
    # By name: only untagged while other names remain.
    res = await harness.call(ImageDelete(ref="other:x"), ImageDeleted)
    assert res.untagged == ["other:x"] and res.deleted == []
    # Forced by id: every name goes, then the image and its (unshared) layer.
    res = await harness.call(ImageDelete(ref=img.image_id, force=True), ImageDeleted)
    assert sorted(res.untagged) == ["busybox:latest", "localhost:5000/mine:v2"]
    assert res.deleted == [img.image_id, img.diff_ids[0]]
    assert (await harness.call(ImageListAll(), ImageRecords)).images == []
    assert harness.lifecycle.meta.snapshots() == [] and _blobs(harness) == set()
    actions = [e.Action for e in await harness.wait_events(7)]
    assert actions[-3:] == ["untag", "untag", "delete"]


async def test_delete_last_name_deletes_image_and_keeps_shared_layers(harness: Any) -> None:
    base = testimages.docker_save_archive(["base:1"])
    multi = testimages.multilayer_docker_save(["multi:1"])
    await harness.upload(ImageUpload(kind="load"), base.data)
    await harness.upload(ImageUpload(kind="load"), multi.data)
    assert len(harness.lifecycle.meta.snapshots("committed")) == 3
    res = await harness.call(ImageDelete(ref="multi:1"), ImageDeleted)
    assert res.untagged == ["multi:1"]
    chains = harness.lifecycle.meta.get_image(base.image_id).chain_ids
    # The multi-layer image's own layers went, top first; busybox's base layer is base:1's too.
    assert res.deleted[0] == multi.image_id and len(res.deleted) == 3
    assert chains[0] not in res.deleted
    assert len(harness.lifecycle.meta.snapshots("committed")) == 1
    assert (await harness.call(ImageResolve(ref="base:1"), ImageFound)).image.id == base.image_id


async def test_ambiguous_prefix(harness: Any) -> None:
    from berth_lifecycle.metadata import ImageRow

    for i in range(2):
        row = ImageRow(
            id=f"sha256:abcd{i}" + "0" * 59, config=b"{}", diff_ids=[], chain_ids=[], layer_blobs=[], size=0,
            added="", last_tag_time="0001-01-01T00:00:00Z",
        )
        harness.lifecycle.meta.put_image(row, [], "")
    with pytest.raises(InvalidParameter, match="^multiple IDs found with provided prefix: abcd$"):
        await harness.call(ImageResolve(ref="abcd"), ImageFound)
    assert (await harness.call(ImageResolve(ref="abcd1"), ImageFound)).image.id.startswith("sha256:abcd1")
