"""Measure berth against dockerd with the real docker CLI, and print a markdown table.

    .venv/bin/python bench/bench.py [--runs 20] [--containers 50] [--no-dockerd]

Starts berth (`berth up -d`) on scratch roots under /tmp, and dockerd too when it is installed
(`apt-get install docker.io`), makes the same busybox image in both (`docker import` of a rootfs
built from Debian's busybox-static), then measures, alternating between the engines:

1. `docker run --rm --network none busybox echo hello` wall time;
2. host memory per idle container: MemAvailable before and after N `docker run -d ... sleep 600`.

Not a test: it prints numbers, it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from berth_lifecycle.testimages import busybox_rootfs_tar


@dataclass
class Engine:
    name: str
    host: str  # DOCKER_HOST value

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, DOCKER_HOST=self.host)
        return subprocess.run(
            ["docker", *args], env=env, capture_output=True, text=True, timeout=timeout, check=check
        )


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


@contextlib.contextmanager
def berth_running(base: Path) -> Iterator[Engine]:
    exec_root, data_root = base / "run", base / "data"
    sock = exec_root / "docker.sock"
    berth = [sys.executable, "-m", "berth_cli"]
    subprocess.run(
        [*berth, "up", "-d", "-H", f"unix://{sock}", "--data-root", str(data_root),
         "--exec-root", str(exec_root), "--nats-port", "0"],
        check=True, timeout=120,
    )
    try:
        yield Engine("berth", f"unix://{sock}")
    finally:
        subprocess.run([*berth, "down", "--exec-root", str(exec_root)], timeout=60, check=False)


@contextlib.contextmanager
def dockerd_running(base: Path) -> Iterator[Engine | None]:
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        yield None
        return
    sock = base / "d.sock"
    log = open(base / "dockerd.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [dockerd, "--data-root", str(base / "d-data"), "--exec-root", str(base / "d-exec"),
         "-H", f"unix://{sock}", "--pidfile", str(base / "d.pid"), "--iptables=false",
         "--bridge=none", "--storage-driver=overlay2"],
        stdout=log, stderr=log,
    )
    engine = Engine("dockerd", f"unix://{sock}")
    try:
        deadline = time.monotonic() + 60
        while engine.docker("version", check=False).returncode != 0:
            if time.monotonic() > deadline or proc.poll() is not None:
                print("dockerd did not start; see", base / "dockerd.log", file=sys.stderr)
                yield None
                return
            time.sleep(0.5)
        yield engine
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        log.close()


def import_busybox(engine: Engine, tar: Path) -> None:
    engine.docker("import", str(tar), "busybox:latest")


def time_run(engine: Engine) -> float:
    start = time.perf_counter()
    out = engine.docker("run", "--rm", "--network", "none", "busybox", "echo", "hello")
    elapsed = time.perf_counter() - start
    if out.stdout.strip() != "hello":
        raise RuntimeError(f"{engine.name}: unexpected output {out.stdout!r}")
    return elapsed


def memory_per_container(engine: Engine, count: int) -> float:
    before = mem_available()
    ids = [
        engine.docker("run", "-d", "--network", "none", "busybox", "sleep", "600").stdout.strip()
        for _ in range(count)
    ]
    time.sleep(3)  # let page cache and lazy allocations settle
    after = mem_available()
    engine.docker("rm", "-f", *ids, timeout=300)
    return (before - after) / count


def fmt(values: list[float], scale: float, unit: str) -> str:
    med = statistics.median(values) * scale
    return f"{med:.3f} {unit} ({min(values) * scale:.3f}–{max(values) * scale:.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--no-dockerd", action="store_true")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="bb-", dir="/tmp"))
    tar = base / "busybox.tar"
    tar.write_bytes(busybox_rootfs_tar())
    with berth_running(base / "b") as berth, contextlib.ExitStack() as stack:
        dockerd = None if args.no_dockerd else stack.enter_context(dockerd_running(base / "d"))
        engines = [e for e in (berth, dockerd) if e is not None]
        for e in engines:
            import_busybox(e, tar)
            time_run(e)  # warm-up
        runs: dict[str, list[float]] = {e.name: [] for e in engines}
        for _ in range(args.runs):
            for e in engines:
                runs[e.name].append(time_run(e))
        mem: dict[str, float] = {}
        for e in engines:
            mem[e.name] = memory_per_container(e, args.containers)

    rows = [
        ("`docker run --rm busybox echo hello`, median (min–max)",
         {n: fmt(v, 1.0, "s") for n, v in runs.items()},
         {n: statistics.median(v) for n, v in runs.items()}),
        (f"host memory per idle container ({args.containers} `sleep`)",
         {n: f"{m / 2**20:.2f} MiB" for n, m in mem.items()},
         dict(mem)),
    ]
    names = [e.name for e in engines]
    header = "| measure | " + " | ".join(names) + (" | berth / dockerd |" if len(names) == 2 else " |")
    print(f"\nmachine: {os.cpu_count()} cores, {mem_available() / 2**30:.1f} GiB available; "
          f"runs={args.runs}, containers={args.containers}\n")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for label, shown, raw in rows:
        cells = [shown[n] for n in names]
        if len(names) == 2 and raw["dockerd"]:
            cells.append(f"{raw['berth'] / raw['dockerd']:.2f}×")
        print(f"| {label} | " + " | ".join(cells) + " |")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
