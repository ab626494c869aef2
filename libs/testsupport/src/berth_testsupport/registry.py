"""Test helpers (used by this package's tests and tests/e2e): a real upstream registry.

- `registry()`: Debian's docker-registry (CNCF distribution) on a free loopback port, storage
  in a temp dir.
- `seed(url)`: pushes images built from /bin/busybox with the registry API (see IMAGES).
- `Front`: a loopback HTTP front of an upstream that counts requests and can corrupt blobs,
  answer 429, refuse connections, redirect badly, stall, or rewrite paths (a hostile
  registry answering any path), for the failure and hostile-request tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

from berth_testsupport import images as testimages

REGISTRY_BINARY = "/usr/bin/docker-registry"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up") from None
            time.sleep(0.05)


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for an htpasswd line (libxcrypt through the stdlib's crypt; cost 4: tests)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # crypt: removed in 3.13
        import crypt

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


@contextlib.contextmanager
def registry(users: dict[str, str] | None = None) -> Iterator[str]:
    """A docker-registry on 127.0.0.1:<free port>; yields its base URL. With `users` (name →
    password) it asks for HTTP basic auth (an htpasswd file, bcrypt) on every request."""
    if not shutil.which(REGISTRY_BINARY):
        raise RuntimeError("docker-registry not installed: run `make install`")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="berth-registry-") as tmp:
        cfg = Path(tmp) / "config.yml"
        auth = ""
        if users:
            htpasswd = Path(tmp) / "htpasswd"
            htpasswd.write_text("".join(f"{u}:{bcrypt_hash(p)}\n" for u, p in users.items()))
            auth = f"auth:\n  htpasswd:\n    realm: berth-test\n    path: {htpasswd}\n"
        cfg.write_text(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {tmp}/data\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n{auth}"
        )
        proc = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/v2/")
            yield f"http://127.0.0.1:{port}"
        finally:
            stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# --- pushing ---------------------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(base: str, repo: str, data: bytes) -> str:
    digest = _sha(data)
    req = urllib.request.Request(f"{base}/v2/{repo}/blobs/uploads/", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=30) as resp:
        location = resp.headers["Location"]
    if location.startswith("/"):
        location = base + location
    sep = "&" if "?" in location else "?"
    req = urllib.request.Request(
        f"{location}{sep}digest={digest}", method="PUT", data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    urllib.request.urlopen(req, timeout=60).close()
    return digest


def push_manifest(base: str, repo: str, ref: str, body: bytes, media_type: str) -> str:
    req = urllib.request.Request(
        f"{base}/v2/{repo}/manifests/{ref}", method="PUT", data=body, headers={"Content-Type": media_type}
    )
    urllib.request.urlopen(req, timeout=30).close()
    return _sha(body)


@dataclass(frozen=True)
class Pushed:
    repo: str
    tag: str
    digest: str  # of the manifest (or index) under the tag
    image_id: str  # config digest of the linux/amd64 image
    layer_digests: list[str]


def push_image(
    base: str, repo: str, tag: str, layers: list[bytes], config: bytes, *, zstd: bool = False
) -> Pushed:
    """Push an image: layers are uncompressed tars (gzip, or zstd with an OCI manifest)."""
    blobs = [
        zstandard.ZstdCompressor().compress(t) if zstd else testimages._gzip(t) for t in layers
    ]
    digests = [push_blob(base, repo, b) for b in blobs]
    push_blob(base, repo, config)
    media, cfg_type, layer_type = (
        (OCI_MANIFEST, OCI_CONFIG, OCI_ZSTD) if zstd else (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)
    )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media,
            "config": {"mediaType": cfg_type, "digest": _sha(config), "size": len(config)},
            "layers": [
                {"mediaType": layer_type, "digest": d, "size": len(b)} for d, b in zip(digests, blobs, strict=True)
            ],
        },
        indent=3,  # not the canonical form: the proxy must keep the exact bytes
    ).encode()
    digest = push_manifest(base, repo, tag, manifest, media)
    return Pushed(repo, tag, digest, _sha(config), digests)


def push_index(base: str, repo: str, tag: str, images: dict[str, Pushed]) -> str:
    """An OCI index over images already pushed to `repo`, keyed by "os/arch"."""
    entries = []
    for plat, pushed in images.items():
        body = _get(f"{base}/v2/{repo}/manifests/{pushed.digest}", DOCKER_MANIFEST + "," + OCI_MANIFEST)
        os_, arch = plat.split("/")
        entries.append(
            {
                "mediaType": json.loads(body)["mediaType"],
                "digest": pushed.digest,
                "size": len(body),
                "platform": {"os": os_, "architecture": arch},
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    return push_manifest(base, repo, tag, index, OCI_INDEX)


def _get(url: str, accept: str) -> bytes:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return bytes(resp.read())


@dataclass(frozen=True)
class Seeded:
    busybox: Pushed  # library/busybox:1
    multilayer: Pushed  # library/multilayer:1 (whiteout + opaque dir)
    multiarch_amd64: Pushed  # library/multiarch (index under :1)
    multiarch_arm64: Pushed
    multiarch_index: str
    zstd: Pushed  # library/zbox:1, an OCI manifest with a zstd layer


def seed(base: str) -> Seeded:
    busybox_layer = testimages._busybox_layer()
    busybox = push_image(
        base, "library/busybox", "1", [busybox_layer.tar], testimages.image_config([busybox_layer.diff_id])
    )
    ml = testimages._multilayer_layers()
    multilayer = push_image(
        base, "library/multilayer", "1", [x.tar for x in ml], testimages.image_config([x.diff_id for x in ml])
    )
    amd = push_image(
        base, "library/multiarch", "amd64", [busybox_layer.tar],
        testimages.image_config([busybox_layer.diff_id], labels={"arch": "amd64"}),
    )
    arm_cfg = json.loads(testimages.image_config([busybox_layer.diff_id], labels={"arch": "arm64"}))
    arm_cfg["architecture"] = "arm64"
    arm = push_image(
        base, "library/multiarch", "arm64", [busybox_layer.tar], json.dumps(arm_cfg, sort_keys=True).encode()
    )
    index = push_index(base, "library/multiarch", "1", {"linux/arm64": arm, "linux/amd64": amd})
    zbox = push_image(
        base, "library/zbox", "1", [busybox_layer.tar],
        testimages.image_config([busybox_layer.diff_id], labels={"compression": "zstd"}), zstd=True,
    )
    return Seeded(busybox, multilayer, amd, arm, index, zbox)


def push_unique(base: str, repo: str, tag: str, marker: str) -> Pushed:
    """busybox plus a small layer holding /marker.txt = marker: a blob no cache has yet."""
    bb = testimages._busybox_layer()
    t = testimages._TarBuilder()
    t.file("marker.txt", marker.encode() + b"\n")
    extra = t.finish()
    config = testimages.image_config([bb.diff_id, extra.diff_id], labels={"marker": marker})
    return push_image(base, repo, tag, [bb.tar, extra.tar], config)


# --- a front with faults -------------------------------------------------------------------------------


class Front:
    """HTTP front of `upstream` on 127.0.0.1:<port>.

    mode: "ok" | "corrupt" | "429" | "down" | "slow" | "stall" (headers, then no body until
    stop()) | "bare302" (the upstream's answer as a 302 without Location) | "ftp302" (a
    redirect to ftp://) | "auth307" (401 Basic without Authorization, else a 307 to
    `redirect_to` + the path). `authorizations` lists the Authorization headers received. `rewrite` maps each request path before it is relayed. With
    `hold_for` = n, each request waits (at most `hold_timeout` s) until n are in at once;
    `peak` is the most seen at once.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = "ok"
        self.counts: Counter[str] = Counter()  # "GET /v2/.../blobs/sha256:..." → n
        self.rewrite: Callable[[str], str] | None = None
        self.redirect_to = ""
        self.authorizations: list[str] = []
        self.hold_for = 0
        self.hold_timeout = 3.0
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._stopped = threading.Event()
        self.port = free_port()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def blob_gets(self, digest: str) -> int:
        with self._lock:
            return sum(n for k, n in self.counts.items() if k.startswith("GET ") and k.endswith(digest))

    def start(self) -> None:
        front = self
        self.mode = "ok"
        self._stopped.clear()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._relay()

            def do_GET(self) -> None:
                self._relay()

            def _relay(self) -> None:
                with front._arrived:
                    front.counts[f"{self.command} {self.path}"] += 1
                    front.active += 1
                    front.peak = max(front.peak, front.active)
                    front._arrived.notify_all()
                    if front.hold_for:
                        front._arrived.wait_for(lambda: front.active >= front.hold_for, front.hold_timeout)
                try:
                    self._answer()
                finally:
                    with front._arrived:
                        front.active -= 1

            def _answer(self) -> None:
                if front.mode == "down":  # a kept-alive connection outlives shutdown(): cut it
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if front.mode == "429":
                    body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}'
                    self.send_response(429)
                    self.send_header("Retry-After", "30")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command == "GET":
                        self.wfile.write(body)
                    return
                auth = self.headers.get("Authorization")
                if auth:
                    with front._lock:
                        front.authorizations.append(auth)
                if front.mode == "auth307":
                    self.send_response(307 if auth else 401)
                    if auth:
                        self.send_header("Location", front.redirect_to + self.path)
                    else:
                        self.send_header("WWW-Authenticate", 'Basic realm="front"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if front.mode == "ftp302":
                    self.send_response(302)
                    self.send_header("Location", "ftp://127.0.0.1:21/etc/passwd")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization", "range")}
                path = front.rewrite(self.path) if front.rewrite else self.path
                req = urllib.request.Request(front.upstream + path, method=self.command, headers=headers)
                try:
                    resp = urllib.request.urlopen(req, timeout=30)
                except urllib.error.HTTPError as err:
                    resp = err
                with resp:
                    body = resp.read() if self.command == "GET" else b""
                    if front.mode == "corrupt" and "/blobs/" in self.path and body:
                        body = body[:-1] + bytes([body[-1] ^ 0xFF])
                    bare = front.mode == "bare302"
                    self.send_response(302 if bare else resp.status)
                    for k, v in resp.headers.items():
                        if k.lower() in ("content-type", "docker-content-digest", "www-authenticate", "location"):
                            if not (bare and k.lower() == "location"):
                                self.send_header(k, v)
                    length = len(body) if self.command == "GET" else int(resp.headers.get("Content-Length") or 0)
                    self.send_header("Content-Length", str(length))
                    self.end_headers()
                    if front.mode == "stall" and body:
                        self.wfile.write(body[:1])
                        self.wfile.flush()
                        front._stopped.wait(60)
                        return
                    # "slow": the body trickles, so a client can leave in the middle of it.
                    step = 64 * 1024 if front.mode == "slow" else max(len(body), 1)
                    for i in range(0, len(body), step):
                        self.wfile.write(body[i : i + step])
                        if front.mode == "slow":
                            time.sleep(0.02)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Refuse connections (the "down" upstream); start() again to bring it back."""
        self.mode = "down"
        self._stopped.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> Front:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
