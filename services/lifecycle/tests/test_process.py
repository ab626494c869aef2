"""`python -m berth_lifecycle` as a real process: health, load over HTTP, restart keeps state."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from berth_contracts import subjects
from berth_contracts.engine import ImageUpload, UploadTarget
from berth_contracts.lifecycle import ImageListAll, ImageRecords
from berth_kit.nats_conn import connect
from berth_kit.rpc import RpcClient
from berth_kit.testing import ServiceProcess, wait_for_ping
from berth_testsupport import images as testimages

pytestmark = pytest.mark.anyio


async def test_service_process(tmp_path: Path, nats_url: str) -> None:
    env = {"BERTH_DATA_ROOT": str(tmp_path), "BERTH_NODE": "proc-test", "BERTH_LIFECYCLE_HTTP": "127.0.0.1:0"}
    service = ServiceProcess("berth_lifecycle", "berth-lifecycle", nats_url, env, tmp_path / "lifecycle.log")
    nc = await connect(nats_url, "proc-test")
    client = RpcClient(nc)
    subject = subjects.lifecycle_rpc("proc-test")
    try:
        service.start(wait=False)
        pong = await wait_for_ping(nats_url, "berth-lifecycle", within=30)
        assert pong.service == "berth-lifecycle" and pong.node == "proc-test"
        target = await client.request(subject, ImageUpload(kind="load"), UploadTarget)
        async with aiohttp.ClientSession() as session:
            async with session.post(target.url, data=testimages.docker_save_archive(["p:1"]).data) as resp:
                assert (await resp.text()).strip() == '{"stream":"Loaded image: p:1\\n"}'
        assert service.stop(within=20) == 0
        assert (tmp_path / "lifecycle" / "meta.db").exists()

        service.start(wait=False)
        await wait_for_ping(nats_url, "berth-lifecycle", within=20)
        images = (await client.request(subject, ImageListAll(), ImageRecords)).images
        assert [i.repo_tags for i in images] == [["p:1"]]
    finally:
        service.stop()
        await nc.close()
