"""Helpers the HostConfig e2e tests share (a module of its own: a test module imported by name
collides with a unit test module of the same name when the whole suite runs)."""

from __future__ import annotations

import json

from harness import Berth


def run(berth: Berth, image: str, *args: str) -> str:
    """`docker run --rm --network none [options...] image sh -c SCRIPT` (SCRIPT last); its output."""
    return berth.docker_ok("run", "--rm", "--network", "none", *args[:-1], image, "sh", "-c", args[-1])


def create(berth: Berth, host_config: dict[str, object], image: str) -> tuple[int, dict]:
    """POST /containers/create with this HostConfig; the status and the decoded body."""
    body = {"Image": image, "Cmd": ["sleep", "30"], "HostConfig": {"NetworkMode": "none", **host_config}}
    res = berth.http(
        "POST", "/containers/create", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    return res.status, json.loads(res.body)
