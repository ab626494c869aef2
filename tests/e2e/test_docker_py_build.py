"""Builds with docker-py (`images.build`, `APIClient.build`) and compose v1's `build:`, as
they run against dockerd's classic builder."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from harness import Berth

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

def _context(root: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (root / name).write_text(text)
    return root


def _streams(logs: Any) -> str:
    return "".join(str(entry.get("stream", "")) for entry in logs)


def test_images_build_with_options(client: docker.DockerClient, busybox_image: str, tmp_path: Path) -> None:
    ctx = _context(
        tmp_path / "ctx",
        "FROM busybox AS base\nARG V=default\nRUN echo \"v=$V\" > /v\nCOPY app.txt /srv/\n"
        "FROM base AS final\nLABEL stage=final\nCMD [\"cat\", \"/v\", \"/srv/app.txt\"]\n",
        {"app.txt": "app\n"},
    )  # fmt: skip
    image, logs = client.images.build(
        path=str(ctx), tag="dpy:built", buildargs={"V": "given"}, labels={"by": "docker-py"}, rm=True
    )
    try:
        text = _streams(logs)
        assert "Step 1/8 : FROM busybox AS base" in text and "Successfully tagged dpy:built" in text
        assert image.tags == ["dpy:built"]
        assert image.labels == {"by": "docker-py", "stage": "final"}
        assert client.containers.run("dpy:built", remove=True) == b"v=given\napp\n"
        # quiet: the whole stream is the image id (all steps from the cache).
        again, logs = client.images.build(path=str(ctx), tag="dpy:built", buildargs={"V": "given"},
                                          labels={"by": "docker-py"}, quiet=True)  # fmt: skip
        assert again.id == image.id
        assert [entry for entry in logs] == [{"stream": image.id + "\n"}]
        # target and nocache through the same call.
        base, logs = client.images.build(path=str(ctx), tag="dpy:base", target="base", nocache=True, rm=True)
        assert "Using cache" not in _streams(logs)
        assert client.containers.run("dpy:base", ["cat", "/v"], remove=True) == b"v=default\n"
    finally:
        for ref in ("dpy:built", "dpy:base"):
            client.images.remove(ref)


def test_a_failing_step_raises_build_error(client: docker.DockerClient, busybox_image: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path / "ctx", "FROM busybox\nRUN echo going && exit 3\n")
    with pytest.raises(docker.errors.BuildError) as caught:
        client.images.build(path=str(ctx), tag="dpy:failed", forcerm=True)
    assert caught.value.msg == "The command '/bin/sh -c echo going && exit 3' returned a non-zero code: 3"
    assert any(entry.get("stream") == "going\n" for entry in caught.value.build_log)
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("dpy:failed")


def test_api_client_streams_the_json_messages(api: docker.APIClient, busybox_image: str) -> None:
    dockerfile = io.BytesIO(b"FROM busybox\nENV A=1\nRUN echo $A\n")
    messages = list(api.build(fileobj=dockerfile, tag="dpy:api", decode=True, rm=True))
    try:
        streams = [m["stream"] for m in messages if "stream" in m]
        # moby writes each step and its newline as two messages
        assert streams[:3] == ["Step 1/3 : FROM busybox", "\n", streams[2]]
        assert streams[2].startswith(" ---> ") and streams[2].endswith("\n")
        assert any(s.startswith(" ---> Running in ") for s in streams)
        assert "1\n" in streams
        aux = [m["aux"] for m in messages if "aux" in m]
        assert len(aux) == 1 and aux[0]["ID"].startswith("sha256:")
        assert streams[-2:] == [f"Successfully built {aux[0]['ID'][7:19]}\n", "Successfully tagged dpy:api\n"]
    finally:
        api.remove_image("dpy:api")


def test_compose_v1_builds_a_service(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    _context(project / "web", "FROM busybox\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n", {"msg": "from compose\n"})
    (project / "docker-compose.yml").write_text(
        json.dumps({"version": "2.4", "services": {"web": {"build": "./web", "image": "composed:1"}}})
    )
    env = {**os.environ, "DOCKER_HOST": berth.docker_host, "DOCKER_CONFIG": str(berth.docker_config)}
    env.pop("DOCKER_BUILDKIT", None)

    def compose(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker-compose", "-p", "bt", *args], cwd=project, env=env,
                              capture_output=True, text=True, timeout=240)  # fmt: skip

    try:
        built = compose("build")
        assert built.returncode == 0, built.stderr
        assert "Successfully tagged composed:1" in built.stdout + built.stderr
        up = compose("up", "--no-build", "--abort-on-container-exit")
        assert "from compose" in up.stdout, up.stderr
    finally:
        compose("down", "--rmi", "all")
        berth.docker("rmi", "composed:1")
