"""docker pull through berth: lifecycle → registry-proxy → a real docker-registry on loopback."""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from berth_testsupport import images as testimages
from berth_testsupport import registry as tr
from harness import Berth

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not shutil.which(tr.REGISTRY_BINARY), reason="docker-registry not installed (make install)"),
]


@pytest.fixture(scope="module")
def registry() -> Iterator[tuple[str, tr.Seeded]]:
    with tr.registry() as url:
        yield url, tr.seed(url)


@pytest.fixture
def front(registry: tuple[str, tr.Seeded]) -> Iterator[tr.Front]:
    with tr.Front(registry[0]) as f:
        yield f


def _host(url: str) -> str:
    return url.removeprefix("http://")


def _rmi(berth: Berth, *refs: str) -> None:
    berth.docker("rmi", "-f", *refs)


def test_pull_run_whiteouts_inspect(berth: Berth, registry: tuple[str, tr.Seeded]) -> None:
    url, seeded = registry
    ref = f"{_host(url)}/library/multilayer:1"
    try:
        out = berth.docker_ok("pull", ref, timeout=120)
        assert f"Digest: {seeded.multilayer.digest}" in out
        assert f"Status: Downloaded newer image for {ref}" in out
        again = berth.docker_ok("pull", ref, timeout=60)
        assert f"Status: Image is up to date for {ref}" in again
        info = json.loads(berth.docker_ok("image", "inspect", ref))[0]
        assert info["Id"] == seeded.multilayer.image_id
        assert info["RepoTags"] == [ref]
        assert info["RepoDigests"] == [f"{_host(url)}/library/multilayer@{seeded.multilayer.digest}"]
        assert info["Size"] > 0 and info["Config"]["Cmd"] == ["sh"]
        shown = {p: f"cat {p} 2>/dev/null || echo absent" for p in
                 [*testimages.MULTILAYER_VISIBLE, *testimages.MULTILAYER_HIDDEN]}
        res = berth.docker("run", "--rm", ref, "sh", "-c", "; ".join(shown.values()))
        assert res.returncode == 0, res.stderr
        assert res.stdout.split("\n")[:5] == ["kept", "new", "two", "absent", "absent"]
        # by digest too: the same image
        by_digest = f"{_host(url)}/library/multilayer@{seeded.multilayer.digest}"
        berth.docker_ok("pull", by_digest, timeout=60)
        assert json.loads(berth.docker_ok("image", "inspect", by_digest))[0]["Id"] == info["Id"]
    finally:
        _rmi(berth, ref)


def test_run_pulls_missing_image_and_platforms(berth: Berth, registry: tuple[str, tr.Seeded]) -> None:
    url, seeded = registry
    ref = f"{_host(url)}/library/multiarch:1"
    zref = f"{_host(url)}/library/zbox:1"
    try:
        res = berth.docker("run", "--rm", ref, "echo", "pulled-and-ran", timeout=120)
        assert res.returncode == 0, res.stderr
        assert res.stdout == "pulled-and-ran\n"
        assert "Pulling from library/multiarch" in res.stderr
        info = json.loads(berth.docker_ok("image", "inspect", ref))[0]
        assert info["Id"] == seeded.multiarch_amd64.image_id  # linux/amd64 picked from the index
        assert info["RepoDigests"] == [f"{_host(url)}/library/multiarch@{seeded.multiarch_index}"]
        # zstd layer
        res = berth.docker("run", "--rm", zref, "echo", "zstd-ok", timeout=120)
        assert res.returncode == 0, res.stderr
        assert res.stdout == "zstd-ok\n"
        # a platform that is not in the index
        res = berth.docker("pull", "--platform", "linux/s390x", ref, timeout=60)
        assert res.returncode != 0
        assert "no matching manifest for linux/s390x" in res.stderr
    finally:
        _rmi(berth, ref, zref)


def test_pull_errors(berth: Berth, registry: tuple[str, tr.Seeded]) -> None:
    url, _ = registry
    res = berth.docker("pull", f"{_host(url)}/library/nothere:1", timeout=60)
    assert res.returncode != 0
    assert "pull access denied for" in res.stderr or "not found" in res.stderr, res.stderr
    res = berth.docker("pull", f"{_host(url)}/library/busybox:nosuchtag", timeout=60)
    assert res.returncode != 0
    assert "manifest for" in res.stderr and "not found" in res.stderr, res.stderr
    # Docker Hub is not reachable from here: a clear error, quickly (no hang).
    res = berth.docker("pull", "busybox:berth-unreachable", timeout=60)
    assert res.returncode != 0 and res.stderr.strip(), res.stderr


def test_tag_rmi_prune_after_pull(berth: Berth, registry: tuple[str, tr.Seeded]) -> None:
    url, _ = registry
    # A unique image: the seeded busybox has the id of images other tests load under other names.
    pushed = tr.push_unique(url, "library/tagrmi", "1", secrets.token_hex(6))
    ref = f"{_host(url)}/library/tagrmi:1"
    try:
        berth.docker_ok("pull", ref, timeout=120)
        berth.docker_ok("tag", ref, "berth-test/pulled:x")
        out = berth.docker_ok("rmi", "berth-test/pulled:x")
        assert "Untagged: berth-test/pulled:x" in out
        cid = berth.docker_ok("create", ref, "true").strip()
        res = berth.docker("rmi", ref)
        assert res.returncode != 0 and "container" in res.stderr
        berth.docker_ok("rm", cid)
        out = berth.docker_ok("rmi", ref)
        assert f"Deleted: {pushed.image_id}" in out
    finally:
        _rmi(berth, ref, "berth-test/pulled:x")


def test_concurrent_pulls_one_fetch_per_blob(berth: Berth, front: tr.Front) -> None:
    pushed = tr.push_unique(front.upstream, "library/concurrent", "1", secrets.token_hex(8))
    ref = f"{_host(front.url)}/library/concurrent:1"
    try:
        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(lambda _: berth.docker("pull", ref, timeout=180), range(20)))
        for res in results:
            assert res.returncode == 0, res.stderr
        assert front.blob_gets(pushed.layer_digests[1]) == 1  # the new layer: one upstream GET
        assert front.blob_gets(pushed.image_id) <= 1
        res = berth.docker("run", "--rm", ref, "cat", "/marker.txt")
        assert res.returncode == 0 and res.stdout.strip() == json.loads(
            berth.docker_ok("image", "inspect", "--format", "{{json .Config.Labels}}", ref)
        )["marker"]
    finally:
        _rmi(berth, ref)


def test_corrupt_upstream_then_repaired(berth: Berth, front: tr.Front) -> None:
    tr.push_unique(front.upstream, "library/corrupt", "1", secrets.token_hex(8))
    ref = f"{_host(front.url)}/library/corrupt:1"
    try:
        front.mode = "corrupt"
        res = berth.docker("pull", ref, timeout=120)
        assert res.returncode != 0
        assert res.stderr.strip(), res.stderr
        assert berth.docker("image", "inspect", ref).returncode != 0
        front.mode = "ok"
        berth.docker_ok("pull", ref, timeout=120)
        res = berth.docker("run", "--rm", ref, "cat", "/marker.txt")
        assert res.returncode == 0, res.stderr
    finally:
        _rmi(berth, ref)


def test_upstream_down_and_rate_limited(berth: Berth, front: tr.Front) -> None:
    tr.push_unique(front.upstream, "library/cached", "1", secrets.token_hex(8))
    tr.push_unique(front.upstream, "library/uncached", "1", secrets.token_hex(8))
    cached = f"{_host(front.url)}/library/cached:1"
    uncached = f"{_host(front.url)}/library/uncached:1"
    try:
        berth.docker_ok("pull", cached, timeout=120)
        berth.docker_ok("rmi", cached)
        front.stop()
        out = berth.docker_ok("pull", cached, timeout=120)  # from registry-proxy's cache
        assert "Downloaded newer image" in out
        res = berth.docker("pull", uncached, timeout=60)
        assert res.returncode != 0 and res.stderr.strip()
        front.start()
        front.mode = "429"
        res = berth.docker("pull", uncached, timeout=60)
        assert res.returncode != 0 and "toomanyrequests" in res.stderr, res.stderr
    finally:
        front.mode = "ok"
        _rmi(berth, cached, uncached)


def test_image_prune_dangling_and_all(berth: Berth, registry: tuple[str, tr.Seeded]) -> None:
    url, _ = registry
    ref, ref2 = f"{_host(url)}/library/prunable:1", f"{_host(url)}/library/prunable:2"
    first, second = secrets.token_hex(6), secrets.token_hex(6)
    a = tr.push_unique(url, "library/prunable", "1", first)
    b = tr.push_unique(url, "library/prunable", "2", second)
    try:
        berth.docker_ok("pull", ref, timeout=120)
        berth.docker_ok("pull", ref2, timeout=120)
        berth.docker_ok("tag", ref2, ref)  # the tag moves: the first image is dangling
        # Only the dangling one goes (label filters keep other tests' images out of it).
        out = berth.docker_ok("image", "prune", "-f", "--filter", f"label=marker={second}")
        assert "Total reclaimed space: 0B" in out
        out = berth.docker_ok("image", "prune", "-f", "--filter", f"label=marker={first}")
        assert f"deleted: {a.image_id}" in out.lower()
        assert berth.docker("image", "inspect", a.image_id).returncode != 0
        # -a: unused tagged images go too, untagged first.
        out = berth.docker_ok("image", "prune", "-a", "-f", "--filter", f"label=marker={second}")
        assert f"untagged: {ref}" in out.lower() and f"deleted: {b.image_id}" in out.lower()
    finally:
        _rmi(berth, ref, ref2)
