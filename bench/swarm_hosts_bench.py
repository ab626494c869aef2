"""Swarm mode on three hosts, berth and dockerd 20.10 side by side in one run.

    .venv/bin/python bench/swarm_hosts_bench.py --reps 3 --replicas 30     # as root, minutes

Three hosts are network namespaces joined by a bridge (berth_testsupport.netbed); each runs its
own engine (a berth, or a dockerd with its containerd), busybox imported on each. Host 0 inits
the swarm and hosts 1 and 2 join as workers. Per round and engine:
1. converge: from `docker service create --detach --replicas N` to N tasks running on the three
   hosts (polling `docker service ls` every 50 ms);
2. node loss: host 2's link cut (`ip link set eth0 down` in its namespace) to N running tasks on
   hosts 0 and 1 (each engine's own heartbeat settings: berth calls a node down after 6 s,
   dockerd after its dispatcher's heartbeat period of 5 s times its grace);
then the link comes back, the service is removed and host 2 is Ready again. Then a second swarm
where hosts 1 and 2 join as managers:
3. manager loss: host 0's link cut (the first manager, and the leader) to N running tasks on
   hosts 1 and 2, as host 1 sees them (both engines elect first: swarmkit's raft, berth's
   JetStream). The engines run one after the other (three dockerds and three berths at once would not
fit this machine's two cores), the order alternating per round. Prints a table of medians and
asserts nothing.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from berth_testsupport.images import busybox_rootfs_tar  # noqa: E402
from berth_testsupport.netbed import NetBed  # noqa: E402
from engines import (  # noqa: E402
    Engine,
    berth_running,
    cleanup_mounts,
    dockerd_running,
    print_medians,
    swarm_bench_args,
    until,
)

HOSTS = 3


def _running_by_node(e: Engine, name: str) -> dict[str, int]:
    ids = e.docker("service", "ps", "-q", "--filter", "desired-state=running", name, check=False).stdout.split()
    if not ids:
        return {}
    out = e.docker("inspect", "--format", "{{.NodeID}} {{.Status.State}}", *ids, check=False).stdout
    counts: dict[str, int] = {}
    for line in out.splitlines():
        node, _, state = line.partition(" ")
        if state == "running":
            counts[node] = counts.get(node, 0) + 1
    return counts


def _node_ready(e: Engine, node_id: str) -> bool:
    out = e.docker("node", "inspect", node_id, "--format", "{{.Status.State}}", check=False).stdout
    return out.strip() == "ready"


@contextlib.contextmanager
def swarm(kind: str, bed: NetBed, base: Path, tar: Path, role: str = "worker") -> Iterator[tuple[list[Engine], list[str]]]:
    """Three hosts of one kind in a swarm (hosts 1 and 2 join with the `role` token): the
    engines and the node ids by host."""
    with contextlib.ExitStack() as stack:
        hosts: list[Engine] = []
        for i in range(HOSTS):
            if kind == "berth":
                env = {"BERTH_NODE": f"host{i}"}
                e = stack.enter_context(berth_running(base / f"b{i}", env, tuple(bed.enter(i))))
            else:
                d = stack.enter_context(dockerd_running(base / f"d{i}", Path("/run/netns") / bed.node(i)))
                if d is None:
                    raise RuntimeError("dockerd did not start")
                e = d
            e.docker("import", str(tar), "busybox:latest")
            hosts.append(e)
        manager = hosts[0]
        manager.docker("swarm", "init", "--advertise-addr", bed.addr(0))
        stack.callback(lambda: [h.docker("swarm", "leave", "--force", check=False) for h in reversed(hosts)])
        token = manager.docker("swarm", "join-token", "-q", role).stdout.strip()
        for i, e in enumerate(hosts[1:], start=1):
            e.docker("swarm", "join", "--token", token, "--advertise-addr", bed.addr(i), f"{bed.addr(0)}:2377")
        ids = [
            json.loads(e.docker("info", "--format", "{{json .Swarm.NodeID}}").stdout) for e in hosts
        ]
        until(lambda: all(_node_ready(manager, n) for n in ids), 60, f"{kind}: three hosts ready")
        yield hosts, ids


def _converge(kind: str, e: Engine, name: str, n: int) -> float:
    """`service create` through e, to n tasks running."""
    start = time.perf_counter()
    e.docker("service", "create", "--detach", "--name", name, "--replicas", str(n), "--restart-delay", "0s",
             "--stop-grace-period", "1s", "busybox:latest", "sleep", "100000")  # fmt: skip
    until(lambda: sum(_running_by_node(e, name).values()) == n, 300, f"{kind}: {n} tasks running")
    return time.perf_counter() - start


def _host_lost(kind: str, bed: NetBed, host: int, lost: str, e: Engine, name: str, n: int) -> float:
    """A host's link cut, to n tasks running elsewhere as e sees them; then the link back, the
    service removed and the host Ready again."""
    subprocess.run(["ip", "-n", bed.node(host), "link", "set", "eth0", "down"], check=True)
    start = time.perf_counter()
    try:
        until(lambda: (lambda c: c.get(lost, 0) == 0 and sum(c.values()) == n)(_running_by_node(e, name)),
               180, f"{kind}: host {host}'s tasks placed elsewhere")  # fmt: skip
        took = time.perf_counter() - start
    finally:
        subprocess.run(["ip", "-n", bed.node(host), "link", "set", "eth0", "up"], check=True)
    until(lambda: _node_ready(e, lost), 180, f"{kind}: host {host} back")
    e.docker("service", "rm", name)
    return took


def one_round(kind: str, bed: NetBed, manager: Engine, ids: list[str], n: int, rnd: int) -> dict[str, float]:
    """One manager, two workers: converge, then host 2 lost."""
    name = f"bench{rnd}"
    converge = _converge(kind, manager, name, n)
    spread = _running_by_node(manager, name)
    reschedule = _host_lost(kind, bed, 2, ids[2], manager, name, n)
    print(f"  {kind} round {rnd}: converge {converge:.2f}s over {sorted(spread.values())}, "
          f"node loss {reschedule:.2f}s", file=sys.stderr)  # fmt: skip
    return {f"converge {n} replicas on {HOSTS} hosts": converge, "node loss to all running elsewhere": reschedule}


def manager_round(kind: str, bed: NetBed, hosts: list[Engine], ids: list[str], n: int, rnd: int) -> dict[str, float]:
    """Three managers: the first one lost, timed from the second one's view."""
    name, survivor = f"mgr{rnd}", hosts[1]
    _converge(kind, survivor, name, n)
    took = _host_lost(kind, bed, 0, ids[0], survivor, name, n)
    print(f"  {kind} round {rnd}: manager loss {took:.2f}s", file=sys.stderr)
    return {"manager loss (1 of 3) to all running elsewhere": took}


def main() -> None:
    args = swarm_bench_args(__doc__.splitlines()[0])
    kinds = ["berth"] + ([] if args.no_dockerd or not shutil.which("dockerd") else ["dockerd"])
    times: dict[str, dict[str, list[float]]] = {}
    base = Path(tempfile.mkdtemp(prefix="bswh-", dir="/tmp"))
    tar = base / "busybox.tar"
    tar.write_bytes(busybox_rootfs_tar())
    try:
        with NetBed(HOSTS) as bed:
            for rep in range(args.reps):
                for kind in kinds if rep % 2 == 0 else list(reversed(kinds)):
                    with swarm(kind, bed, base / f"{kind}{rep}", tar) as (hosts, ids):
                        for what, value in one_round(kind, bed, hosts[0], ids, args.replicas, rep).items():
                            times.setdefault(what, {}).setdefault(kind, []).append(value)
                    with swarm(kind, bed, base / f"{kind}{rep}m", tar, "manager") as (hosts, ids):
                        for what, value in manager_round(kind, bed, hosts, ids, args.replicas, rep).items():
                            times.setdefault(what, {}).setdefault(kind, []).append(value)
    finally:
        cleanup_mounts(base)
        shutil.rmtree(base, ignore_errors=True)
    print_medians("three hosts, median s (runs)", kinds, times, f"reps={args.reps}, replicas={args.replicas}")

if __name__ == "__main__":
    main()
