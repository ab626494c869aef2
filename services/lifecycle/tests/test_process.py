"""`python -m berth_lifecycle` as a real process: health, load over HTTP, restart keeps state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import anyio
import pytest
from berth_contracts import subjects
from berth_contracts.base import Ping, Pong
from berth_contracts.engine import ImageUpload, UploadTarget
from berth_contracts.lifecycle import ImageListAll, ImageRecords
from berth_kit.nats_conn import connect
from berth_kit.rpc import RpcClient
from berth_testsupport import images as testimages

pytestmark = pytest.mark.anyio


def _start(tmp_path: Path, nats_url: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, BERTH_NATS_URL=nats_url, BERTH_DATA_ROOT=str(tmp_path), BERTH_NODE="proc-test",
               BERTH_LIFECYCLE_HTTP="127.0.0.1:0")
    return subprocess.Popen([sys.executable, "-m", "berth_lifecycle"], env=env)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=20)


async def test_service_process(tmp_path: Path, nats_url: str) -> None:
    nc = await connect(nats_url, "proc-test")
    client = RpcClient(nc)
    subject = subjects.lifecycle_rpc("proc-test")
    proc = _start(tmp_path, nats_url)
    try:
        pong = await client.request(subjects.health("berth-lifecycle"), Ping(), Pong, timeout=5, attempts=10)
        assert pong.service == "berth-lifecycle" and pong.node == "proc-test"
        target = await client.request(subject, ImageUpload(kind="load"), UploadTarget)
        async with aiohttp.ClientSession() as session:
            async with session.post(target.url, data=testimages.docker_save_archive(["p:1"]).data) as resp:
                assert (await resp.text()).strip() == '{"stream":"Loaded image: p:1\\n"}'
        assert _stop(proc) == 0
        assert (tmp_path / "lifecycle" / "meta.db").exists()

        proc = _start(tmp_path, nats_url)
        with anyio.fail_after(20):
            await client.request(subjects.health("berth-lifecycle"), Ping(), Pong, timeout=5, attempts=10)
        images = (await client.request(subject, ImageListAll(), ImageRecords)).images
        assert [i.repo_tags for i in images] == [["p:1"]]
    finally:
        if proc.poll() is None:
            _stop(proc)
        await nc.close()
