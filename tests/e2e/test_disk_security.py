"""Issue 15, findings 1 and 5, as an unprivileged host user and with the real docker CLI.

1. A host user (`nobody`) must not run a setuid binary a container made (through the snapshot or
   the bundle's rootfs), nor read engine.db-wal, a bundle's config.json, berth.log, berth.json.
5. A FIFO at an image's /etc/passwd fails `docker run --user someone` at once, clearly, and the
   agent keeps serving.
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Berth, wait_until

pytestmark = pytest.mark.timeout(300)

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NOBODY, *argv], capture_output=True, text=True, timeout=30, check=False, cwd="/"
    )


@pytest.fixture
def traversable_base(berth: Berth) -> Iterator[None]:
    """The e2e roots live in a 0700 mkdtemp; a real install's parent (/var/lib, /run) is 0755."""
    old = stat.S_IMODE(os.stat(berth.base).st_mode)
    os.chmod(berth.base, 0o755)
    try:
        yield
    finally:
        os.chmod(berth.base, old)


def test_nobody_cannot_run_setuid_copies_or_read_secrets(
    berth: Berth, busybox_image: str, traversable_base: None, tmp_path: Path
) -> None:
    script = "cp /bin/busybox /tmp/id; chmod 4755 /tmp/id; echo ready; sleep 300"
    cid = berth.docker_ok(
        "run", "-d", "-e", "API_KEY=sekrit-api-key", busybox_image, "sh", "-c", script
    ).strip()
    try:
        wait_until(lambda: "ready" in berth.docker("logs", cid).stdout, 30, "container ready")
        through_bundle = berth.exec_root / "agent" / "tasks" / cid / "rootfs" / "tmp" / "id"
        through_snapshot = [
            p for p in (berth.data_root / "lifecycle" / "snapshots").glob("*/fs/tmp/id")
        ]
        assert through_bundle.exists() and len(through_snapshot) == 1  # as root they are there
        for path in (through_bundle, through_snapshot[0]):
            assert os.stat(path).st_mode & stat.S_ISUID
            # Through a shell: setpriv's own execvp still holds root's capabilities (they are
            # dropped at that exec), so `setpriv <path>` would find any file.
            res = as_nobody("/bin/sh", "-c", 'exec "$0"', str(path))
            assert "euid=0" not in res.stdout and "uid=0" not in res.stdout, res.stdout
            assert res.returncode != 0 and "Permission denied" in res.stderr, res

        wal = berth.data_root / "engine" / "engine.db-wal"
        config = berth.exec_root / "agent" / "tasks" / cid / "config.json"
        assert "sekrit-api-key" in config.read_text()
        secrets = [
            wal,
            berth.data_root / "engine" / "engine.db",
            config,
            berth.exec_root / "berth.log",
            berth.exec_root / "berth.json",
        ]
        for path in secrets:
            assert path.exists(), path
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
            res = as_nobody("cat", str(path))
            assert res.returncode != 0 and "Permission denied" in res.stderr, (path, res)
        modes = {
            berth.data_root: 0o711,
            berth.exec_root: 0o711,
            berth.data_root / "engine": 0o700,
            berth.data_root / "lifecycle": 0o700,
            berth.data_root / "agent": 0o700,
            berth.exec_root / "agent": 0o700,
            berth.exec_root / "runc": 0o700,
        }
        assert {p: stat.S_IMODE(os.stat(p).st_mode) for p in modes} == modes

        # docker cp of a running container still goes through its own root (pid checked).
        berth.docker_ok("cp", f"{cid}:/tmp/id", str(tmp_path / "copied"))
        assert (tmp_path / "copied").stat().st_size == through_bundle.stat().st_size
    finally:
        berth.docker("rm", "-f", cid)


def _fifo_passwd_image() -> bytes:
    from berth_testsupport import images as testimages

    src = tarfile.open(fileobj=io.BytesIO(testimages.busybox_rootfs_tar()))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as dst:
        for member in src.getmembers():
            if member.name.lstrip("./") in ("etc/passwd",):
                continue
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        fifo = tarfile.TarInfo("etc/passwd")
        fifo.type = tarfile.FIFOTYPE
        fifo.mode = 0o644
        dst.addfile(fifo)
    return out.getvalue()


def test_fifo_at_etc_passwd_fails_fast_and_agent_keeps_serving(
    berth: Berth, busybox_image: str, tmp_path: Path
) -> None:
    tar = tmp_path / "fifo-passwd.tar"
    tar.write_bytes(_fifo_passwd_image())
    berth.docker_ok("import", str(tar), "berth-test/fifo-passwd:1", timeout=120)
    try:
        for _ in range(3):  # each one used to hold an agent thread forever
            res = berth.docker(
                "run", "--rm", "--user", "someone", "berth-test/fifo-passwd:1", "true", timeout=60
            )
            assert res.returncode != 0
            assert "/etc/passwd in the container's rootfs: not a regular file (a FIFO)" in (
                res.stderr
            ), res.stderr
        assert berth.docker_ok("run", "--rm", busybox_image, "echo", "still serving") == (
            "still serving\n"
        )
    finally:
        berth.docker("rmi", "-f", "berth-test/fifo-passwd:1")
