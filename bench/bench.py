"""Measure berth against dockerd with the real docker CLI, and print a markdown table.

    .venv/bin/python bench/bench.py [--runs 20] [--reps 3] [--containers 50] [--ps-containers 100]
                                    [--networks default,none] [--no-dockerd] [--install-docker]
                                    [--no-trace | --trace-only] [--trace-runs 10] [--out FILE]

Starts berth (`berth up -d`) on scratch roots under /tmp, and dockerd too when it is installed
(`--install-docker` runs `apt-get install -y docker.io` if it is not) with its default bridge and
iptables inside a network namespace of its own (engines.py), makes the same busybox image in both
(`docker import` of `berth_testsupport.images.busybox_rootfs_tar()`), then measures, alternating
between the engines within the run, once per network (`default`: each engine's default bridge;
`none`: `--network none` on both):

1. `docker run --rm busybox echo hello` wall time;
2. 50 `docker run -d busybox sleep 600`, 10 at a time: total time; then one `docker rm -f` of all 50;
3. `GET /containers/json?all=1` with 100 containers: latency (one client) and requests/s (10 clients);
4. host memory per idle container: MemAvailable before and after the 50 sleeping containers of 2;
5. memory of the idle engine: total PSS of its process tree (berth: supervisor, nats-server, services,
   zygote; dockerd: dockerd + the containerd it spawned), with no container (once, not per network);
6. image pull from a local registry: bench/pull_bench.py (run separately).

Then (unless `--no-trace`) a second berth with OTLP export to a collector (tracing.py), and
`docker run --rm` on its default network a few times, to print where the time of one run goes.

Everything it starts (berth, dockerd and its containerd, containers, mounts, the namespace) is
stopped and removed at the end, also on errors; the host's iptables rules are compared before and
after. Not a test: it prints numbers, it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from berth_testsupport.images import busybox_rootfs_tar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engines import (  # noqa: E402
    Engine,
    UnixHTTPConnection,
    api_get,
    berth_running,
    cleanup_mounts,
    dockerd_running,
    host_firewall,
    install_docker,
    time_run,
)
from procmem import mem_available, pss, tree_exclusive, tree_pss, tree_rss  # noqa: E402
from tracing import trace_breakdown  # noqa: E402

# What follows `docker run [--rm|-d]` on each network.
NETWORKS: dict[str, tuple[str, ...]] = {
    "default": ("busybox",),
    "none": ("--network", "none", "busybox"),
}


# ------------------------------------------------------------------------------------------- measures


def run_detached(
    engine: Engine, run_args: tuple[str, ...], count: int, parallel: int
) -> tuple[float, list[str]]:
    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        outs = list(
            pool.map(lambda _: engine.docker("run", "-d", *run_args, "sleep", "600"), range(count))
        )
    elapsed = time.perf_counter() - start
    return elapsed, [o.stdout.strip() for o in outs]


def per_container_pss(engine: Engine, ids: list[str]) -> float:
    """Mean PSS of each container's processes: its init and the shim that is its parent."""
    out = engine.docker("inspect", "-f", "{{.State.Pid}}", *ids).stdout.split()
    total = 0
    for pid in (int(p) for p in out if p.isdigit() and p != "0"):
        total += pss(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                total += pss(int(f.read().rsplit(")", 1)[1].split()[1]))
        except (OSError, ValueError, IndexError):
            pass
    return total / max(len(ids), 1)


def time_rm(engine: Engine, ids: list[str]) -> float:
    start = time.perf_counter()
    engine.docker("rm", "-f", *ids)
    return time.perf_counter() - start


def ps_latency(engine: Engine, n: int) -> list[float]:
    conn = UnixHTTPConnection(engine.sock)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        api_get(conn, "/v1.41/containers/json?all=1")
        out.append(time.perf_counter() - t)
    conn.close()
    return out


def ps_throughput(engine: Engine, clients: int, seconds: float) -> float:
    stop = time.perf_counter() + seconds
    counts = [0] * clients

    def client(i: int) -> None:
        conn = UnixHTTPConnection(engine.sock)
        while time.perf_counter() < stop:
            api_get(conn, "/v1.41/containers/json?all=1")
            counts[i] += 1
        conn.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return sum(counts) / (time.perf_counter() - start)


# ------------------------------------------------------------------------------------------------ main


def fmt(values: list[float], scale: float, unit: str, digits: int = 3) -> str:
    med = statistics.median(values) * scale
    return f"{med:.{digits}f} {unit} ({min(values) * scale:.{digits}f}–{max(values) * scale:.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="`run --rm` runs per engine")
    parser.add_argument(
        "--reps", type=int, default=3, help="repetitions of the 50-container rounds"
    )
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=10)
    parser.add_argument("--ps-containers", type=int, default=100)
    parser.add_argument("--networks", default="default,none", help="comma-separated: default, none")
    parser.add_argument("--no-dockerd", action="store_true")
    parser.add_argument(
        "--install-docker", action="store_true", help="apt-get install docker.io if missing"
    )
    parser.add_argument("--no-trace", action="store_true")
    parser.add_argument("--trace-only", action="store_true", help="only the traced breakdown")
    parser.add_argument("--trace-runs", type=int, default=10)
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    args.networks = [n for n in args.networks.split(",") if n]
    if unknown := set(args.networks) - set(NETWORKS):
        parser.error(f"unknown network(s): {', '.join(sorted(unknown))}")

    if args.install_docker and not args.no_dockerd:
        install_docker()
    base = Path(tempfile.mkdtemp(prefix="bb-", dir="/tmp"))
    tar = base / "busybox.tar"
    tar.write_bytes(busybox_rootfs_tar())
    report: list[str] = []
    firewall_before = host_firewall()
    try:
        if not args.trace_only:
            report = measure(args, base, tar)
        if not args.no_trace:
            report += [
                "",
                "### Where one `docker run` goes (berth, default network, traced)",
                "",
                trace_breakdown(base / "t", tar, args.trace_runs, NETWORKS["default"]),
            ]
    finally:
        cleanup_mounts(base)
        shutil.rmtree(base, ignore_errors=True)
    added = host_firewall() - firewall_before
    docker_rules = sorted(r for r in added if "DOCKER" in r or "docker0" in r)
    report += [
        "",
        f"Host iptables after the run: {len(added)} rule(s) not there before "
        f"({len(docker_rules)} of dockerd's: {docker_rules or 'none'}; any other is another "
        "engine's on this shared host).",
    ]
    text = "\n".join(report)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


def measure(args: argparse.Namespace, base: Path, tar: Path) -> list[str]:
    with berth_running(base / "b") as berth, contextlib.ExitStack() as stack:
        dockerd = None if args.no_dockerd else stack.enter_context(dockerd_running(base / "d"))
        engines = [e for e in (berth, dockerd) if e is not None]
        names = [e.name for e in engines]
        for e in engines:
            e.docker("import", str(tar), "busybox:latest")
            for net in args.networks:
                time_run(e, NETWORKS[net])  # warm-up (berth's default bridge is made here)
        time.sleep(2)
        load = [os.getloadavg()[0]]

        # 5. idle engine PSS, before anything ran in bulk
        idle, idle_rss, idle_own, parts = idle_memory(engines)
        log(f"idle PSS: { {n: statistics.median(v) / 2**20 for n, v in idle.items()} }")
        rows: list[tuple[str, dict[str, str], dict[str, float]]] = []
        for net in args.networks:
            rows += measure_network(args, engines, net)
            load.append(os.getloadavg()[0])

    for label, data, scale, unit, digits in (
        ("5. idle engine, total PSS of its processes, MiB", idle, 2**-20, "MiB", 1),
        (
            "5b. same, total RSS (pages shared between its processes counted in each), MiB",
            idle_rss, 2**-20, "MiB", 1,
        ),
        ("5c. same, pages no other process maps (what stopping it frees), MiB", idle_own, 2**-20, "MiB", 1),
    ):  # fmt: skip
        rows.append((label, {n: fmt(v, scale, unit, digits) for n, v in data.items()}, med(data)))
    two = len(names) == 2
    header = (
        "| measure, median (min–max) | "
        + " | ".join(names)
        + (" | berth / dockerd |" if two else " |")
    )
    out = [
        f"machine: {os.uname().nodename}, {os.cpu_count()} cores, "
        f"{mem_available() / 2**30:.1f} GiB available, kernel {os.uname().release}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; runs={args.runs}, reps={args.reps}; "
        f"load average (1 min) at the start and after each network: "
        + ", ".join(f"{x:.2f}" for x in load),
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
    ]
    for label, shown, raw in rows:
        cells = [shown[n] for n in names]
        if two:
            cells.append(f"{raw['berth'] / raw['dockerd']:.2f}×" if raw["dockerd"] else "–")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append(
        "| 6. pull of a ~200 MB three-layer image, cold / warm | see `bench/pull_bench.py` | | |"
        if two
        else "| 6. pull | see `bench/pull_bench.py` |"
    )
    out += ["", "Idle engine PSS by process (last sample):", ""]
    for n, ps in parts.items():
        out.append(f"- {n}: " + ", ".join(f"{c} {v / 2**20:.1f}" for c, v in ps))
    return out


Samples = dict[str, list[float]]


def idle_memory(
    engines: list[Engine],
) -> tuple[Samples, Samples, Samples, dict[str, list[tuple[str, int]]]]:
    idle: Samples = {e.name: [] for e in engines}
    idle_rss: Samples = {e.name: [] for e in engines}
    idle_own: Samples = {e.name: [] for e in engines}
    parts: dict[str, list[tuple[str, int]]] = {}
    for _ in range(5):
        for e in engines:
            pid = e.root_pid()
            if pid:
                total, parts[e.name] = tree_pss(pid)
                idle[e.name].append(total)
                idle_rss[e.name].append(tree_rss(pid))
                idle_own[e.name].append(tree_exclusive(pid))
        time.sleep(0.5)
    return idle, idle_rss, idle_own, parts


def measure_network(
    args: argparse.Namespace, engines: list[Engine], net: str
) -> list[tuple[str, dict[str, str], dict[str, float]]]:
    """Items 1 to 4b with every container on `net`, the engines alternating."""
    run_args = NETWORKS[net]
    names = [e.name for e in engines]

    def order(i: int) -> list[Engine]:
        return engines if i % 2 == 0 else engines[::-1]

    # 1. run --rm latency
    runs: Samples = {n: [] for n in names}
    for i in range(args.runs):
        for e in order(i):
            runs[e.name].append(time_run(e, run_args))
    log(f"[{net}] run --rm: { {n: statistics.median(v) for n, v in runs.items()} }")

    # 2 + 4. N run -d, P at a time; memory per container; rm -f of all
    par: Samples = {n: [] for n in names}
    rm: Samples = {n: [] for n in names}
    mem: Samples = {n: [] for n in names}
    shim: Samples = {n: [] for n in names}
    for i in range(args.reps):
        for e in order(i):
            time.sleep(2)
            before = mem_available()
            t, ids = run_detached(e, run_args, args.containers, args.parallel)
            par[e.name].append(t)
            time.sleep(3)  # let lazy allocations settle
            mem[e.name].append((before - mem_available()) / args.containers)
            shim[e.name].append(per_container_pss(e, ids))
            rm[e.name].append(time_rm(e, ids))
    log(f"[{net}] run -d: { {n: statistics.median(v) for n, v in par.items()} }")

    # 3. ps with 100 containers
    ps_ids = {
        e.name: run_detached(e, run_args, args.ps_containers, args.parallel)[1] for e in engines
    }
    for e in engines:
        ps_latency(e, 10)  # warm-up
    lat: Samples = {n: [] for n in names}
    rps: Samples = {n: [] for n in names}
    for i in range(10):
        for e in order(i):
            lat[e.name] += ps_latency(e, 20)
    for i in range(4):
        for e in order(i):
            rps[e.name].append(ps_throughput(e, 10, 2.0))
    for e in engines:
        time_rm(e, ps_ids[e.name])
    log(f"[{net}] ps: { {n: statistics.median(v) for n, v in lat.items()} }")

    c, p = args.containers, args.parallel
    items: list[tuple[str, Samples, float, str, int]] = [
        ("1. `docker run --rm busybox echo hello`, s", runs, 1.0, "s", 3),
        (f"2. {c}× `docker run -d busybox sleep 600`, {p} at a time, total s", par, 1.0, "s", 2),
        (f"2b. `docker rm -f` of those {c}, s", rm, 1.0, "s", 2),
        (f"3. `GET /containers/json?all=1`, {args.ps_containers} containers, latency ms", lat, 1000.0, "ms", 1),
        ("3b. same, 10 concurrent clients, requests/s (higher is better)", rps, 1.0, "", 0),
        (f"4. host memory per idle container (MemAvailable, {c} `sleep`), MiB", mem, 2**-20, "MiB", 2),
        ("4b. PSS of each container's shim + init process, MiB", shim, 2**-20, "MiB", 2),
    ]  # fmt: skip
    return [
        (f"{label} [{net}]", {n: fmt(v, scale, unit, digits) for n, v in data.items()}, med(data))
        for label, data, scale, unit, digits in items
    ]


def med(d: dict[str, list[float]]) -> dict[str, float]:
    return {n: statistics.median(v) for n, v in d.items()}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
