"""berth's own registry over HTTP: the token flow, private by default, public globs, the
permissions file, tags/list and _catalog filtered, DELETE + garbage collection, interrupted
pushes, digests, limits and webhooks. (Real clients: test_hosted_clients.py.)"""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from berth_testsupport import registry as tr
from hosted_harness import (
    MAX_BLOB,
    MAX_MANIFEST,
    HostedRun,
    basic,
    call,
    error_code,
    hosted_registry,
    manifest_for,
    sha,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def reg() -> Iterator[HostedRun]:
    with hosted_registry() as run:
        yield run


def test_token_flow_and_wrong_password_words(reg: HostedRun) -> None:
    status, headers, body = call("GET", f"{reg.url}/v2/")
    assert status == 401 and error_code(body) == "UNAUTHORIZED"
    assert headers["WWW-Authenticate"] == f'Bearer realm="{reg.url}/token",service="berth-registry"'
    answers = []
    for user, password in (("alice", "nope"), ("mallory", "alice-pw"), ("alice", "")):
        status, headers, body = call("GET", f"{reg.url}/token?service=berth-registry",
                                     headers={"Authorization": basic(user, password)})
        answers.append((status, body))
    # The same answer whether the user or the password was wrong.
    words = "incorrect username or password"
    assert {a for a in answers} == {(401, json.dumps(
        {"details": words, "errors": [{"code": "UNAUTHORIZED", "message": words, "detail": None}]}).encode())}
    token = reg.token("alice", "alice-pw", "repository:alice/app:pull,push")
    claims = json.loads(__import__("base64").urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["sub"] == "alice" and claims["aud"] == "berth-registry"
    assert claims["access"] == [{"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}]
    assert call("GET", f"{reg.url}/v2/", token)[0] == 200
    assert call("GET", f"{reg.url}/v2/", token[:-2] + "xx")[0] == 401  # a forged signature
    key = reg.data / "token-signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_private_by_default_public_globs_and_the_permissions_file(reg: HostedRun) -> None:
    alice = reg.token("alice", "alice-pw", "repository:alice/app:pull,push", "repository:alice/public-x:pull,push")
    digest, _ = reg.push_image("alice/app", "1", alice)
    reg.push_image("alice/public-x", "1", alice)
    url = f"{reg.url}/v2/alice/app/manifests/1"
    assert call("GET", url, alice)[0] == 200
    # Anonymous: a 401 challenge naming the scope to ask for; an anonymous token gets nothing.
    status, headers, _ = call("GET", url)
    assert status == 401
    assert headers["WWW-Authenticate"].endswith(',scope="repository:alice/app:pull"')
    assert call("GET", url, reg.token("", "", "repository:alice/app:pull"))[0] == 403
    # Another user: a token without the action, then DENIED.
    bob = reg.token("bob", "bob-pw", "repository:alice/app:pull,push")
    status, _, body = call("GET", url, bob)
    assert status == 403 and error_code(body) == "DENIED"
    assert call("POST", f"{reg.url}/v2/alice/app/blobs/uploads/", bob)[0] == 403
    # A public glob: anonymous pull (no token at all), no push.
    assert call("GET", f"{reg.url}/v2/alice/public-x/manifests/1")[0] == 200
    assert call("POST", f"{reg.url}/v2/alice/public-x/blobs/uploads/")[0] == 401
    # The permissions file: carol writes acme/* through team devs, bob reads it, alice nothing.
    carol = reg.token("carol", "carol-pw", "repository:acme/tool:pull,push")
    reg.push_image("acme/tool", "v1", carol)
    assert call("GET", f"{reg.url}/v2/acme/tool/manifests/v1", reg.token("bob", "bob-pw", "repository:acme/tool:pull"))[0] == 200
    assert reg.token("bob", "bob-pw", "repository:acme/tool:pull,push").count(".") == 2
    bob_push = reg.token("bob", "bob-pw", "repository:acme/tool:pull,push")
    assert call("POST", f"{reg.url}/v2/acme/tool/blobs/uploads/", bob_push)[0] == 403
    assert call("GET", f"{reg.url}/v2/acme/tool/manifests/v1", reg.token("alice", "alice-pw", "repository:acme/tool:pull"))[0] == 403
    # By berth's own address (as lifecycle names it: ?ns=, or host-prefixed): the same repository.
    assert call("GET", f"{reg.url}/v2/alice/app/manifests/1?ns={reg.address}", alice)[1]["Docker-Content-Digest"] == digest
    assert call("GET", f"{reg.url}/v2/{reg.address}/alice/app/manifests/1", alice)[0] == 200
    assert call("GET", f"{reg.url}/v2/alice/app/manifests/1?ns={reg.address}")[0] == 401


def test_tags_and_catalog_only_what_the_caller_may_read(reg: HostedRun) -> None:
    alice = reg.token("alice", "alice-pw", "repository:alice/cat:pull,push")
    for tag in ("b", "a", "c"):
        reg.push_image("alice/cat", tag, alice, marker=tag)
    status, headers, body = call("GET", f"{reg.url}/v2/alice/cat/tags/list?n=2", alice)
    assert json.loads(body) == {"name": "alice/cat", "tags": ["a", "b"]}
    assert headers["Link"] == '</v2/alice/cat/tags/list?n=2&last=b>; rel="next"'
    assert json.loads(call("GET", f"{reg.url}/v2/alice/cat/tags/list?n=2&last=b", alice)[2])["tags"] == ["c"]
    assert call("GET", f"{reg.url}/v2/alice/cat/tags/list", reg.token("bob", "bob-pw", "repository:alice/cat:pull"))[0] == 403
    carol = reg.token("carol", "carol-pw", "repository:acme/hidden:pull,push")
    reg.push_image("acme/hidden", "1", carol)

    def catalog(token: str) -> set[str]:
        status, _, body = call("GET", f"{reg.url}/v2/_catalog", token)
        assert status == 200, body
        return set(json.loads(body)["repositories"])

    everything = catalog(reg.token("alice", "alice-pw", "registry:catalog:*")) | catalog(carol)
    assert {"alice/cat", "acme/hidden"} <= everything
    mine = catalog(reg.token("alice", "alice-pw", "registry:catalog:*"))
    assert "alice/cat" in mine and not any(r.startswith("acme/") for r in mine)
    bobs = catalog(reg.token("bob", "bob-pw", "registry:catalog:*"))
    assert "acme/hidden" in bobs and not any(r.startswith("alice/") and "public" not in r for r in bobs)
    anonymous = catalog("")
    assert anonymous and all(r.startswith("alice/public") or r == "acme/open" for r in anonymous)


def test_delete_manifest_then_gc_removes_only_unreferenced_blobs(reg: HostedRun) -> None:
    alice = reg.token("alice", "alice-pw", "repository:alice/gone:pull,push,delete", "repository:alice/kept:pull,push")
    digest, blobs = reg.push_image("alice/gone", "1", alice)
    kept_digest, kept_blobs = reg.push_image("alice/kept", "1", alice)
    blob_dir = reg.data / "hosted" / "blobs" / "sha256"
    assert all((blob_dir / b[7:]).exists() for b in blobs)
    bob = reg.token("bob", "bob-pw", "repository:alice/gone:delete")
    assert call("DELETE", f"{reg.url}/v2/alice/gone/manifests/{digest}", bob)[0] == 403
    status, _, body = call("DELETE", f"{reg.url}/v2/alice/gone/manifests/{digest}", alice)
    assert status == 202, body
    assert call("GET", f"{reg.url}/v2/alice/gone/manifests/1", alice)[0] == 404
    assert call("GET", f"{reg.url}/v2/alice/gone/manifests/{digest}", alice)[0] == 404
    assert json.loads(call("GET", f"{reg.url}/v2/alice/gone/tags/list", alice)[2])["tags"] == []
    # Garbage collection ran: the deleted image's blobs and manifest are gone, the other's stay.
    assert not any((blob_dir / b[7:]).exists() for b in [*blobs, digest])
    assert all((blob_dir / b[7:]).exists() for b in [*kept_blobs, kept_digest])
    assert call("HEAD", f"{reg.url}/v2/alice/gone/blobs/{blobs[0]}", alice)[0] == 404
    assert call("GET", f"{reg.url}/v2/alice/kept/manifests/1", alice)[0] == 200


def _abandon_patch(reg: HostedRun, location: str, token: str, sent: bytes, claimed: int) -> None:
    """A PATCH that claims `claimed` bytes, sends `sent`, and drops the connection."""
    host, _, port = reg.address.partition(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall((f"PATCH {location} HTTP/1.1\r\nHost: {reg.address}\r\nAuthorization: Bearer {token}\r\n"
                   f"Content-Type: application/octet-stream\r\nContent-Length: {claimed}\r\n\r\n").encode() + sent)
        time.sleep(0.2)  # let the proxy read what was sent; then the client dies midway


def test_interrupted_push_leaves_no_manifest_and_can_be_repeated(reg: HostedRun) -> None:
    alice = reg.token("alice", "alice-pw", "repository:alice/cut:pull,push")
    layer = os.urandom(200_000)
    config = b'{"architecture":"amd64","os":"linux"}'
    status, headers, _ = call("POST", f"{reg.url}/v2/alice/cut/blobs/uploads/", alice)
    assert status == 202
    _abandon_patch(reg, headers["Location"], alice, layer[:50_000], len(layer))
    reg.push_blob("alice/cut", config, alice)
    manifest = manifest_for(config, [layer])
    # The layer never completed: no manifest may refer to it.
    status, _, body = call("PUT", f"{reg.url}/v2/alice/cut/manifests/1", alice, manifest,
                           {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    assert status == 400 and error_code(body) == "MANIFEST_BLOB_UNKNOWN"
    assert call("HEAD", f"{reg.url}/v2/alice/cut/blobs/{sha(layer)}", alice)[0] == 404
    assert call("GET", f"{reg.url}/v2/alice/cut/manifests/1", alice)[0] == 404
    # The upload can be resumed from where it stopped (its Range), or the push repeated.
    status, headers2, _ = call("GET", f"{reg.url}{headers['Location']}", alice)
    assert status == 204 and headers2["Range"] == "0-49999"
    reg.push_blob("alice/cut", layer, alice)
    status, _, body = call("PUT", f"{reg.url}/v2/alice/cut/manifests/1", alice, manifest,
                           {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    assert status == 201, body
    assert call("GET", f"{reg.url}/v2/alice/cut/blobs/{sha(layer)}", alice)[2] == layer


def test_digest_mismatch_and_size_limits(reg: HostedRun) -> None:
    alice = reg.token("alice", "alice-pw", "repository:alice/bad:pull,push")
    status, headers, _ = call("POST", f"{reg.url}/v2/alice/bad/blobs/uploads/", alice)
    status, _, body = call("PUT", f"{reg.url}{headers['Location']}?digest={sha(b'other')}", alice, b"bytes")
    assert status == 400 and error_code(body) == "DIGEST_INVALID"
    assert call("HEAD", f"{reg.url}/v2/alice/bad/blobs/{sha(b'other')}", alice)[0] == 404
    assert call("HEAD", f"{reg.url}/v2/alice/bad/blobs/{sha(b'bytes')}", alice)[0] == 404
    # A manifest PUT by a digest that is not its bytes'.
    config = b"{}"
    reg.push_blob("alice/bad", config, alice)
    manifest = manifest_for(config, [])
    status, _, body = call("PUT", f"{reg.url}/v2/alice/bad/manifests/{sha(b'x')}", alice, manifest,
                           {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    assert status == 400 and error_code(body) == "DIGEST_INVALID"
    # Oversized: a blob over BERTH_REGISTRY_PROXY_MAX_BLOB, a manifest over MAX_MANIFEST.
    big = b"\0" * (MAX_BLOB + 1)
    status, _, body = call("POST", f"{reg.url}/v2/alice/bad/blobs/uploads/?digest={sha(big)}", alice, big)
    assert status == 413 and error_code(body) == "SIZE_INVALID"
    assert not [p for p in (reg.data / "hosted" / "uploads").glob("*.repo") if p.read_text() == "alice/bad"]
    huge = json.dumps({"schemaVersion": 2, "pad": "x" * MAX_MANIFEST}).encode()
    status, _, body = call("PUT", f"{reg.url}/v2/alice/bad/manifests/big", alice, huge,
                           {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    assert status == 413 and error_code(body) == "MANIFEST_INVALID"
    assert call("GET", f"{reg.url}/v2/alice/bad/manifests/big", alice)[0] == 404


def _deliveries(data: Path) -> list[dict[str, object]]:
    out = []
    for p in (data / "hosted" / "webhooks").glob("*.json"):
        record = json.loads(p.read_text())
        callback = p.with_suffix(".callback")
        record["callback"] = json.loads(callback.read_text()) if callback.exists() else None
        out.append(record)
    return out


def test_push_webhooks_docker_hub_payload_retries_and_records(reg: HostedRun) -> None:
    alice = reg.token("alice", "alice-pw", "repository:alice/public-hook:pull,push")
    digest, _ = reg.push_image("alice/public-hook", "v7", alice)
    deadline = time.monotonic() + 60
    mine = []
    while time.monotonic() < deadline:
        mine = [d for d in _deliveries(reg.data) if d["repository"] == "alice/public-hook"]
        if len(mine) == 2 and all(d["delivered"] for d in mine) and all(d["callback"] for d in mine if "/ok" in str(d["url"])):
            break
        time.sleep(0.2)
    ok = next(b for b in reg.receiver.received["ok"] if b["repository"]["repo_name"] == "alice/public-hook")
    assert ok["push_data"]["tag"] == "v7" and ok["push_data"]["pusher"] == "alice"
    assert isinstance(ok["push_data"]["pushed_at"], int)
    assert {k: ok["repository"][k] for k in ("repo_name", "namespace", "name", "is_private")} == {
        "repo_name": "alice/public-hook", "namespace": "alice", "name": "public-hook", "is_private": False}
    assert ok["callback_url"].startswith(f"{reg.url}/webhooks/callback/")
    # Sent after the manifest was stored: the receiver could fetch the tag while handling it.
    assert reg.receiver.seen_manifest["alice/public-hook"] == 200
    by_url = {str(d["url"]).rsplit("/", 1)[1]: d for d in mine}
    assert by_url["ok"]["digest"] == digest and len(by_url["ok"]["attempts"]) == 1  # type: ignore[arg-type]
    assert by_url["ok"]["callback"] == {"state": "success", "description": "", "context": "", "target_url": ""}
    flaky = by_url["flaky"]["attempts"]
    assert [a["status"] for a in flaky] == [500, 500, 200]  # type: ignore[union-attr, index]
    at = [a["at"] for a in flaky]  # type: ignore[union-attr, index]
    assert at[1] - at[0] >= 0.2 and at[2] - at[1] >= 0.4  # back-off: 0.2 s, then doubled
    assert stat.S_IMODE((reg.data / "hosted" / "webhooks" / f"{by_url['ok']['id']}.json").stat().st_mode) == 0o600


def test_webhook_callback_url_is_not_the_pushers_host_header(reg: HostedRun) -> None:
    alice = reg.token("alice", "alice-pw", "repository:alice/hosthdr:pull,push")
    config = b'{"os":"linux","h":1}'
    reg.push_blob("alice/hosthdr", config, alice)
    status, _, body = call("PUT", f"{reg.url}/v2/alice/hosthdr/manifests/1", alice, manifest_for(config, []),
                           {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json", "Host": "evil.test"})
    assert status == 201, body
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sent = [b for b in reg.receiver.received["ok"] if b["repository"]["repo_name"] == "alice/hosthdr"]
        if sent:
            break
        time.sleep(0.1)
    assert sent and sent[0]["callback_url"].startswith(f"{reg.url}/webhooks/callback/")


def test_restart_mid_push_keeps_the_upload_and_the_signing_key(tmp_path: Path) -> None:
    from berth_kit.testing import nats_server
    from hosted_harness import hosted_env
    from proxy_harness import run_proxy

    layer, config = os.urandom(120_000), b'{"os":"linux","r":1}'
    port = tr.free_port()
    with nats_server() as nats:
        env = {**hosted_env(tmp_path, nats), "BERTH_REGISTRY_WEBHOOKS": "", "BERTH_REGISTRY_GC_GRACE": "3600"}
        with run_proxy(env, port) as url:
            reg = HostedRun(url, tmp_path / "data", None)  # type: ignore[arg-type]
            alice = reg.token("alice", "alice-pw", "repository:alice/restart:pull,push")
            status, headers, _ = call("POST", f"{url}/v2/alice/restart/blobs/uploads/", alice)
            location = headers["Location"]
            assert call("PATCH", f"{url}{location}", alice, layer[:70_000])[0] == 202
            reg.push_blob("alice/restart", config, alice)
        # The proxy stopped in the middle of the push, then starts again on the same data.
        with run_proxy(env, port) as url:
            assert call("GET", f"{url}/v2/", alice)[0] == 200  # the same key: the token still holds
            assert call("GET", f"{url}/v2/alice/restart/manifests/1", alice)[0] == 404
            status, headers, _ = call("GET", f"{url}{location}", alice)
            assert status == 204 and headers["Range"] == "0-69999"
            status, _, body = call("PATCH", f"{url}{location}", alice, layer[70_000:],
                                   {"Content-Range": f"70000-{len(layer) - 1}"})
            assert status == 202, body
            assert call("PUT", f"{url}{location}?digest={sha(layer)}", alice, b"")[0] == 201
            status, _, body = call("PUT", f"{url}/v2/alice/restart/manifests/1", alice, manifest_for(config, [layer]),
                                   {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
            assert status == 201, body
            assert call("GET", f"{url}/v2/alice/restart/blobs/{sha(layer)}", alice)[2] == layer
