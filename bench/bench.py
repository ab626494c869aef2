"""Measure berth against dockerd with the real docker CLI, and print a markdown table.

    .venv/bin/python bench/bench.py [--runs 20] [--reps 3] [--containers 50] [--ps-containers 100]
                                    [--no-dockerd] [--install-docker] [--no-trace | --trace-only]
                                    [--trace-runs 10] [--out FILE]

Starts berth (`berth up -d`) on scratch roots under /tmp, and dockerd too when it is installed
(`--install-docker` runs `apt-get install -y docker.io` if it is not), makes the same busybox image in
both (`docker import` of `berth_lifecycle.testimages.busybox_rootfs_tar()`), then measures, alternating
between the engines within the run (every container with `--network none` on both sides):

1. `docker run --rm busybox echo hello` wall time;
2. 50 `docker run -d busybox sleep 600`, 10 at a time: total time; then one `docker rm -f` of all 50;
3. `GET /containers/json?all=1` with 100 containers: latency (one client) and requests/s (10 clients);
4. host memory per idle container: MemAvailable before and after the 50 sleeping containers of 2;
5. memory of the idle engine: total PSS of its process tree (berth: supervisor, nats-server, services,
   zygote; dockerd: dockerd + the containerd it spawned), with no container;
6. image pull from a local registry: bench/pull_bench.py (run separately).

Then (unless `--no-trace`) a second berth with OTLP export to a collector inside this script, and
`docker run --rm` a few times with the CLI's own OTLP export, to print where the time of one run goes.

Everything it starts (berth, dockerd and its containerd, containers, mounts) is stopped and removed
at the end, also on errors. Not a test: it prints numbers, it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from berth_lifecycle.testimages import busybox_rootfs_tar

RUN = ("--network", "none", "busybox")


# --------------------------------------------------------------------------------------------- engines


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


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = defaultdict(list)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids[ppid].append(int(d))
    return kids


def tree(pid: int) -> list[int]:
    kids, out, todo = children_map(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def pss(pid: int, field: str = "Pss:") -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(pid: int) -> int:
    return sum(pss(p, "Rss:") for p in tree(pid))


def tree_exclusive(pid: int) -> int:
    """Bytes of the resident pages that no process outside this tree maps: what stopping the
    engine would free, whatever else runs on the host. PSS instead charges the tree a share of
    pages other processes map too (libpython, a colleague's dockerd binary), so it moves with
    the neighbours. Counts each page once: its mappings within the tree (/proc/PID/pagemap)
    against its mappings in total (/proc/kpagecount). Needs root."""
    page = os.sysconf("SC_PAGE_SIZE")
    inside: dict[int, int] = {}
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/maps") as maps, open(f"/proc/{p}/pagemap", "rb") as pagemap:
                for line in maps:
                    start, end = (int(x, 16) for x in line.split()[0].split("-"))
                    if line.rstrip().endswith("[vsyscall]"):
                        continue
                    pagemap.seek(start // page * 8)
                    data = pagemap.read((end - start) // page * 8)
                    for (entry,) in struct.iter_unpack("<Q", data):
                        if entry >> 63:  # present in RAM; bits 0-54 are the frame number
                            pfn = entry & ((1 << 55) - 1)
                            inside[pfn] = inside.get(pfn, 0) + 1
        except OSError:
            continue
    exclusive = 0
    with open("/proc/kpagecount", "rb") as counts:
        for pfn, n in inside.items():
            counts.seek(pfn * 8)
            (total,) = struct.unpack("<Q", counts.read(8))
            if total <= n:
                exclusive += 1
    return exclusive * page


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def label(pid: int) -> str:
    """A berth service forked by the forkserver by its title, `python -m MODULE` as MODULE,
    other programs by their base name."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
    except OSError:
        comm = ""
    if comm.startswith("berth-"):
        return comm
    argv = cmdline(pid).split()
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1]
    return os.path.basename(argv[0]) if argv else str(pid)


def tree_pss(pid: int) -> tuple[int, list[tuple[str, int]]]:
    parts = [(label(p), pss(p)) for p in tree(pid)]
    return sum(v for _, v in parts), parts


@contextlib.contextmanager
def berth_running(base: Path, extra_env: dict[str, str] | None = None) -> Iterator[Engine]:
    exec_root, data_root = base / "run", base / "data"
    sock = exec_root / "docker.sock"
    berth = [sys.executable, "-m", "berth_cli"]
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
def dockerd_running(base: Path) -> Iterator[Engine | None]:
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        yield None
        return
    base.mkdir(parents=True, exist_ok=True)
    sock = base / "d.sock"
    log = open(base / "dockerd.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            dockerd,
            "--data-root",
            str(base / "data"),
            "--exec-root",
            str(base / "exec"),
            "-H",
            f"unix://{sock}",
            "--pidfile",
            str(base / "d.pid"),
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
            "--storage-driver=overlay2",
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
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
        log.close()


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


# ------------------------------------------------------------------------------------------- measures


def time_run(engine: Engine, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    out = engine.docker("run", "--rm", *RUN, "echo", "hello", env=env)
    elapsed = time.perf_counter() - start
    if out.stdout.strip() != "hello":
        raise RuntimeError(f"{engine.name}: unexpected output {out.stdout!r}")
    return elapsed


def run_detached(engine: Engine, count: int, parallel: int) -> tuple[float, list[str]]:
    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        outs = list(
            pool.map(lambda _: engine.docker("run", "-d", *RUN, "sleep", "600"), range(count))
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


# ---------------------------------------------------------------------------------------------- trace


class Collector:
    """A minimal OTLP/HTTP (protobuf) trace receiver on 127.0.0.1."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        self.spans: list[dict[str, object]] = []
        lock = threading.Lock()
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                req = trace_service_pb2.ExportTraceServiceRequest()
                req.ParseFromString(body)
                with lock:
                    for rs in req.resource_spans:
                        svc = next(
                            (
                                a.value.string_value
                                for a in rs.resource.attributes
                                if a.key == "service.name"
                            ),
                            "?",
                        )
                        for ss in rs.scope_spans:
                            for s in ss.spans:
                                spans.append(
                                    {
                                        "service": svc,
                                        "name": s.name,
                                        "trace": s.trace_id.hex(),
                                        "id": s.span_id.hex(),
                                        "parent": s.parent_span_id.hex(),
                                        "start": s.start_time_unix_nano / 1e9,
                                        "end": s.end_time_unix_nano / 1e9,
                                    }
                                )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def trace_breakdown(base: Path, tar: Path, runs: int) -> str:
    collector = Collector()
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    try:
        with berth_running(base, otel) as berth:
            berth.docker("import", str(tar), "busybox:latest")
            time_run(berth)
            time.sleep(1.5)
            collector.spans.clear()
            walls = []
            for _ in range(runs):
                walls.append(time_run(berth))
                time.sleep(0.3)
            time.sleep(2.0)
            spans = list(collector.spans)
    finally:
        collector.close()
    return render_breakdown(spans, walls)


def render_breakdown(spans: list[dict[str, object]], walls: list[float]) -> str:
    """Per-span medians over the runs, and one run as a tree.

    The docker CLI sends no trace context, so each of its requests starts a trace of its own; the
    spans of one `docker run` are those from one `HEAD /_ping` (the CLI's first request) to the next.
    """
    spans = sorted(spans, key=lambda s: float(s["start"]))  # type: ignore[arg-type]
    runs: list[list[dict[str, object]]] = []
    for s in spans:
        if s["name"] == "HEAD /_ping" or not runs:
            runs.append([])
        runs[-1].append(s)
    lines = [
        f"`docker run --rm busybox echo hello` against a berth exporting spans, {len(walls)} runs, "
        f"wall median {statistics.median(walls) * 1000:.0f} ms ({len(spans)} spans).",
        "",
        "| starts at ms (median) | lasts ms (median) | service | span |",
        "|---:|---:|---|---|",
    ]
    stats: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for run in runs:
        t0 = float(run[0]["start"])  # type: ignore[arg-type]
        seen: set[tuple[str, str]] = set()
        for s in run:
            key = (str(s["service"]), str(s["name"]))
            if key in seen:  # repeated spans (e.g. ContainerResolve): the first one
                continue
            seen.add(key)
            start, end = float(s["start"]), float(s["end"])  # type: ignore[arg-type]
            stats[key].append((start - t0, end - start))
    for (svc, name), vals in sorted(
        stats.items(), key=lambda kv: statistics.median(o for o, _ in kv[1])
    ):
        lines.append(
            f"| {statistics.median(o for o, _ in vals) * 1000:.1f} | "
            f"{statistics.median(d for _, d in vals) * 1000:.1f} | {svc} | `{name}` |"
        )
    if not runs:
        return "\n".join(lines)
    example = sorted(runs, key=len)[len(runs) // 2]
    t0 = float(example[0]["start"])  # type: ignore[arg-type]
    ids = {s["id"] for s in example}
    kids: dict[str, list[dict[str, object]]] = defaultdict(list)
    for s in example:
        kids[str(s["parent"]) if s["parent"] in ids else ""].append(s)
    lines += ["", "One run as a tree (start ms, +duration ms, service: span):", "", "```"]

    def walk(parent: str, depth: int) -> None:
        for s in kids.get(parent, []):
            start, end = float(s["start"]), float(s["end"])  # type: ignore[arg-type]
            lines.append(
                f"{(start - t0) * 1000:7.1f} +{(end - start) * 1000:6.1f}  "
                f"{'  ' * depth}{s['service']}: {s['name']}"
            )
            walk(str(s["id"]), depth + 1)

    walk("", 0)
    lines.append("```")
    return "\n".join(lines)


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
    parser.add_argument("--no-dockerd", action="store_true")
    parser.add_argument(
        "--install-docker", action="store_true", help="apt-get install docker.io if missing"
    )
    parser.add_argument("--no-trace", action="store_true")
    parser.add_argument("--trace-only", action="store_true", help="only the traced breakdown")
    parser.add_argument("--trace-runs", type=int, default=10)
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args()

    if args.install_docker and not args.no_dockerd:
        install_docker()
    base = Path(tempfile.mkdtemp(prefix="bb-", dir="/tmp"))
    tar = base / "busybox.tar"
    tar.write_bytes(busybox_rootfs_tar())
    report: list[str] = []
    try:
        if not args.trace_only:
            report = measure(args, base, tar)
        if not args.no_trace:
            report += [
                "",
                "### Where one `docker run` goes (berth, traced)",
                "",
                trace_breakdown(base / "t", tar, args.trace_runs),
            ]
    finally:
        cleanup_mounts(base)
        shutil.rmtree(base, ignore_errors=True)
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
            time_run(e)  # warm-up
        time.sleep(2)

        def order(i: int) -> list[Engine]:
            return engines if i % 2 == 0 else engines[::-1]

        # 5. idle engine PSS, before anything ran in bulk
        idle: dict[str, list[float]] = {n: [] for n in names}
        idle_rss: dict[str, list[float]] = {n: [] for n in names}
        idle_own: dict[str, list[float]] = {n: [] for n in names}
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
        log(f"idle PSS: { {n: statistics.median(v) / 2**20 for n, v in idle.items()} }")

        # 1. run --rm latency
        runs: dict[str, list[float]] = {n: [] for n in names}
        for i in range(args.runs):
            for e in order(i):
                runs[e.name].append(time_run(e))
        log(f"run --rm: { {n: statistics.median(v) for n, v in runs.items()} }")

        # 2 + 4. N run -d, P at a time; memory per container; rm -f of all
        par: dict[str, list[float]] = {n: [] for n in names}
        rm: dict[str, list[float]] = {n: [] for n in names}
        mem: dict[str, list[float]] = {n: [] for n in names}
        shim: dict[str, list[float]] = {n: [] for n in names}
        shim: dict[str, list[float]] = {n: [] for n in names}
        for i in range(args.reps):
            for e in order(i):
                time.sleep(2)
                before = mem_available()
                t, ids = run_detached(e, args.containers, args.parallel)
                par[e.name].append(t)
                time.sleep(3)  # let lazy allocations settle
                mem[e.name].append((before - mem_available()) / args.containers)
                shim[e.name].append(per_container_pss(e, ids))
                rm[e.name].append(time_rm(e, ids))
        log(f"run -d: { {n: statistics.median(v) for n, v in par.items()} }")

        # 3. ps with 100 containers
        ps_ids: dict[str, list[str]] = {}
        for e in engines:
            ps_ids[e.name] = run_detached(e, args.ps_containers, args.parallel)[1]
        for e in engines:
            ps_latency(e, 10)  # warm-up
        lat: dict[str, list[float]] = {n: [] for n in names}
        rps: dict[str, list[float]] = {n: [] for n in names}
        for i in range(10):
            for e in order(i):
                lat[e.name] += ps_latency(e, 20)
        for i in range(4):
            for e in order(i):
                rps[e.name].append(ps_throughput(e, 10, 2.0))
        for e in engines:
            time_rm(e, ps_ids[e.name])
        log(f"ps: { {n: statistics.median(v) for n, v in lat.items()} }")

    rows: list[tuple[str, dict[str, str], dict[str, float], bool]] = [
        (
            "1. `docker run --rm busybox echo hello`, s",
            {n: fmt(v, 1.0, "s") for n, v in runs.items()},
            med(runs),
            True,
        ),
        (
            f"2. {args.containers}× `docker run -d busybox sleep 600`, {args.parallel} at a time, total s",
            {n: fmt(v, 1.0, "s", 2) for n, v in par.items()},
            med(par),
            True,
        ),
        (
            f"2b. `docker rm -f` of those {args.containers}, s",
            {n: fmt(v, 1.0, "s", 2) for n, v in rm.items()},
            med(rm),
            True,
        ),
        (
            f"3. `GET /containers/json?all=1`, {args.ps_containers} containers, latency ms",
            {n: fmt(v, 1000.0, "ms", 1) for n, v in lat.items()},
            med(lat),
            True,
        ),
        (
            "3b. same, 10 concurrent clients, requests/s (higher is better)",
            {n: fmt(v, 1.0, "", 0) for n, v in rps.items()},
            med(rps),
            False,
        ),
        (
            f"4. host memory per idle container (MemAvailable, {args.containers} `sleep`), MiB",
            {n: fmt(v, 2**-20, "MiB", 2) for n, v in mem.items()},
            med(mem),
            True,
        ),
        (
            "4b. PSS of each container's shim + init process, MiB",
            {n: fmt(v, 2**-20, "MiB", 2) for n, v in shim.items()},
            med(shim),
            True,
        ),
        (
            "5. idle engine, total PSS of its processes, MiB",
            {n: fmt(v, 2**-20, "MiB", 1) for n, v in idle.items()},
            med(idle),
            True,
        ),
        (
            "5b. same, total RSS (pages shared between its processes counted in each), MiB",
            {n: fmt(v, 2**-20, "MiB", 1) for n, v in idle_rss.items()},
            med(idle_rss),
            True,
        ),
        (
            "5c. same, pages no other process maps (what stopping it frees), MiB",
            {n: fmt(v, 2**-20, "MiB", 1) for n, v in idle_own.items()},
            med(idle_own),
            True,
        ),
    ]
    header = (
        "| measure, median (min–max) | "
        + " | ".join(names)
        + (" | berth / dockerd |" if len(names) == 2 else " |")
    )
    out = [
        f"machine: {os.uname().nodename}, {os.cpu_count()} cores, "
        f"{mem_available() / 2**30:.1f} GiB available, kernel {os.uname().release}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; runs={args.runs}, reps={args.reps}",
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
    ]
    for label, shown, raw, _lower in rows:
        cells = [shown[n] for n in names]
        if len(names) == 2:
            cells.append(f"{raw['berth'] / raw['dockerd']:.2f}×" if raw["dockerd"] else "–")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append(
        "| 6. pull of a ~200 MB three-layer image, cold / warm | see `bench/pull_bench.py` | | |"
        if len(names) == 2
        else "| 6. pull | see `bench/pull_bench.py` |"
    )
    out += ["", "Idle engine PSS by process (last sample):", ""]
    for n, ps in parts.items():
        out.append(f"- {n}: " + ", ".join(f"{c} {v / 2**20:.1f}" for c, v in ps))
    return out


def med(d: dict[str, list[float]]) -> dict[str, float]:
    return {n: statistics.median(v) for n, v in d.items()}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
