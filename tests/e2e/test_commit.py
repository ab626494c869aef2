"""docker commit / diff / export / history / system df with the real docker CLI, compared with
what dockerd 20.10 answers for the same steps."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from berth_testsupport.images import multilayer_docker_save
from harness import Berth

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CHANGES = (
    "echo hi > /newfile; mkdir -p /newdir/sub; echo x > /newdir/sub/f; rm /bin/ls; "
    "echo mod >> /etc/passwd; rm -rf /home; mkdir /home; touch /home/z"
)


def _events(berth: Berth, since: str, *filters: str) -> list[dict[str, object]]:
    # An absolute --until a little ahead: events of the current second are all in by then.
    until = str(int(time.time()) + 2)
    args = ["events", "--since", since, "--until", until, "--format", "{{json .}}"]
    for f in filters:
        args += ["--filter", f]
    return [json.loads(line) for line in berth.docker_ok(*args).splitlines() if line.strip()]


def test_diff_commit_run_history(berth: Berth, busybox_image: str) -> None:
    since = str(int(time.time()) - 1)
    berth.docker_ok("run", "--name", "cm-src", busybox_image, "sh", "-c", CHANGES)
    try:
        # dockerd 20.10 prints the same lines (in its own order); /etc/hosts and the runtime's
        # other mount points never show, as they live in moby's init layer.
        assert sorted(berth.docker_ok("diff", "cm-src").splitlines()) == sorted([
            "C /bin", "D /bin/ls", "C /etc", "C /etc/passwd", "C /home", "A /home/z",
            "D /home/user", "A /newdir", "A /newdir/sub", "A /newdir/sub/f", "A /newfile",
        ])  # fmt: skip
        new_id = berth.docker_ok(
            "commit", "-m", "my msg", "-a", "me <m@x>", "--change", "ENV A=1",
            "--change", "WORKDIR /tmp", "cm-src", "committed:1",
        ).strip()  # fmt: skip
        assert new_id.startswith("sha256:")
        out = berth.docker_ok("run", "--rm", "committed:1", "sh", "-c",
                              "cat /newfile /newdir/sub/f; ls /bin/ls; pwd; echo $A; ls /home")  # fmt: skip
        assert out.split() == ["hi", "x", "/tmp", "1", "z"]
        base_id = berth.docker_ok("image", "inspect", "-f", "{{.Id}}", busybox_image).strip()
        meta = json.loads(berth.docker_ok("image", "inspect", "committed:1"))[0]
        assert (meta["Author"], meta["Comment"], meta["Parent"]) == ("me <m@x>", "my msg", base_id)
        assert meta["Config"]["WorkingDir"] == "/tmp" and "A=1" in meta["Config"]["Env"]
        assert len(meta["RootFS"]["Layers"]) == 2
        rows = [json.loads(line) for line in berth.docker_ok(
            "history", "--no-trunc", "--format", "{{json .}}", "committed:1").splitlines()]  # fmt: skip
        assert rows[0]["ID"] == new_id and rows[0]["CreatedBy"] == f"sh -c {CHANGES}"
        assert rows[0]["Comment"] == "my msg" and rows[0]["Size"] == "132B"  # as dockerd: 132B
        assert rows[1]["ID"] == base_id
        commits = _events(berth, since, "event=commit")
        assert commits[-1]["Type"] == "container"
        attrs = commits[-1]["Actor"]["Attributes"]  # type: ignore[index]
        assert attrs["imageID"] == new_id and attrs["imageRef"] == "committed:1"
        assert attrs["comment"] == "my msg" and attrs["name"] == "cm-src"
        bad = berth.docker("commit", "--change", "STOPSIGNAL 9", "cm-src", "x:2")
        assert bad.returncode == 1
        assert "stopsignal is not a valid change command" in bad.stderr
    finally:
        berth.docker("rm", "-f", "cm-src")
        berth.docker("rmi", "committed:1")


def test_commit_of_an_unchanged_container_adds_no_layer(berth: Berth, busybox_image: str) -> None:
    """As dockerd: a writable layer with nothing in it (never started, or started and wrote
    nothing) is recorded as an empty layer in history and adds no diff id."""
    base = json.loads(berth.docker_ok("image", "inspect", busybox_image))[0]
    berth.docker_ok("create", "--name", "cm-fresh", busybox_image, "true")
    berth.docker_ok("run", "--name", "cm-ran", busybox_image, "true")
    try:
        for name in ("cm-fresh", "cm-ran"):
            berth.docker_ok("commit", "--change", "ENV E=1", name, f"{name}:1")
            meta = json.loads(berth.docker_ok("image", "inspect", f"{name}:1"))[0]
            assert meta["RootFS"]["Layers"] == base["RootFS"]["Layers"]
            assert meta["Parent"] == base["Id"] and "E=1" in meta["Config"]["Env"]
            top = berth.docker_ok("history", "--format", "{{.Size}}", f"{name}:1").split()[0]
            assert top == "0B"
            assert berth.docker_ok("run", "--rm", f"{name}:1", "sh", "-c", "echo $E").strip() == "1"
    finally:
        berth.docker("rm", "-f", "cm-fresh", "cm-ran")
        berth.docker("rmi", "cm-fresh:1", "cm-ran:1")


def test_commit_running_pauses_it(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok("run", "-d", busybox_image, "sh", "-c", "echo a > /a; sleep 300").strip()
    since = berth.docker_ok("inspect", "-f", "{{.Created}}", cid).strip()
    try:
        berth.docker_ok("exec", cid, "test", "-f", "/a")
        image = berth.docker_ok("commit", cid).strip()
        acts = [e["Action"] for e in _events(berth, since, f"container={cid}")]
        assert acts[-3:] == ["pause", "unpause", "commit"]
        assert berth.docker_ok("inspect", "-f", "{{.State.Status}}", cid).strip() == "running"
        berth.docker_ok("commit", "--pause=false", cid)
        acts = [e["Action"] for e in _events(berth, since, f"container={cid}")]
        assert acts[-4:] == ["pause", "unpause", "commit", "commit"]  # no pause the 2nd time
        assert berth.docker_ok("run", "--rm", image, "cat", "/a") == "a\n"
        dangling = berth.docker_ok("images", "-q", "--no-trunc", "--filter", "dangling=true")
        assert image in dangling.split()
    finally:
        berth.docker("rm", "-f", cid)
        berth.docker("image", "prune", "-f")


def test_export_streams_the_whole_filesystem(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok("create", "-v", "/vol", busybox_image, "true").strip()
    try:
        berth.docker_ok("start", "-a", cid)
        cid2 = berth.docker_ok("run", "-d", "-v", "/vol", busybox_image,
                               "sh", "-c", "echo v > /vol/f; echo e > /exported; rm /bin/ls; sleep 300").strip()  # fmt: skip
        try:
            berth.docker_ok("exec", cid2, "test", "-f", "/exported")
            data = subprocess.run(["docker", "-H", berth.docker_host, "export", cid2],
                                  capture_output=True, timeout=60, check=True).stdout  # fmt: skip
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                names = set(tar.getnames())
                exported = tar.extractfile("exported")
                assert exported is not None and exported.read() == b"e\n"
            assert "bin/busybox" in names and "etc/passwd" in names
            assert "bin/ls" not in names  # deleted in the container
            assert "vol/f" not in names  # volumes are not part of an export (as dockerd)
            assert not any(n.startswith("./") or n.startswith("/") for n in names)
        finally:
            berth.docker("rm", "-f", cid2)
    finally:
        berth.docker("rm", "-f", "-v", cid)


def test_system_df(berth: Berth, busybox_image: str) -> None:
    berth.docker_ok("run", "--name", "dfc", "-v", "dfvol:/data", busybox_image,
                    "sh", "-c", "head -c 5000 /bin/busybox > /data/f; echo 12345 > /rw")  # fmt: skip
    name = berth.docker_ok("inspect", "-f", "{{.Id}}", "dfc").strip()
    try:
        res = berth.http("GET", "/v1.41/system/df")
        assert res.status == 200, res.body
        df = res.json()
        assert df["BuildCache"] is None and df["LayersSize"] > 0
        image_id = berth.docker_ok("image", "inspect", "-f", "{{.Id}}", busybox_image).strip()
        [img] = [i for i in df["Images"] if i["Id"] == image_id]
        assert img["Containers"] >= 1 and img["Size"] > 0 and "SharedSize" in img
        [ctr] = [c for c in df["Containers"] if c["Id"] == name]
        assert ctr["SizeRw"] == 6 and ctr["SizeRootFs"] == 6 + img["Size"]
        [vol] = [v for v in df["Volumes"] if v["Name"] == "dfvol"]
        assert vol["UsageData"] == {"Size": 5000, "RefCount": 1}
        table = berth.docker_ok("system", "df")
        assert table.splitlines()[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        assert "Build Cache" in table
        verbose = berth.docker_ok("system", "df", "-v")
        assert "Images space usage:" in verbose and "dfvol" in verbose and name[:12] in verbose
    finally:
        berth.docker("rm", "-f", "dfc")
        berth.docker("volume", "rm", "dfvol")


def test_diff_and_commit_over_a_multilayer_image(berth: Berth, tmp_path: Path) -> None:
    """The image's own whiteouts and opaque dirs hide lower files: what they hide is new again
    when the container writes it (dockerd 20.10 prints the same lines)."""
    multilayer_docker_save(["multi:1"]).write(tmp_path / "multi.tar")
    berth.docker_ok("load", "-i", str(tmp_path / "multi.tar"))
    berth.docker_ok("run", "--name", "ml-src", "multi:1", "sh", "-c",
                    "echo back > /data/gone.txt; rm /data/kept.txt; touch /opq/new.txt; rm /layer2.txt")  # fmt: skip
    try:
        assert berth.docker_ok("diff", "ml-src").splitlines() == [
            "C /data", "A /data/gone.txt", "D /data/kept.txt", "D /layer2.txt", "C /opq", "C /opq/new.txt",
        ]  # fmt: skip
        berth.docker_ok("commit", "ml-src", "mlc:1")
        out = berth.docker("run", "--rm", "mlc:1", "sh", "-c", "ls /data /opq; cat /data/gone.txt; ls /layer2.txt")
        assert out.stdout.split() == ["/data:", "gone.txt", "/opq:", "new.txt", "back"]
        assert "No such file" in out.stderr
        sizes = berth.docker_ok("history", "--format", "{{.Size}}", "mlc:1").split()
        assert sizes[:2] == ["9B", "8B"]  # the new layer, then the image's second one
    finally:
        berth.docker("rm", "-f", "ml-src")
        berth.docker("rmi", "mlc:1", "multi:1")
