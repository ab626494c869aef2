"""Pull benchmark: berth (lifecycle → registry-proxy → registry) against dockerd pulling straight
from the same local registry, in one run.

    .venv/bin/python bench/pull_bench.py [--mb 200] [--reps 2]

Builds a three-layer image of about --mb MB (incompressible random files, gzip layers), pushes it
to a Debian docker-registry on loopback, then times `docker pull`:
- berth cold: empty registry-proxy cache and empty content store;
- berth warm: `docker rmi` then pull again (registry-proxy cache hit; lifecycle downloads and
  unpacks again, as dockerd does after rmi);
- dockerd: `docker pull 127.0.0.1:<port>/...` (plain HTTP on loopback), rmi, pull again.
Everything it starts is stopped at the end. Prints a markdown table; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from berth_testsupport import images as testimages
from berth_testsupport import registry as tr

BIN = Path(sys.executable).parent


def big_layer(name: str, size: int) -> testimages.Layer:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        chunk = 8 << 20
        for i in range(0, size, chunk):
            data = os.urandom(min(chunk, size - i))
            info = tarfile.TarInfo(f"{name}/part{i // chunk:04d}")
            info.size, info.mtime = len(data), testimages.MTIME
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return testimages.Layer(tar=raw, diff_id=testimages.sha256(raw))


def seed_big_image(registry: str, mb: int) -> str:
    """Three incompressible gzip layers of mb/3 MB each, pushed as bench/big:1; its reference."""
    third = mb * (1 << 20) // 3
    layers = [big_layer("a", third), big_layer("b", third), big_layer("c", third)]
    config = testimages.image_config([x.diff_id for x in layers])
    t0 = time.monotonic()
    tr.push_image(registry, "bench/big", "1", [x.tar for x in layers], config)
    print(f"pushed 3 layers, {mb} MB, in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return f"{registry.removeprefix('http://')}/bench/big:1"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    elapsed = time.monotonic() - start
    if res.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {res.stderr}")
    return elapsed


def wait_healthy(berth: list[str], exec_root: Path, timeout: float = 60.0) -> None:
    """`berth up -d` returns once the API answers; the services behind it may still be starting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = subprocess.run([*berth, "status", "--json", "--exec-root", str(exec_root)],
                             capture_output=True, text=True, timeout=30)  # fmt: skip
        if res.returncode == 0 and json.loads(res.stdout).get("healthy"):
            return
        time.sleep(0.5)


@contextlib.contextmanager
def berth_engine(root: Path) -> Iterator[dict[str, str]]:
    sock = root / "berth.sock"
    berth = [str(BIN / "berth")]
    up = subprocess.run(
        [*berth, "up", "-d", "-H", f"unix://{sock}", "--data-root", str(root / "bd"),
         "--exec-root", str(root / "bx"), "--nats-port", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if up.returncode:
        raise RuntimeError(up.stderr)
    try:
        wait_healthy(berth, root / "bx")
        yield {**os.environ, "DOCKER_HOST": f"unix://{sock}", "DOCKER_CONFIG": str(root / "bc")}
    finally:
        subprocess.run([*berth, "down", "--exec-root", str(root / "bx")], capture_output=True, timeout=120)


@contextlib.contextmanager
def dockerd_engine(root: Path) -> Iterator[dict[str, str]]:
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise RuntimeError("dockerd is not installed")
    dsock = root / "dockerd.sock"
    proc = subprocess.Popen(
        [dockerd, "-H", f"unix://{dsock}", "--data-root", str(root / "dd"), "--exec-root", str(root / "dx"),
         "--pidfile", str(root / "d.pid"), "--iptables=false", "--bridge=none"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    env = {**os.environ, "DOCKER_HOST": f"unix://{dsock}", "DOCKER_CONFIG": str(root / "dc")}
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "version"], env=env, capture_output=True).returncode:
            if time.monotonic() > deadline:
                raise RuntimeError("dockerd did not start")
            time.sleep(0.3)
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        subprocess.run(["umount", "-R", str(root / "dd")], capture_output=True)


def bench_args() -> argparse.Namespace:
    """The image benches' options: the image's size and how many repetitions."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--reps", type=int, default=2)
    return ap.parse_args()


@contextlib.contextmanager
def seeded_image(prefix: str, mb: int) -> Iterator[tuple[Path, str]]:
    """A scratch directory, and a three-layer image of `mb` MB in a local registry (its ref)."""
    with tr.registry() as reg, tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp), seed_big_image(reg, mb)


def print_table(title: str, rows: list[tuple[str, list[float]]]) -> None:
    print(f"\n| {title} | median s | runs |\n|---|---|---|")
    for name, values in rows:
        print(f"| {name} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")


def main() -> None:
    args = bench_args()
    rows: list[tuple[str, list[float]]] = []
    with seeded_image("berth-pullbench-", args.mb) as (root, ref):

        with berth_engine(root / "b") as benv:
            cold = [timed(["docker", "pull", "-q", ref], benv)]
            warm = []
            for _ in range(args.reps):
                subprocess.run(["docker", "rmi", ref], env=benv, capture_output=True, timeout=120)
                warm.append(timed(["docker", "pull", "-q", ref], benv))
            rows += [("berth cold (empty proxy cache)", cold), ("berth warm (proxy cache hit, after rmi)", warm)]
        # dockerd, straight from the registry
        with dockerd_engine(root / "d") as denv:
            times = []
            for _ in range(args.reps + 1):
                times.append(timed(["docker", "pull", "-q", ref], denv))
                subprocess.run(["docker", "rmi", ref], env=denv, capture_output=True, timeout=120)
            rows += [("dockerd (from the registry, first)", times[:1]), ("dockerd (again, after rmi)", times[1:])]
    print_table(f"pull of a {args.mb} MB three-layer image", rows)


if __name__ == "__main__":
    main()
