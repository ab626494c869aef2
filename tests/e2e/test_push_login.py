"""docker login / push / pull of a private repository / logout through berth, against Debian's
docker-registry with htpasswd (bcrypt) auth on loopback; the same with docker-py."""

from __future__ import annotations

import base64
import json
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from berth_testsupport import registry as tr
from berth_testsupport import tokens as tt
from harness import Berth

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not shutil.which(tr.REGISTRY_BINARY), reason="docker-registry not installed (make install)"),
]

USER = "alice"
PASSWORD = "pw-8c1d2e77-not-logged"


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    with tr.registry({USER: PASSWORD, "bob": "other-secret"}) as url:
        yield url.removeprefix("http://")


def _login(berth: Berth, host: str, user: str, password: str) -> tuple[int, str]:
    res = berth.docker("login", "-u", user, "--password-stdin", host, input=password + "\n")
    return res.returncode, res.stdout + res.stderr


def _auth_header(host: str) -> str:
    doc = {"username": USER, "password": PASSWORD, "serveraddress": host}
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


def test_login_push_pull_private_logout(berth: Berth, busybox_image: str, host: str) -> None:
    repo, other = f"{host}/alice/bb", f"{host}/bob/bb"
    try:
        # Wrong password and unknown user: the same words, nothing about which part was wrong.
        code, wrong_pw = _login(berth, host, USER, "wrong")
        assert code != 0 and "401 Unauthorized" in wrong_pw, wrong_pw
        code, wrong_user = _login(berth, host, "nobody", PASSWORD)
        assert code != 0 and wrong_user == wrong_pw
        assert "password" not in wrong_pw.lower() and "user" not in wrong_pw.lower()

        # Without credentials a push is refused with the registry's words.
        berth.docker_ok("tag", busybox_image, f"{repo}:1")
        res = berth.docker("push", f"{repo}:1", timeout=120)
        assert res.returncode != 0 and "no basic auth credentials" in res.stderr, res.stderr

        code, out = _login(berth, host, USER, PASSWORD)
        assert code == 0 and "Login Succeeded" in out, out
        out = berth.docker_ok("push", f"{repo}:1", timeout=120)
        assert f"The push refers to repository [{repo}]" in out
        assert ": Pushed" in out, out
        assert "1: digest: sha256:" in out and " size: " in out
        digest = out.split("1: digest: ")[1].split()[0]
        info = json.loads(berth.docker_ok("image", "inspect", f"{repo}:1"))[0]
        assert f"{repo}@{digest}" in info["RepoDigests"]

        again = berth.docker_ok("push", f"{repo}:1", timeout=120)
        assert ": Layer already exists" in again and "Pushed" not in again
        assert f"1: digest: {digest}" in again  # the same blobs, the same manifest

        # Another repository of the same registry: the layer is mounted, not sent again.
        berth.docker_ok("tag", busybox_image, f"{other}:2")
        mounted = berth.docker_ok("push", f"{other}:2", timeout=120)
        assert ": Mounted from alice/bb" in mounted, mounted

        # Pull back with credentials: straight from the registry, never through the proxy's cache.
        berth.docker_ok("rmi", f"{repo}:1", f"{other}:2", busybox_image)
        pulled = berth.docker_ok("pull", f"{repo}:1", timeout=120)
        assert f"Digest: {digest}" in pulled
        assert json.loads(berth.docker_ok("image", "inspect", f"{repo}:1"))[0]["Id"] == info["Id"]
        cache = berth.data_root / "registry-proxy" / "blobs" / "sha256"
        layers = [d.removeprefix("sha256:") for d in info["RootFS"]["Layers"]]
        cached = {p.name for p in cache.iterdir()} if cache.is_dir() else set()
        assert not cached.intersection([digest.removeprefix("sha256:"), *layers])
        # A pulled layer goes out again as the same blob: nothing to upload.
        berth.docker_ok("tag", f"{repo}:1", f"{repo}:copy")
        repushed = berth.docker_ok("push", f"{repo}:copy", timeout=120)
        assert "Layer already exists" in repushed and "Pushed" not in repushed
        assert f"copy: digest: {digest}" in repushed

        berth.docker_ok("logout", host)
        berth.docker_ok("rmi", f"{repo}:1", f"{repo}:copy")
        res = berth.docker("pull", f"{repo}:1", timeout=120)
        assert res.returncode != 0
        assert "unauthorized: authentication required" in res.stderr, res.stderr
        # The password never reaches a log.
        assert PASSWORD not in (berth.exec_root / "berth.log").read_text(errors="replace")
    finally:
        berth.docker("logout", host)
        berth.docker("rmi", f"{repo}:1", f"{repo}:copy", f"{other}:2")


def test_push_all_tags_and_distribution(berth: Berth, busybox_image: str, host: str) -> None:
    repo = f"{host}/alice/many"
    code, out = _login(berth, host, USER, PASSWORD)
    assert code == 0, out
    try:
        for tag in ("a", "b"):
            berth.docker_ok("tag", busybox_image, f"{repo}:{tag}")
        out = berth.docker_ok("push", "--all-tags", repo, timeout=120)
        assert "a: digest: sha256:" in out and "b: digest: sha256:" in out, out
        digest = out.split("b: digest: ")[1].split()[0]
        headers = {"X-Registry-Auth": _auth_header(host)}
        got = berth.http("GET", f"/distribution/{repo}:b/json", headers=headers, timeout=60)
        assert got.status == 200, got.body
        doc = got.json()
        assert doc["Descriptor"]["digest"] == digest
        assert doc["Descriptor"]["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert doc["Platforms"][0]["os"] == "linux"
        anonymous = berth.http("GET", f"/distribution/{repo}:b/json", timeout=60)
        assert anonymous.status >= 400
    finally:
        berth.docker("logout", host)
        berth.docker("rmi", f"{repo}:a", f"{repo}:b")


def test_docker_py_login_push_pull(berth: Berth, busybox_image: str, host: str) -> None:
    client = docker.DockerClient(base_url=berth.docker_host, timeout=120)
    repo = f"{host}/alice/py"
    auth = {"username": USER, "password": PASSWORD}
    try:
        with pytest.raises(docker.errors.APIError) as refused:
            client.login(username=USER, password="wrong", registry=host, reauth=True)
        assert "401 Unauthorized" in str(refused.value)
        answer = client.login(username=USER, password=PASSWORD, registry=host, reauth=True)
        assert answer["Status"] == "Login Succeeded"
        client.images.get(busybox_image).tag(repo, "v1")
        lines = list(client.images.push(repo, "v1", stream=True, decode=True, auth_config=auth))
        assert not [x for x in lines if "error" in x], lines
        aux = [x["aux"] for x in lines if "aux" in x]
        assert aux and aux[0]["Tag"] == "v1" and aux[0]["Digest"].startswith("sha256:")
        client.images.remove(f"{repo}:v1")
        image = client.images.pull(repo, "v1", auth_config=auth)
        assert f"{repo}@{aux[0]['Digest']}" in image.attrs["RepoDigests"]
    finally:
        client.close()
        berth.docker("rmi", f"{repo}:v1")


@pytest.fixture(scope="module")
def token_host() -> Iterator[tuple[str, tt.TokenServer]]:
    with tt.token_registry({USER: PASSWORD}) as (url, tokens):
        yield url.removeprefix("http://"), tokens


def test_bearer_token_registry(berth: Berth, busybox_image: str, token_host: tuple[str, tt.TokenServer]) -> None:
    """Docker Hub's flow: Bearer challenge, token from the realm; login returns an identity
    token the CLI stores, and later requests trade it (OAuth refresh grant) for tokens."""
    host, tokens = token_host
    repo = f"{host}/alice/tok"
    try:
        code, wrong = _login(berth, host, USER, "wrong")
        assert code != 0 and "401 Unauthorized" in wrong, wrong
        code, out = _login(berth, host, USER, PASSWORD)
        assert code == 0 and "Login Succeeded" in out, out
        stored = json.loads((berth.docker_config / "config.json").read_text())["auths"][host]
        assert stored.get("identitytoken"), stored  # the CLI keeps the identity token, not the password
        berth.docker_ok("tag", busybox_image, f"{repo}:1")
        out = berth.docker_ok("push", f"{repo}:1", timeout=120)
        assert ": Pushed" in out and "1: digest: sha256:" in out, out
        assert {"method": "POST", "grant": "refresh_token", "scope": "repository:alice/tok:pull,push"} in tokens.requests
        berth.docker_ok("rmi", f"{repo}:1")
        berth.docker_ok("pull", f"{repo}:1", timeout=120)
        berth.docker_ok("logout", host)
        berth.docker_ok("rmi", f"{repo}:1")
        res = berth.docker("pull", f"{repo}:1", timeout=120)
        assert res.returncode != 0 and "unauthorized" in res.stderr, res.stderr
    finally:
        berth.docker("logout", host)
        berth.docker("rmi", f"{repo}:1")


def test_credentials_never_follow_a_redirect_to_another_host(berth: Berth) -> None:
    """A registry that redirects (to blob storage, say) after checking the credentials: the
    redirected request goes without Authorization (another host: localhost, not 127.0.0.1)."""
    with tr.registry() as url:
        seeded = tr.seed(url)
        with tr.Front(url) as storage, tr.Front(url) as front:
            storage_port = storage.url.rsplit(":", 1)[1]
            front.mode, front.redirect_to = "auth307", f"http://localhost:{storage_port}"
            ref = f"{front.url.removeprefix('http://')}/library/multilayer:1"
            auth = _auth_header(front.url.removeprefix("http://"))
            try:
                got = berth.http("POST", f"/images/create?fromImage={ref}", headers={"X-Registry-Auth": auth}, timeout=120)
                assert got.status == 200, got.body
                assert b"Status: Downloaded newer image" in got.body, got.body
                assert front.authorizations and all(a.startswith("Basic ") for a in front.authorizations)
                assert storage.authorizations == []
                info = json.loads(berth.docker_ok("image", "inspect", ref))[0]
                assert info["Id"] == seeded.multilayer.image_id
            finally:
                berth.docker("rmi", ref)


def test_pulled_zstd_image_pushes_as_oci_with_the_same_blob(berth: Berth, host: str) -> None:
    """A pulled layer is pushed as the blob it was pulled as: a zstd layer keeps its digest and
    the manifest becomes an OCI one."""
    with tr.registry() as url:
        seeded = tr.seed(url)
        source = f"{url.removeprefix('http://')}/library/zbox:1"
        target = f"{host}/alice/zbox:1"
        code, out = _login(berth, host, USER, PASSWORD)
        assert code == 0, out
        try:
            berth.docker_ok("pull", source, timeout=120)
            berth.docker_ok("tag", source, target)
            berth.docker_ok("push", target, timeout=120)
            headers = {"X-Registry-Auth": _auth_header(host)}
            doc = berth.http("GET", f"/distribution/{target}/json", headers=headers, timeout=60).json()
            assert doc["Descriptor"]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
            got = berth.http("GET", f"/distribution/{source}/json", timeout=60).json()
            assert got["Descriptor"]["digest"] == seeded.zstd.digest
            # The layer blob the registry now holds is the one pulled (zstd, same digest).
            layer = seeded.zstd.layer_digests[0]
            with urllib.request.urlopen(urllib.request.Request(
                f"http://{host}/v2/alice/zbox/blobs/{layer}", method="HEAD",
                headers={"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()},
            ), timeout=30) as resp:
                assert resp.status == 200
        finally:
            berth.docker("logout", host)
            berth.docker("rmi", source, target)


def test_build_from_a_private_image_uses_the_clients_credentials(
    berth: Berth, busybox_image: str, host: str, tmp_path: Path
) -> None:
    """The CLI sends every credential it has in X-Registry-Config; the FROM pull takes the
    registry's own (moby's ResolveAuthConfig), and without them the registry's words come back."""
    base = f"{host}/alice/base:1"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN echo built-on-private > /marker\n")
    try:
        code, out = _login(berth, host, USER, PASSWORD)
        assert code == 0, out
        berth.docker_ok("tag", busybox_image, base)
        berth.docker_ok("push", base, timeout=120)
        berth.docker_ok("rmi", base)  # the build must pull it
        built = berth.docker_ok("build", "-t", "from-private:1", str(ctx), timeout=240)
        assert "Successfully tagged from-private:1" in built, built
        assert berth.docker_ok("run", "--rm", "from-private:1", "cat", "/marker").strip() == "built-on-private"

        berth.docker_ok("logout", host)
        berth.docker_ok("rmi", base)
        refused = berth.docker("build", "--no-cache", str(ctx), timeout=240)
        assert refused.returncode != 0
        assert "unauthorized: authentication required" in refused.stdout + refused.stderr, refused
        assert PASSWORD not in (berth.exec_root / "berth.log").read_text(errors="replace")
    finally:
        berth.docker("logout", host)
        berth.docker("rmi", base, "from-private:1")
