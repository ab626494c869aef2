"""Build small, real images for tests, from Debian's static /bin/busybox (package busybox-static).

Everything here is deterministic (fixed mtimes, sorted entries, gzip mtime 0), so one builder
called twice gives byte-identical archives and therefore the same image id.

    from berth_testsupport import images as testimages
    img = testimages.docker_save_archive(["busybox:latest"])
    img.data        # bytes of a `docker save` archive, ready for `docker load` / POST /images/load
    img.image_id    # "sha256:<hex>" the engine will report for it
    img.write(path) # write the archive to a file

Builders:
- busybox_rootfs_tar()          the rootfs as an uncompressed tar (for `docker import`)
- docker_save_archive(tags)     a classic `docker save` archive (manifest.json, <id>/layer.tar)
- oci_layout_archive(ref)       an OCI image-layout archive (oci-layout, index.json, blobs/)
- multilayer_docker_save(tags)  a 2-layer image; layer 2 has a whiteout and an opaque dir
  (see MULTILAYER_* constants for what a container of it must and must not see).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from berth_common.reference import parse_normalized_named

BUSYBOX = "/bin/busybox"
MTIME = 1_700_000_000  # fixed so archives (and image ids) are reproducible
CREATED = "2023-11-14T22:13:20Z"
DEFAULT_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "user:x:1000:1000:user:/home/user:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n"

# What the multi-layer image's layers do (paths inside the image):
MULTILAYER_VISIBLE = {"/data/kept.txt": b"kept\n", "/opq/new.txt": b"new\n", "/layer2.txt": b"two\n"}
MULTILAYER_HIDDEN = ["/data/gone.txt", "/opq/old.txt"]  # present in layer 1, hidden by layer 2


@dataclass(frozen=True)
class Layer:
    tar: bytes  # uncompressed tar
    diff_id: str  # sha256 of `tar`


@dataclass(frozen=True)
class BuiltImage:
    data: bytes  # the archive
    image_id: str  # "sha256:<hex of config>"
    config: bytes  # the image config JSON
    diff_ids: list[str]
    tags: list[str] = field(default_factory=list)

    def write(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_bytes(self.data)
        return p


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- tar building --------------------------------------------------------------------------------


class _TarBuilder:
    """Adds entries with fixed metadata; root-owned unless told otherwise."""

    def __init__(self) -> None:
        self._buf = io.BytesIO()
        self._tar = tarfile.open(fileobj=self._buf, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name.lstrip("/"))
        info.type = kind
        info.mode = mode
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""
        info.mtime = MTIME
        return info

    def dir(self, name: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        self._tar.addfile(self._info(name, tarfile.DIRTYPE, mode, uid, gid))

    def file(self, name: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
        info = self._info(name, tarfile.REGTYPE, mode, uid, gid)
        info.size = len(data)
        self._tar.addfile(info, io.BytesIO(data))

    def symlink(self, name: str, target: str) -> None:
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self._tar.addfile(info)

    def hardlink(self, name: str, target: str) -> None:
        info = self._info(name, tarfile.LNKTYPE, 0o644)
        info.linkname = target.lstrip("/")
        self._tar.addfile(info)

    def finish(self) -> Layer:
        self._tar.close()
        data = self._buf.getvalue()
        return Layer(tar=data, diff_id=sha256(data))


def busybox_applets() -> list[str]:
    out = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True).stdout
    return sorted({a.strip() for a in out.split() if a.strip() and a.strip() != "busybox"})


@lru_cache(maxsize=4)
def _busybox_layer(extra: tuple[tuple[str, bytes], ...] = ()) -> Layer:
    t = _TarBuilder()
    for d in ("bin", "dev", "etc", "home", "proc", "sys", "usr", "usr/bin", "usr/sbin", "sbin", "var"):
        t.dir(d)
    t.dir("home/user", 0o755, 1000, 1000)
    t.dir("root", 0o700)
    t.dir("tmp", 0o1777)
    t.file("bin/busybox", Path(BUSYBOX).read_bytes(), 0o755)
    for applet in busybox_applets():
        t.symlink(f"bin/{applet}", "/bin/busybox")
    t.file("etc/passwd", PASSWD.encode())
    t.file("etc/group", GROUP.encode())
    t.file("etc/hostname", b"berth\n")
    for name, data in extra:
        t.file(name, data)
    return t.finish()


def busybox_rootfs_tar(extra_files: dict[str, bytes] | None = None) -> bytes:
    """An uncompressed tar of a busybox rootfs (what `docker import` takes)."""
    return _busybox_layer(tuple(sorted((extra_files or {}).items()))).tar


def _multilayer_layers() -> list[Layer]:
    base = _busybox_layer(
        (
            ("data/gone.txt", b"gone\n"),
            ("data/kept.txt", b"kept\n"),
            ("opq/old.txt", b"old\n"),
        )
    )
    t = _TarBuilder()
    t.dir("data")
    t.file("data/.wh.gone.txt", b"")
    t.dir("opq")
    t.file("opq/.wh..wh..opq", b"")
    t.file("opq/new.txt", b"new\n")
    t.file("layer2.txt", b"two\n")
    return [base, t.finish()]


# --- image config --------------------------------------------------------------------------------


def image_config(
    diff_ids: Sequence[str],
    *,
    cmd: Sequence[str] = ("sh",),
    env: Sequence[str] = tuple(DEFAULT_ENV),
    entrypoint: Sequence[str] | None = None,
    working_dir: str = "",
    user: str = "",
    labels: dict[str, str] | None = None,
) -> bytes:
    cfg: dict[str, object] = {"Env": list(env), "Cmd": list(cmd)}
    if entrypoint is not None:
        cfg["Entrypoint"] = list(entrypoint)
    if working_dir:
        cfg["WorkingDir"] = working_dir
    if user:
        cfg["User"] = user
    if labels:
        cfg["Labels"] = dict(labels)
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "author": "berth tests",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created": CREATED, "created_by": "berth testimages"} for _ in diff_ids],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


# --- archives ------------------------------------------------------------------------------------


def file_tar(name: str, data: bytes) -> bytes:
    """A tar of one regular file, nothing else (no parent directories): what `docker cp -` and
    PUT /containers/{id}/archive are sent in the tests."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


def _archive(entries: Iterable[tuple[str, bytes]]) -> bytes:
    t = _TarBuilder()
    made: set[str] = set()
    for name, data in entries:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in made:
                made.add(d)
                t.dir(d)
        t.file(name, data)
    return t.finish().tar


def _docker_save(layers: list[Layer], tags: Sequence[str], gzip_layers: bool, **config_kw: object) -> BuiltImage:
    config = image_config([layer.diff_id for layer in layers], **config_kw)  # type: ignore[arg-type]
    config_hex = hashlib.sha256(config).hexdigest()
    entries: list[tuple[str, bytes]] = []
    layer_paths = []
    for layer in layers:
        blob = _gzip(layer.tar) if gzip_layers else layer.tar
        layer_dir = layer.diff_id.split(":")[1]
        entries.append((f"{layer_dir}/VERSION", b"1.0"))
        entries.append((f"{layer_dir}/layer.tar", blob))
        layer_paths.append(f"{layer_dir}/layer.tar")
    entries.append((f"{config_hex}.json", config))
    manifest = [{"Config": f"{config_hex}.json", "RepoTags": list(tags) or None, "Layers": layer_paths}]
    entries.append(("manifest.json", json.dumps(manifest).encode()))
    return BuiltImage(
        data=_archive(entries),
        image_id="sha256:" + config_hex,
        config=config,
        diff_ids=[layer.diff_id for layer in layers],
        tags=list(tags),
    )


def docker_save_archive(
    tags: Sequence[str] = ("busybox:latest",), *, gzip_layers: bool = False, **config_kw: object
) -> BuiltImage:
    """A classic `docker save` archive of the busybox image. config_kw: see image_config()."""
    return _docker_save([_busybox_layer()], tags, gzip_layers, **config_kw)


def multilayer_docker_save(
    tags: Sequence[str] = ("berth-test/multilayer:latest",), *, gzip_layers: bool = True
) -> BuiltImage:
    """Two layers: busybox + /data/{gone,kept}.txt + /opq/old.txt, then a layer that whites out
    /data/gone.txt, makes /opq opaque (hiding old.txt) and adds /opq/new.txt and /layer2.txt."""
    return _docker_save(_multilayer_layers(), tags, gzip_layers)


def oci_layout_archive(ref: str = "busybox:latest", *, ref_name_only_tag: bool = False, **config_kw: object) -> BuiltImage:
    """An OCI image-layout archive (gzip layers) of the busybox image.

    The index entry carries `io.containerd.image.name` (the full name) and
    `org.opencontainers.image.ref.name` (the tag), as `docker save` of Docker 25+ writes it;
    with ref_name_only_tag the containerd annotation is left out.
    """
    layer = _busybox_layer()
    config = image_config([layer.diff_id], **config_kw)  # type: ignore[arg-type]
    blob = _gzip(layer.tar)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256(blob),
                    "size": len(blob),
                }
            ],
        },
        sort_keys=True,
    ).encode()
    parsed = parse_normalized_named(ref).with_default_tag()
    annotations = {"org.opencontainers.image.ref.name": parsed.tag}
    if not ref_name_only_tag:
        annotations["io.containerd.image.name"] = str(parsed)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": sha256(manifest),
                    "size": len(manifest),
                    "annotations": annotations,
                    "platform": {"architecture": "amd64", "os": "linux"},
                }
            ],
        },
        sort_keys=True,
    ).encode()
    entries = [
        (f"blobs/sha256/{sha256(b).split(':')[1]}", b) for b in sorted({blob, config, manifest})
    ]
    entries += [("index.json", index), ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')]
    return BuiltImage(
        data=_archive(entries),
        image_id=sha256(config),
        config=config,
        diff_ids=[layer.diff_id],
        tags=[] if ref_name_only_tag else [ref],
    )
