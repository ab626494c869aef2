"""The builder service on a real, locked nats-server: BuildPrepare with the gateway's and the
builder's own credentials, the context POSTed over HTTP, the build stream back."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from berth_builder.build import BuildError, BuildInputs, Output, StageResults, StepExecutor
from berth_builder.dispatch import LayerStep, StageState
from berth_builder.service import Builder
from berth_contracts import subjects
from berth_contracts.builder import BuilderRequest, BuildOptions, BuildPrepare, UploadTarget
from berth_contracts.buspermissions import API_GATEWAY, BUILDER
from berth_contracts.errors import NotImplementedByBerth
from berth_kit.busauth import creds_path
from berth_kit.nats_conn import connect
from berth_kit.rpc import RpcClient, RpcServer
from berth_kit.testing import authenticated_nats_server

pytestmark = pytest.mark.anyio


class StepsUnavailable:
    """An executor that refuses every step needing an image or a container (no engine)."""

    MESSAGE = "berth's builder has no engine to run build steps with"

    def for_build(self, build: BuildInputs) -> StepExecutor:
        return self

    async def base_image(self, ref: str, *, pull: bool, platform: str) -> AsyncIterator[Output]:
        raise BuildError(self.MESSAGE)
        yield {}  # pragma: no cover - makes this an async generator

    def new_stage(self) -> None:
        pass

    async def metadata_step(self, state: StageState, image_id: str) -> AsyncIterator[Output]:
        raise BuildError(self.MESSAGE)
        yield {}  # pragma: no cover

    async def layer_step(
        self, state: StageState, image_id: str, step: LayerStep, results: StageResults
    ) -> AsyncIterator[Output]:
        raise BuildError(self.MESSAGE)
        yield {}  # pragma: no cover

    async def tag(self, image_id: str, tag: str) -> str:
        raise BuildError(self.MESSAGE)


@pytest.fixture(scope="module")
def bus() -> Iterator[tuple[str, Path]]:
    with authenticated_nats_server() as found:
        yield found


@dataclass
class Harness:
    client: RpcClient
    builder: Builder
    root: Path

    async def build(self, body: bytes, **options: Any) -> list[dict[str, Any]]:
        """What the gateway will do: ask for a URL, POST the context, read the JSON lines."""
        target = await self.client.request(
            subjects.BUILDER_RPC, BuildPrepare(options=BuildOptions(**options)), UploadTarget, timeout=30
        )
        async with aiohttp.ClientSession() as session, session.post(target.url, data=body) as resp:
            assert resp.status == 200, await resp.text()
            text = await resp.text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
async def harness(tmp_path: Path, bus: tuple[str, Path]) -> AsyncIterator[Harness]:
    url, bus_dir = bus
    served = await connect(url, BUILDER, creds_file=str(creds_path(bus_dir, BUILDER)))
    caller = await connect(url, API_GATEWAY, creds_file=str(creds_path(bus_dir, API_GATEWAY)))
    builder = Builder(tmp_path / "builder", StepsUnavailable())
    await builder.start()
    async with anyio.create_task_group() as tg:
        server = RpcServer(served, subjects.BUILDER_RPC, BuilderRequest, queue=subjects.BUILDER_QUEUE)
        builder.register(server)
        await server.start(tg)
        try:
            yield Harness(RpcClient(caller), builder, tmp_path / "builder")
        finally:
            await server.stop()
            await builder.stop()
            tg.cancel_scope.cancel()
    await served.close()
    await caller.close()


def context(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def test_steps_stop_clearly_until_the_engine_can_commit(harness: Harness) -> None:
    lines = await harness.build(context({"Dockerfile": b"FROM busybox\nRUN true\n"}))
    assert lines[:2] == [{"stream": "Step 1/2 : FROM busybox"}, {"stream": "\n"}]  # two, as moby
    assert lines[-1]["errorDetail"]["message"] == StepsUnavailable.MESSAGE
    assert lines[-1]["error"] == StepsUnavailable.MESSAGE
    assert os.listdir(harness.root / "contexts") == []  # the context is gone with the build


async def test_scratch_stages_resolve_before_the_executor_is_needed(harness: Harness) -> None:
    dockerfile = b"ARG X=1\nFROM scratch AS base\nFROM base\nENV A=$X\n"
    lines = await harness.build(context({"Dockerfile": dockerfile}))
    assert [m.get("stream") for m in lines[:-1] if m.get("stream") != "\n"] == [
        "Step 1/4 : ARG X=1", "Step 2/4 : FROM scratch AS base", " ---> \n",
        "Step 3/4 : FROM base", " ---> \n", "Step 4/4 : ENV A=$X",
    ]  # fmt: skip
    assert lines[-1]["errorDetail"]["message"] == StepsUnavailable.MESSAGE


@pytest.mark.parametrize(
    ("files", "options", "message"),
    [
        ({"Dockerfile": b"FROM a\nENV PATH\n"}, {}, "failed to parse Dockerfile: ENV must have two arguments"),
        ({"Dockerfile": b"FROM a\nNOPE\n"}, {}, "dockerfile parse error line 2: unknown instruction: NOPE"),
        ({"Dockerfile": b"FROM a\n"}, {"target": "x"}, "failed to reach build target x in Dockerfile"),
        ({"Dockerfile": b""}, {}, "the Dockerfile (Dockerfile) cannot be empty"),
        ({"other": b"FROM a\n"}, {}, "Cannot locate specified Dockerfile: Dockerfile"),
        ({"other": b"FROM a\n"}, {"dockerfile": "../../etc/x"}, "Cannot locate specified Dockerfile: ../../etc/x"),
        ({"Dockerfile": b"FROM scratch\n"}, {}, "No image was generated. Is your Dockerfile empty?"),
    ],
)
async def test_bad_dockerfiles(harness: Harness, files: dict[str, bytes], options: dict[str, Any], message: str) -> None:
    lines = await harness.build(context(files), **options)
    assert lines[-1]["errorDetail"]["message"] == message


async def test_other_dockerfile_names_and_a_bare_dockerfile(harness: Harness) -> None:
    lines = await harness.build(context({"dockerfile": b"FROM busybox\n"}))  # lower case fallback
    assert lines[0] == {"stream": "Step 1/1 : FROM busybox"}
    lines = await harness.build(context({"sub/Build": b"FROM alpine\n"}), dockerfile="sub/Build")
    assert lines[0] == {"stream": "Step 1/1 : FROM alpine"}
    lines = await harness.build(b"FROM debian\n")  # `docker build - < Dockerfile` without a tar
    assert lines[0] == {"stream": "Step 1/1 : FROM debian"}


async def test_a_broken_archive_is_an_error_line(harness: Harness) -> None:
    body = context({"Dockerfile": b"FROM a\n" * 200})
    lines = await harness.build(body[:600])
    assert lines[-1]["errorDetail"]["message"].startswith("invalid build context")
    assert os.listdir(harness.root / "contexts") == []


async def test_refused_options_before_any_byte(harness: Harness) -> None:
    with pytest.raises(NotImplementedByBerth, match="no remote URL"):
        await harness.client.request(
            subjects.BUILDER_RPC, BuildPrepare(options=BuildOptions(remote="https://example.com/x.git")), UploadTarget
        )


async def test_upload_urls_are_single_use(harness: Harness) -> None:
    target = await harness.client.request(subjects.BUILDER_RPC, BuildPrepare(), UploadTarget)
    async with aiohttp.ClientSession() as session:
        async with session.post(target.url, data=context({"Dockerfile": b"FROM a\n"})) as resp:
            assert resp.status == 200
        async with session.post(target.url, data=b"") as resp:
            assert resp.status == 404


async def test_a_client_gone_mid_upload_leaves_nothing_and_nothing_waiting(harness: Harness) -> None:
    """The context is indexed while it arrives: a body cut short must end that reader too."""
    body = context({"Dockerfile": b"FROM a\n", **{f"f{i}": b"x" * 4096 for i in range(50)}})
    target = await harness.client.request(subjects.BUILDER_RPC, BuildPrepare(), UploadTarget)
    url = target.url.removeprefix("http://")
    host_port, path = url.split("/", 1)
    host, port = host_port.rsplit(":", 1)
    sock = await anyio.connect_tcp(host, int(port))
    head = f"POST /{path} HTTP/1.1\r\nHost: {host_port}\r\nContent-Length: {len(body)}\r\n\r\n"
    await sock.send(head.encode() + body[: len(body) // 2])
    await anyio.sleep(0.3)  # the reader is waiting for the rest
    await sock.aclose()
    with anyio.fail_after(10):
        while os.listdir(harness.root / "contexts"):  # noqa: ASYNC110 - a directory, not an event
            await anyio.sleep(0.05)
    lines = await harness.build(context({"Dockerfile": b"FROM a\n"}))
    assert lines[0] == {"stream": "Step 1/1 : FROM a"}
