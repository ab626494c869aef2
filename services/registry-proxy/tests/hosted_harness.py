"""berth's own registry for tests: the proxy with htpasswd users, a permissions file, public
globs and webhooks to a receiver (a real aiohttp server on 127.0.0.1 in a thread)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
from aiohttp import web
from berth_kit.testing import nats_server
from berth_testsupport import registry as tr
from proxy_harness import run_proxy

USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}
PERMISSIONS = {"teams": {"devs": ["carol"]}, "namespaces": {"acme": {"write": ["@devs"], "read": ["bob"]}}}
PUBLIC = "alice/public*,acme/open"
MAX_BLOB = 8 << 20
MAX_MANIFEST = 64 << 10


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Receiver:
    """Webhook receiver: /ok answers 200; /flaky answers 500 to its first two calls for a repository."""

    received: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"ok": [], "flaky": []})
    # repository → status of an anonymous GET of the pushed tag while the delivery was handled
    seen_manifest: dict[str, int] = field(default_factory=dict)
    registry_url: str = ""
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    async def _hook(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        body = await request.json()
        self.received[kind].append(body)
        repo, tag = body["repository"]["repo_name"], body["push_data"]["tag"]
        if kind == "ok":
            loop = asyncio.get_running_loop()
            status = await loop.run_in_executor(None, lambda: call("GET", f"{self.registry_url}/v2/{repo}/manifests/{tag}")[0])
            self.seen_manifest[repo] = status
            await loop.run_in_executor(None, lambda: call("POST", body["callback_url"], data=b'{"state":"success"}'))
            return web.Response(text="ok")
        calls = sum(1 for b in self.received[kind] if b["repository"]["repo_name"] == repo)
        return web.Response(status=500 if calls <= 2 else 200)

    def start(self) -> None:
        self.port = tr.free_port()
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/{kind}", self._hook)
            runner = web.AppRunner(app)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


@dataclass
class HostedRun:
    url: str
    data: Path
    receiver: Receiver

    @property
    def address(self) -> str:  # berth's own registry address, as clients name it
        return self.url.removeprefix("http://")

    def token(self, user: str = "", password: str = "", *scopes: str) -> str:
        query = "&".join(f"scope={s}" for s in scopes)
        headers = {"Authorization": basic(user, password)} if user else {}
        status, _, body = call("GET", f"{self.url}/token?service=berth-registry&{query}", headers=headers)
        assert status == 200, body
        return str(json.loads(body)["token"])

    def push_blob(self, repo: str, data: bytes, token: str) -> str:
        status, headers, body = call("POST", f"{self.url}/v2/{repo}/blobs/uploads/", token)
        assert status == 202, body
        status, _, body = call("PUT", f"{self.url}{headers['Location']}?digest={sha(data)}", token, data)
        assert status == 201, body
        return sha(data)

    def push_image(self, repo: str, tag: str, token: str, marker: str = "") -> tuple[str, list[str]]:
        """A small image (two blobs) under `repo:tag`: (manifest digest, blob digests)."""
        layer = f"layer {repo} {tag} {marker}".encode()
        config = json.dumps({"architecture": "amd64", "os": "linux", "m": f"{repo}{tag}{marker}"}).encode()
        blobs = [self.push_blob(repo, layer, token), self.push_blob(repo, config, token)]
        manifest = manifest_for(config, [layer])
        status, headers, body = call("PUT", f"{self.url}/v2/{repo}/manifests/{tag}", token, manifest,
                                     {"Content-Type": tr.DOCKER_MANIFEST})
        assert status == 201, body
        return headers["Docker-Content-Digest"], blobs


def manifest_for(config: bytes, layers: list[bytes]) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": tr.DOCKER_MANIFEST,
        "config": {"mediaType": tr.DOCKER_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": tr.DOCKER_LAYER, "digest": sha(x), "size": len(x)} for x in layers],
    }).encode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def call(method: str, url: str, token: str = "", data: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    hdrs = {"Accept": f"{tr.DOCKER_MANIFEST},{tr.OCI_MANIFEST}", **(headers or {})}
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, method=method, data=data, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def error_code(body: bytes) -> str:
    return str(json.loads(body)["errors"][0]["code"])


def hosted_env(root: Path, nats: str, receiver_port: int = 9) -> dict[str, str]:
    """The proxy's environment: users (htpasswd), permissions, public globs, webhooks, limits."""
    htpasswd = root / "htpasswd"
    if not htpasswd.exists():
        # Apache's `htpasswd -B` spelling ($2y$), cost 4: tests.
        htpasswd.write_text("".join(
            f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode().replace('$2b$', '$2y$', 1)}\n"
            for u, p in USERS.items()
        ))
        (root / "permissions.json").write_text(json.dumps(PERMISSIONS))
    return {
        "BERTH_NATS_URL": nats,
        "BERTH_REGISTRY_PROXY_DATA": str(root / "data"),
        "BERTH_REGISTRY_PROXY_DOCKER_HUB": "http://127.0.0.1:9",  # nothing pulls through here
        "BERTH_REGISTRY_HTPASSWD": str(htpasswd),
        "BERTH_REGISTRY_PERMISSIONS": str(root / "permissions.json"),
        "BERTH_REGISTRY_PUBLIC": PUBLIC,
        "BERTH_REGISTRY_WEBHOOKS": f"http://127.0.0.1:{receiver_port}/ok,http://127.0.0.1:{receiver_port}/flaky",
        "BERTH_REGISTRY_WEBHOOK_BACKOFF": "0.2",
        "BERTH_REGISTRY_GC_GRACE": "0",
        "BERTH_REGISTRY_PROXY_MAX_BLOB": str(MAX_BLOB),
        "BERTH_REGISTRY_PROXY_MAX_MANIFEST": str(MAX_MANIFEST),
    }


@contextlib.contextmanager
def hosted_registry(extra_env: dict[str, str] | None = None) -> Iterator[HostedRun]:
    receiver = Receiver()
    receiver.start()
    with nats_server() as nats, tempfile.TemporaryDirectory(prefix="berth-hosted-") as tmp:
        root = Path(tmp)
        env = {**hosted_env(root, nats, receiver.port), **(extra_env or {})}
        try:
            with run_proxy(env) as url:
                receiver.registry_url = url
                yield HostedRun(url, root / "data", receiver)
        finally:
            receiver.stop()
