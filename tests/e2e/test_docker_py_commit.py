"""docker-py, unchanged: container.commit() / diff() / export(), image.history(), client.df();
and a committed image that outlives a restart of every service it touches."""

from __future__ import annotations

import io
import tarfile

import docker
import pytest
from berth_testsupport.images import busybox_rootfs_tar
from harness import Berth
from test_survival import _kill9

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _moby_size(rootfs: bytes) -> int:
    with tarfile.open(fileobj=io.BytesIO(rootfs)) as tar:
        return sum(m.size if m.isreg() else len(m.linkname) if m.issym() else 0 for m in tar)


def test_commit_diff_export_history_df(client: docker.DockerClient, busybox_image: str) -> None:
    c = client.containers.run(busybox_image, ["sh", "-c", "echo py > /py.txt; rm /bin/ls"],
                              detach=True, name="py-commit")  # fmt: skip
    try:
        assert c.wait(timeout=60)["StatusCode"] == 0
        changes = {(d["Path"], d["Kind"]) for d in c.diff()}
        assert changes == {("/py.txt", 1), ("/bin", 0), ("/bin/ls", 2)}
        image = c.commit(repository="pycommit", tag="v1", message="from py", author="py",
                         changes=["LABEL made=by-py", 'CMD ["cat", "/py.txt"]'])  # fmt: skip
        assert image.labels == {"made": "by-py"}
        assert client.containers.run("pycommit:v1", remove=True) == b"py\n"
        history = image.history()
        assert history[0]["Id"] == image.id and history[0]["Tags"] == ["pycommit:v1"]
        assert history[0]["Comment"] == "from py" and history[0]["Size"] == 3
        assert history[0]["CreatedBy"] == "sh -c echo py > /py.txt; rm /bin/ls"
        base = client.images.get(busybox_image)
        assert history[1]["Id"] == base.id
        # An imported image's own history, as dockerd shows it; sizes as moby's overlay2
        # measures a layer (directory.Size: symlinks count their target's length).
        [entry] = base.history()
        assert entry["Comment"] == "Imported from -" and entry["CreatedBy"] == ""
        assert entry["Size"] == _moby_size(busybox_rootfs_tar())
        data = b"".join(c.export())
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = set(tar.getnames())
        assert "py.txt" in names and "bin/busybox" in names and "bin/ls" not in names
        df = client.df()
        assert df["BuildCache"] is None
        assert any(i["Id"] == image.id and i["Size"] == base.attrs["Size"] + 3 for i in df["Images"])
        [mine] = [x for x in df["Containers"] if x["Id"] == c.id]
        assert mine["SizeRw"] == 3
    finally:
        c.remove(force=True)
        try:
            client.images.remove("pycommit:v1")
        except docker.errors.ImageNotFound:
            pass


def test_committed_image_survives_restarts(berth: Berth, busybox_image: str) -> None:
    berth.docker_ok("run", "--name", "survive-src", busybox_image, "sh", "-c", "echo kept > /kept")
    try:
        image_id = berth.docker_ok("commit", "survive-src", "survivor:1").strip()
        for service in ("berth-lifecycle", "berth-engine", "berth-runtime-agent", "berth-api-gateway"):
            old = _kill9(berth, service)
            berth.wait_restarted(service, old, timeout=40)
        assert berth.docker_ok("image", "inspect", "-f", "{{.Id}}", "survivor:1").strip() == image_id
        assert berth.docker_ok("run", "--rm", "survivor:1", "cat", "/kept") == "kept\n"
        assert berth.docker_ok("history", "-q", "--no-trunc", "survivor:1").split()[0] == image_id
    finally:
        berth.docker("rm", "-f", "survive-src")
        berth.docker("rmi", "survivor:1")
