"""The e2e session: one real berth (`berth up -d`) on temp roots, an OTLP receiver, an image."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from berth_kit.testing import free_port

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make helpers importable

from cleanup import cleanup_roots  # noqa: E402
from harness import Berth  # noqa: E402
from otlp_receiver import OtlpReceiver  # noqa: E402

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
    if os.geteuid() != 0:
        pytest.skip("e2e tests need root (runc, overlayfs)")
    # Short paths: the API socket lives in the exec root and sun_path holds 108 bytes.
    base = Path(tempfile.mkdtemp(prefix="b-", dir="/tmp"))
    exec_root, data_root, docker_config = base / "x", base / "d", base / "dc"
    docker_config.mkdir()
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("OTEL_")]:
        del env[key]
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    b = Berth(base, exec_root, data_root, receiver, env, docker_config)
    try:
        res = b.berth(
            "up", "-d",
            "-H", b.docker_host,
            "--exec-root", str(exec_root),
            "--data-root", str(data_root),
            "--nats-port", str(free_port()),
            "--ready-timeout", str(UP_TIMEOUT),
            timeout=UP_TIMEOUT + 45,
        )
        if res.returncode != 0:
            pytest.fail(f"`berth up -d` failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        yield b
    finally:
        # Nested finally: even a pytest-timeout firing inside `berth down` must not skip the
        # cleanup (pytest's outcome exceptions are BaseExceptions).
        try:
            res = b.berth("down", "--exec-root", str(exec_root), timeout=60)
            if res.returncode != 0:
                print(f"berth down failed: {res.stderr}", file=sys.stderr)
        finally:
            report = cleanup_roots([exec_root, data_root, base])
            if any(report.values()):
                print(f"e2e cleanup: {report}", file=sys.stderr)


@pytest.fixture(scope="session")
def busybox_image(berth: Berth) -> str:
    """busybox:latest, imported from a rootfs tar built from Debian's static busybox."""
    from berth_lifecycle import testimages

    tar = berth.base / "busybox-rootfs.tar"
    tar.write_bytes(testimages.busybox_rootfs_tar())
    res = berth.docker("import", str(tar), "busybox:latest", timeout=120)
    if res.returncode != 0:
        pytest.fail(f"`docker import` failed ({res.returncode}): {res.stderr}")
    return "busybox:latest"
