"""Where the CPU of `bench.py`'s item 2 goes: 50 × `docker run -d busybox sleep 600`, 10 at a
time, against berth and (when installed) dockerd, with the CPU time split between the engine's
own processes, the runc processes they run, the docker CLI processes, and the rest of the host.

    .venv/bin/python bench/cpu_split.py        # as root, ~1 min; not part of `make test`

The engine's processes are those whose command line or environment names the engine's scratch
directory (berth's supervisor, forkserver, services, nats-server, zygote and shims; dockerd,
containerd and containerd-shims); runc's CPU is counted in its parent's reaped-children time, so
"engine + runc" is one column. The CLI processes are this script's children.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engines  # noqa: E402

import bench  # noqa: E402 - the sibling script, for its engine helpers

HZ = os.sysconf("SC_CLK_TCK")


def mentions(pid: int, needle: bytes) -> bool:
    for part in ("cmdline", "environ"):
        try:
            with open(f"/proc/{pid}/{part}", "rb") as f:
                if needle in f.read():
                    return True
        except OSError:
            return False
    return False


def cpu_of(base: Path) -> dict[int, tuple[str, float, float]]:
    """pid → (comm, own CPU s, reaped children's CPU s) of the processes naming base."""
    needle = str(base).encode() + b"/"
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        if not mentions(pid, needle):
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        own = (int(fields[11]) + int(fields[12])) / HZ
        children = (int(fields[13]) + int(fields[14])) / HZ
        out[pid] = (comm, own, children)
    return out


def host_cpu() -> float:
    with open("/proc/stat") as f:
        return sum(int(x) for x in f.readline().split()[1:8]) / HZ


def measure(engine: bench.Engine, base: Path, count: int, parallel: int) -> dict[str, float]:
    before, host0, wall0 = cpu_of(base), host_cpu(), time.monotonic()
    cli0 = resource.getrusage(resource.RUSAGE_CHILDREN)

    def run(_: int) -> None:
        engine.docker("run", "-d", "--network", "none", "busybox", "sleep", "600")

    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(run, range(count)))
    wall, host = time.monotonic() - wall0, host_cpu() - host0
    cli1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = cpu_of(base)
    engine_cpu = 0.0
    for pid, (_comm, own, kids) in after.items():
        own0, kids0 = before.get(pid, ("", 0.0, 0.0))[1:]
        engine_cpu += (own - own0) + (kids - kids0)
    cli = (cli1.ru_utime + cli1.ru_stime) - (cli0.ru_utime + cli0.ru_stime)
    engines.remove_all(engine)
    return {"wall": wall, "engine": engine_cpu, "cli": cli, "host": host}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=10)
    parser.add_argument("--no-dockerd", action="store_true")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="berth-cpu-", dir="/tmp"))
    tar = scratch / "busybox.tar"
    tar.write_bytes(bench.busybox_rootfs_tar())
    rows: dict[str, dict[str, float]] = {}
    try:
        with bench.berth_running(scratch / "berth") as berth:
            berth.docker("import", str(tar), "busybox:latest")
            rows["berth"] = measure(berth, scratch / "berth", args.containers, args.parallel)
        if not args.no_dockerd:
            with bench.dockerd_running(scratch / "dockerd") as dockerd:
                if dockerd is not None:
                    dockerd.docker("import", str(tar), "busybox:latest")
                    rows["dockerd"] = measure(
                        dockerd, scratch / "dockerd", args.containers, args.parallel
                    )
    finally:
        engines.cleanup_mounts(scratch)
        subprocess.run(["rm", "-rf", str(scratch)], check=False)
    print(f"{args.containers} × `docker run -d busybox sleep 600`, {args.parallel} at a time\n")
    print("| engine | wall s | engine processes + their runc, CPU s | docker CLI, CPU s | rest of the host, CPU s |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        rest = r["host"] - r["engine"] - r["cli"]
        print(f"| {name} | {r['wall']:.2f} | {r['engine']:.2f} | {r['cli']:.2f} | {rest:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
