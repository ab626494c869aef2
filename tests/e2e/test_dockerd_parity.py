"""Behaviours docker-py and the CLI rely on, answered as dockerd 20.10 answers them (issue 16):
null in JSON bodies, exec framing by the start body, copies into mount points."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from harness import Berth

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture
def api(berth: Berth) -> Iterator[docker.APIClient]:
    c = docker.APIClient(base_url=berth.docker_host, version="auto", timeout=60)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def sleeper(api: docker.APIClient, busybox_image: str) -> Iterator[str]:
    cid = api.create_container(
        busybox_image, ["sleep", "300"], host_config=api.create_host_config(network_mode="none")
    )["Id"]
    api.start(cid)
    try:
        yield cid
    finally:
        api.remove_container(cid, force=True)


def _tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_null_fields_read_as_go_zero_values(api: docker.APIClient, busybox_image: str) -> None:
    # docker-py sends "StartPeriod": null (and Timeout, Retries) for a partial healthcheck.
    cid = api.create_container(
        busybox_image,
        ["sleep", "1"],
        healthcheck={"test": ["CMD", "true"], "interval": 1_000_000_000},
        labels={"a": "1"},
        host_config=api.create_host_config(network_mode="none"),
    )["Id"]
    try:
        health = api.inspect_container(cid)["Config"]["Healthcheck"]
        assert health["Test"] == ["CMD", "true"]
        assert (health["Interval"], health.get("StartPeriod", 0)) == (1_000_000_000, 0)
    finally:
        api.remove_container(cid, force=True)
    body = {
        "Image": busybox_image,
        "Cmd": ["true"],
        "Tty": None,
        "Labels": {"empty": None},
        "HostConfig": {"RestartPolicy": None, "NetworkMode": "none", "Memory": None},
    }
    res = api._post_json(api._url("/containers/create"), data=body)
    assert res.status_code == 201, res.text
    cid = res.json()["Id"]
    try:
        inspect = api.inspect_container(cid)
        assert inspect["Config"]["Labels"] == {"empty": ""}  # dockerd: a null map value is ""
        assert inspect["Config"]["Tty"] is False
        assert inspect["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")
    finally:
        api.remove_container(cid, force=True)


def test_exec_stream_framed_by_the_start_bodys_tty(api: docker.APIClient, sleeper: str) -> None:
    script = ["sh", "-c", "echo out; echo err >&2"]
    # Created with a terminal, started without: multiplexed (the pty merges stderr into stdout).
    exec_id = api.exec_create(sleeper, script, tty=True)["Id"]
    assert api.exec_start(exec_id, tty=False, demux=True) == (b"out\r\nerr\r\n", None)
    # Created without, started with: a raw stream, which has no room for stderr.
    exec_id = api.exec_create(sleeper, script, tty=False)["Id"]
    assert api.exec_start(exec_id, tty=True, demux=True) == (b"out\n", None)
    # socket=True starts without Tty: the frames are there to read (stream 1, length 10).
    exec_id = api.exec_create(sleeper, ["echo", "framed"], tty=True)["Id"]
    sock = api.exec_start(exec_id, socket=True)
    try:
        data = b""
        while len(data) < 8 + len(b"framed\r\n"):
            chunk = sock._sock.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    assert data == b"\x01\x00\x00\x00\x00\x00\x00\x08framed\r\n"


def test_put_archive_into_mount_points_of_a_container_never_started(
    api: docker.APIClient, busybox_image: str, tmp_path: Path
) -> None:
    bind = tmp_path / "bind"
    bind.mkdir()
    cid = api.create_container(
        busybox_image,
        ["sh", "-c", "cat /vol1/f.txt /bnd/f.txt"],
        volumes=["/vol1"],
        host_config=api.create_host_config(
            network_mode="none", binds={str(bind): {"bind": "/bnd", "mode": "rw"}}
        ),
    )["Id"]
    try:
        assert api.put_archive(cid, "/vol1", _tar("f.txt", b"in the volume\n"))
        assert api.put_archive(cid, "/bnd", _tar("f.txt", b"in the bind\n"))
        assert (bind / "f.txt").read_bytes() == b"in the bind\n"
        stream, stat = api.get_archive(cid, "/vol1/f.txt")
        assert stat["size"] == len(b"in the volume\n")
        b"".join(stream)
        with pytest.raises(docker.errors.NotFound, match="Could not find the file /nope"):
            api.put_archive(cid, "/nope", _tar("f.txt", b"x"))
        api.start(cid)
        assert api.wait(cid, timeout=60)["StatusCode"] == 0
        assert api.logs(cid) == b"in the volume\nin the bind\n"
    finally:
        api.remove_container(cid, force=True, v=True)
