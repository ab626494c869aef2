"""The two engines bench.py drives: a scratch berth (`berth up -d`) and a scratch dockerd.

dockerd runs with its default bridge and iptables inside a network namespace made here
(`ip netns add`, loopback only): docker0, its NAT and its firewall chains live in that namespace,
the host's rules are untouched (`host_firewall` is compared before and after), and the namespace
goes with dockerd. berth runs on the host with its default bridge (netavark's rules, which berth
removes at `berth down`).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from procmem import cmdline, tree


@dataclass
class Engine:
    name: str
    sock: Path  # unix socket of the Docker API
    root_pid: Callable[[], int | None]  # top of the engine's process tree
    env: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    def docker(
        self,
        *args: str,
        timeout: float = 300,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        full = dict(os.environ, DOCKER_HOST=self.host, **self.env, **(env or {}))
        return subprocess.run(
            ["docker", *args],
            env=full,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=60)
        self.path = str(path)

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(self.path)
        self.sock = s


def api_get(conn: UnixHTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status} {body[:200]!r}")
    return body


@contextlib.contextmanager
def berth_running(
    base: Path, extra_env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> Iterator[Engine]:
    """prefix: runs berth through it (NetBed.enter: in another host's network namespace)."""
    exec_root, data_root = base / "run", base / "data"
    sock = exec_root / "docker.sock"
    berth = [*prefix, sys.executable, "-m", "berth_cli"]
    env = dict(os.environ, **(extra_env or {}))
    subprocess.run(
        [
            *berth,
            "up",
            "-d",
            "-H",
            f"unix://{sock}",
            "--data-root",
            str(data_root),
            "--exec-root",
            str(exec_root),
            "--nats-port",
            "0",
        ],
        check=True,
        timeout=120,
        env=env,
        stdout=subprocess.DEVNULL,
    )

    def root() -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int(json.loads((exec_root / "berth.json").read_text())["supervisor_pid"])
        return None

    engine = Engine("berth", sock, root, {"DOCKER_CONFIG": str(base / "cli")})
    try:
        yield engine
    finally:
        remove_all(engine)
        subprocess.run(
            [*berth, "down", "--exec-root", str(exec_root)],
            timeout=90,
            check=False,
            stdout=subprocess.DEVNULL,
        )


def install_docker() -> None:
    if shutil.which("dockerd"):
        return
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "docker.io"],
        check=True,
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
    )


@contextlib.contextmanager
def bench_netns(name: str) -> Iterator[Path]:
    """A network namespace with only its loopback up, removed on exit."""
    subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield Path("/run/netns") / name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def host_firewall() -> set[str]:
    """The host's iptables rules and chains (comments and counters left out)."""
    out = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout
    return {line.split(" [")[0] for line in out.splitlines() if line and not line.startswith("#")}


@contextlib.contextmanager
def dockerd_running(base: Path, netns: Path | None = None) -> Iterator[Engine | None]:
    """A scratch dockerd with its default bridge and iptables, inside a namespace of its own
    (or the one given: NetBed's hosts)."""
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        yield None
        return
    base.mkdir(parents=True, exist_ok=True)
    sock = base / "d.sock"
    with contextlib.ExitStack() as stack:
        if netns is None:
            netns = stack.enter_context(bench_netns(f"berth-bench-{os.getpid()}"))
        log = stack.enter_context(open(base / "dockerd.log", "wb"))
        # nsenter --net only: dockerd keeps the host's mount namespace, so the bench's clean-up
        # sees (and unmounts) whatever it leaves under the scratch roots.
        proc = subprocess.Popen(
            [
                "nsenter", f"--net={netns}", dockerd,
                "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
                "-H", f"unix://{sock}", "--pidfile", str(base / "d.pid"),
                "--storage-driver=overlay2",
            ],
            stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        engine = Engine("dockerd", sock, lambda: proc.pid, {"DOCKER_CONFIG": str(base / "cli")})
        pids: list[int] = []
        try:
            deadline = time.monotonic() + 60
            while engine.docker("version", check=False).returncode != 0:
                if time.monotonic() > deadline or proc.poll() is not None:
                    print("dockerd did not start; see", base / "dockerd.log", file=sys.stderr)
                    yield None
                    return
                time.sleep(0.3)
            pids = tree(proc.pid)  # dockerd and the containerd it spawned
            yield engine
        finally:
            if proc.poll() is None:
                remove_all(engine)
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for pid in pids:  # containerd normally exits with dockerd; make sure
                if str(base) in cmdline(pid) or "containerd" in cmdline(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


def time_run(engine: Engine, run_args: tuple[str, ...], env: dict[str, str] | None = None) -> float:
    """Wall time of one `docker run --rm ... echo hello`."""
    start = time.perf_counter()
    out = engine.docker("run", "--rm", *run_args, "echo", "hello", env=env)
    elapsed = time.perf_counter() - start
    if out.stdout.strip() != "hello":
        raise RuntimeError(f"{engine.name}: unexpected output {out.stdout!r}")
    return elapsed


def remove_all(engine: Engine) -> None:
    ids = engine.docker("ps", "-aq", check=False, timeout=60).stdout.split()
    if ids:
        engine.docker("rm", "-f", *ids, check=False, timeout=300)


def cleanup_mounts(base: Path) -> None:
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f]
    for p in reversed(points):
        p = p.replace("\\040", " ")
        if p.startswith(str(base) + "/"):
            subprocess.run(["umount", "-l", p], check=False, stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def engines_with_busybox(prefix: str, with_dockerd: bool = True) -> Iterator[tuple[Path, list[Engine]]]:
    """A scratch berth and (when installed and wanted) a scratch dockerd under a new temp dir,
    each with busybox:latest imported from busybox_rootfs_tar; everything goes afterwards."""
    from berth_testsupport.images import busybox_rootfs_tar

    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    tar = base / "busybox.tar"
    tar.write_bytes(busybox_rootfs_tar())
    try:
        with berth_running(base / "b") as berth, contextlib.ExitStack() as stack:
            dockerd = stack.enter_context(dockerd_running(base / "d")) if with_dockerd else None
            engines = [e for e in (berth, dockerd) if e is not None]
            for e in engines:
                e.docker("import", str(tar), "busybox:latest")
            yield base, engines
    finally:
        cleanup_mounts(base)
        shutil.rmtree(base, ignore_errors=True)


def until(pred: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> None:
    """Poll until pred() holds; RuntimeError naming `what` after the timeout."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(poll)


def print_medians(title: str, names: list[str], times: dict[str, dict[str, list[float]]], note: str) -> None:
    """A markdown table: one row per measure, each engine's median (and runs), and berth's
    ratio to dockerd when both ran."""
    print(f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {note}\n")
    both = sorted(names) == ["berth", "dockerd"]
    header = f"| {title} | " + " | ".join(names) + (" | berth / dockerd |" if both else " |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for what, by_engine in times.items():
        cells = [f"{statistics.median(v):.2f} ({', '.join(f'{x:.2f}' for x in v)})" for v in (by_engine[n] for n in names)]
        if both:
            cells.append(f"{statistics.median(by_engine['berth']) / statistics.median(by_engine['dockerd']):.2f}×")
        print(f"| {what} | " + " | ".join(cells) + " |")


@contextlib.contextmanager
def single_node_swarms(engines: list[Engine]) -> Iterator[None]:
    """`docker swarm init` on each engine (loopback address); left (--force) afterwards."""
    for e in engines:
        e.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    try:
        yield
    finally:
        for e in engines:
            e.docker("swarm", "leave", "--force", check=False)


def alternating(engines: list[Engine], reps: int) -> Iterator[tuple[int, Engine]]:
    """(round, engine), the engines' order reversed every other round."""
    for rep in range(reps):
        for e in engines if rep % 2 == 0 else list(reversed(engines)):
            yield rep, e


def swarm_bench_args(description: str) -> argparse.Namespace:
    """The swarm benches' flags: rounds, replicas, and whether dockerd runs beside berth."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--replicas", type=int, default=30)
    ap.add_argument("--no-dockerd", action="store_true")
    return ap.parse_args()
