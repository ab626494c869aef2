"""Behaviours docker-py and the CLI rely on, answered as dockerd 20.10 answers them (issue 16):
null in JSON bodies, exec framing by the start body, copies into mount points."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from berth_testsupport.images import file_tar
from harness import Berth

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


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
        assert api.put_archive(cid, "/vol1", file_tar("f.txt", b"in the volume\n"))
        assert api.put_archive(cid, "/bnd", file_tar("f.txt", b"in the bind\n"))
        assert (bind / "f.txt").read_bytes() == b"in the bind\n"
        stream, stat = api.get_archive(cid, "/vol1/f.txt")
        assert stat["size"] == len(b"in the volume\n")
        b"".join(stream)
        with pytest.raises(docker.errors.NotFound, match="Could not find the file /nope"):
            api.put_archive(cid, "/nope", file_tar("f.txt", b"x"))
        api.start(cid)
        assert api.wait(cid, timeout=60)["StatusCode"] == 0
        assert api.logs(cid) == b"in the volume\nin the bind\n"
    finally:
        api.remove_container(cid, force=True, v=True)


def test_prune_reports_the_writable_layers_it_removed(
    api: docker.APIClient, busybox_image: str
) -> None:
    label = {"berth-test": "prune-space"}
    ids = []
    for _ in range(2):
        cid = api.create_container(
            busybox_image,
            ["dd", "if=/dev/zero", "of=/big", "bs=1k", "count=100"],
            labels=label,
            host_config=api.create_host_config(network_mode="none"),
        )["Id"]
        api.start(cid)
        assert api.wait(cid, timeout=60)["StatusCode"] == 0
        ids.append(cid)
    pruned = api.prune_containers(filters={"label": "berth-test=prune-space"})
    assert sorted(pruned["ContainersDeleted"]) == sorted(ids)
    # dockerd 20.10 answers 204800 for the same two containers: /big twice, as directory.Size
    # counts (mount points runc made are empty files, counted 0).
    assert 2 * 102400 <= pruned["SpaceReclaimed"] < 2 * 102400 + 4096


def test_restart_policy_checked_in_dockerds_words(berth: Berth, busybox_image: str) -> None:
    for policy, words in (
        ("always:3", "maximum retry count cannot be used with restart policy 'always'"),
        ("unless-stopped:1", "maximum retry count cannot be used with restart policy 'unless-stopped'"),
        ("on-failure:-1", "maximum retry count cannot be negative"),
        ("sometimes", "invalid restart policy 'sometimes'"),
    ):
        res = berth.docker("create", "--network", "none", "--restart", policy, busybox_image, "true")
        assert res.returncode != 0
        assert f"Error response from daemon: {words}" in res.stderr, res.stderr
    cid = berth.docker_ok("create", "--network", "none", busybox_image, "true").strip()
    try:
        res = berth.docker("update", "--restart", "always:2", cid)
        assert "maximum retry count cannot be used with restart policy 'always'" in res.stderr
        res = berth.docker("update", "--restart", "on-failure:-2", cid)
        assert "maximum retry count cannot be negative" in res.stderr
        berth.docker_ok("update", "--restart", "on-failure:2", cid)
    finally:
        berth.docker("rm", "-f", cid)


def test_log_drivers_none_local_rotation_unknown(
    berth: Berth, api: docker.APIClient, busybox_image: str
) -> None:
    script = "for i in $(seq 1 200); do echo line-$i; done; echo err >&2"
    made: list[str] = []
    try:
        for driver in ("none", "local"):
            cid = berth.docker_ok(
                "run", "-d", "--network", "none", "--log-driver", driver, busybox_image, "sh", "-c", script
            ).strip()
            made.append(cid)
            assert api.wait(cid, timeout=60)["StatusCode"] == 0
            res = berth.docker("logs", cid)
            if driver == "none":
                assert res.returncode != 0
                assert res.stderr.strip() == (
                    "Error response from daemon: configured logging driver does not support reading"
                )
                with pytest.raises(docker.errors.APIError) as err:
                    api.logs(cid)
                assert err.value.response.status_code == 501
            else:
                assert res.stdout.splitlines() == [f"line-{i}" for i in range(1, 201)]
                assert res.stderr == "err\n"
            assert api.inspect_container(cid)["LogPath"] == ""  # as dockerd: json-file only
        cid = berth.docker_ok(
            "run", "-d", "--network", "none", "--log-opt", "max-size=1k", "--log-opt", "max-file=2",
            busybox_image, "sh", "-c", script,
        ).strip()  # fmt: skip
        made.append(cid)
        assert api.wait(cid, timeout=60)["StatusCode"] == 0
        kept = berth.docker_ok("logs", cid).splitlines()
        assert kept[-1] == "line-200" and 10 < len(kept) < 60  # two files of ~1 kB, not 200 lines
        assert kept == [f"line-{i}" for i in range(201 - len(kept), 201)]
        log_path = Path(api.inspect_container(cid)["LogPath"])
        assert sorted(p.name for p in log_path.parent.iterdir()) == [
            log_path.name, log_path.name + ".1"
        ]  # fmt: skip
        res = berth.docker("run", "--rm", "--log-driver", "asdf", busybox_image, "true")
        assert "logger: no log driver named 'asdf' is registered" in res.stderr
        with pytest.raises(docker.errors.APIError) as err:
            api.create_container(
                busybox_image, ["true"], host_config=api.create_host_config(log_config={"Type": "asdf"})
            )
        assert err.value.response.status_code == 400
    finally:
        for cid in made:
            api.remove_container(cid, force=True)
