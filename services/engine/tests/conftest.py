"""Shared fixtures: records built the way create builds them, without any service."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from berth_common.gotime import rfc3339nano
from berth_contracts.docker import ContainerConfig, CreateRequest
from berth_engine.containers.merge import final_command, merge_config, normalise_host_config
from berth_engine.containers.naming import new_container_id
from berth_engine.containers.records import Record

# Test modules import the service harness by name (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

IMAGE_ID = "sha256:" + "ab" * 32
BUSYBOX = ContainerConfig(
    env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], cmd=["sh"]
)


def build_record(
    name: str,
    request: CreateRequest | None = None,
    *,
    cid: str | None = None,
    image: ContainerConfig = BUSYBOX,
    created_ns: int | None = None,
) -> Record:
    req = request or CreateRequest(image="busybox", cmd=["echo", "hello"])
    cid = cid or new_container_id()
    config = merge_config(req, image, cid, req.image)
    argv = final_command(config)
    return Record(
        id=cid,
        name=name,
        created=rfc3339nano(created_ns),
        request=req,
        config=config,
        host_config=normalise_host_config(req.host_config),
        path=argv[0],
        args=argv[1:],
        image_id=IMAGE_ID,
        image_name=req.image,
        node="test-node",
    )


@pytest.fixture
def make_record() -> Callable[..., Record]:
    return build_record
