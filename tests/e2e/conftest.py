"""The e2e session: one real berth (`berth up -d`) on temp roots, an OTLP receiver, an image."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make helpers importable

from berth_kit.otlpreceiver import OtlpReceiver  # noqa: E402
from harness import Berth  # noqa: E402

UP_TIMEOUT = 60.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


@pytest.fixture(scope="session")
def berth(receiver: OtlpReceiver) -> Iterator[Berth]:
    """One berth for the whole session, exporting its spans to the receiver."""
    if os.geteuid() != 0:
        pytest.skip("e2e tests need root (runc, overlayfs)")
    b = Berth.create(receiver)
    try:
        b.up_detached(UP_TIMEOUT)
        yield b
    finally:
        b.teardown()


@pytest.fixture
def own_berth() -> Iterator[Berth]:
    """A berth of the test's own (a test that stops and starts the whole berth)."""
    b = Berth.create(None)
    try:
        b.up_detached()
        yield b
    finally:
        b.teardown()


@pytest.fixture
def busybox_image(berth: Berth) -> str:
    """busybox:latest, imported from a rootfs tar built from Debian's static busybox.

    Checked before every test and imported again if missing: one test's prune or rmi must not
    turn every later test red.
    """
    ref = "busybox:latest"
    if berth.docker("image", "inspect", "--format", "{{.Id}}", ref).returncode != 0:
        berth.import_busybox(ref)
    return ref


@pytest.fixture
def client(berth: Berth) -> Iterator[docker.DockerClient]:
    """docker-py, unchanged, on the session's berth (its high-level client)."""
    c = docker.DockerClient(base_url=berth.docker_host, version="auto", timeout=120)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def api(client: docker.DockerClient) -> docker.APIClient:
    """docker-py's low-level client, as docker-py's own tests use it."""
    return client.api


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the tail of berth.log (every service logs there) to the report."""
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    if rep.failed and call.when in ("setup", "call"):
        funcargs = getattr(item, "funcargs", {})
        for value in funcargs.values():
            if isinstance(value, Berth):
                rep.sections.append((f"berth.log tail ({value.exec_root})", value.log_tail(200)))
