"""Swarm mode on one node, berth and dockerd 20.10 side by side in one run.

    .venv/bin/python bench/swarm_bench.py --reps 3 --replicas 30     # as root, a few minutes

Each engine: `docker swarm init`, then per round
1. converge: from `docker service create --detach --replicas N` to N tasks running (polling
   `docker service ls` every 50 ms);
2. reschedule: a task's container killed (`docker kill`) to N running again, the service created
   with `--restart-delay 0s` so only detection and replacement are measured;
3. remove: `docker service rm` to no task container left.
The engines alternate every round. Prints a table of medians and asserts nothing. The issue's
measure is on three nodes; berth's swarm mode runs on one node so far (orchestrator README).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from engines import (  # noqa: E402
    Engine,
    alternating,
    engines_with_busybox,
    print_medians,
    single_node_swarms,
    swarm_bench_args,
    until,
)


def _replicas(e: Engine, name: str) -> str:
    return e.docker("service", "ls", "--filter", f"name={name}", "--format", "{{.Replicas}}", check=False).stdout.strip()


def _task_containers(e: Engine, name: str, running_only: bool = True) -> list[str]:
    args = ["ps", "-q", "--filter", f"label=com.docker.swarm.service.name={name}"]
    if not running_only:
        args.insert(1, "-a")
    return e.docker(*args, check=False).stdout.split()


def one_round(e: Engine, n: int, rnd: int) -> dict[str, float]:
    name = f"bench{rnd}"
    start = time.perf_counter()
    e.docker("service", "create", "--detach", "--name", name, "--replicas", str(n), "--restart-delay", "0s",
             "--stop-grace-period", "1s", "busybox:latest", "sleep", "100000")  # fmt: skip
    until(lambda: _replicas(e, name) == f"{n}/{n}", 300, f"{e.name}: {n} tasks running")
    converge = time.perf_counter() - start
    victim = _task_containers(e, name)[0]
    start = time.perf_counter()
    e.docker("kill", victim)
    until(lambda: victim not in _task_containers(e, name) and len(_task_containers(e, name)) == n, 120,
           f"{e.name}: the killed task replaced")  # fmt: skip
    reschedule = time.perf_counter() - start
    start = time.perf_counter()
    e.docker("service", "rm", name)
    until(lambda: not _task_containers(e, name, running_only=False), 300, f"{e.name}: the tasks removed")
    remove = time.perf_counter() - start
    return {"converge": converge, "reschedule": reschedule, "remove": remove}


def main() -> None:
    args = swarm_bench_args(__doc__.splitlines()[0])
    times: dict[str, dict[str, list[float]]] = {}
    with engines_with_busybox("bswarm-", with_dockerd=not args.no_dockerd) as (_, engines), single_node_swarms(engines):
        for rep, e in alternating(engines, args.reps):
            for what, value in one_round(e, args.replicas, rep).items():
                times.setdefault(what, {}).setdefault(e.name, []).append(value)
    names = [e.name for e in engines]
    print_medians("one node, median s (runs)", names, times, f"reps={args.reps}, replicas={args.replicas}")

if __name__ == "__main__":
    main()
