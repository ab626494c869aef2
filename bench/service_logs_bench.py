"""`docker service logs` on one node, berth and dockerd 20.10 side by side in one run.

    .venv/bin/python bench/service_logs_bench.py --reps 5 --replicas 3     # as root, a few minutes

Each engine: `docker swarm init`, one service whose tasks each write LINES lines (BENCH_LINES,
default 1000) and sleep, then per round the time of `docker service logs SERVICE` (all lines,
read to the end by the CLI, output discarded) and of `docker service logs --tail 10 SERVICE`.
A run that does not return within 20 s is counted apart (its row left out of the table). The
engines alternate every round. Prints a table of medians and asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
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
)

# dockerd 20.10's `docker service logs` (without --follow) here stops short of the end and never
# returns once a service's log passes some 8000 lines (2 tasks of 5000: 8087-9599 lines read in
# 20 s, three tries); berth reads those 10000 in 0.22-0.28 s. So the default stays below that.
LINES = int(os.environ.get("BENCH_LINES", "1000"))


def _lines(e: Engine, *args: str) -> int | None:
    """How many lines `docker service logs` printed; None when it did not return within 20 s."""
    env = dict(os.environ, DOCKER_HOST=e.host, **e.env)
    try:
        res = subprocess.run(["docker", "service", "logs", *args, "logs"], env=env, capture_output=True, check=True,
                             timeout=20)  # fmt: skip
    except subprocess.TimeoutExpired:
        return None
    return len(res.stdout.splitlines()) + len(res.stderr.splitlines())


def _timed(e: Engine, *args: str) -> float | None:
    start = time.perf_counter()
    if _lines(e, *args) is None:
        return None
    return time.perf_counter() - start


def main() -> None:
    args = swarm_bench_args(__doc__.splitlines()[0])
    times: dict[str, dict[str, list[float]]] = {}
    unfinished: dict[str, int] = {}
    with engines_with_busybox("bslogs-", with_dockerd=not args.no_dockerd) as (_, engines), single_node_swarms(engines):
        for e in engines:
            e.docker("service", "create", "--name", "logs", "--replicas", str(args.replicas),  # waits: running
                     "busybox:latest", "sh", "-c", f"seq 1 {LINES}; exec sleep 100000")  # fmt: skip
        time.sleep(2)  # seq is done long before
        rows = {f"all {args.replicas * LINES} lines": (), "--tail 10": ("--tail", "10")}
        for _, e in alternating(engines, args.reps):
            for row, flags in rows.items():
                took = _timed(e, *flags)
                if took is None:
                    unfinished[f"{row}, {e.name}"] = unfinished.get(f"{row}, {e.name}", 0) + 1
                else:
                    times.setdefault(row, {}).setdefault(e.name, []).append(took)
    names = [e.name for e in engines]
    complete = {row: runs for row, runs in times.items() if all(runs.get(n) for n in names)}
    print_medians("one node, median s (runs)", names, complete, f"reps={args.reps}, replicas={args.replicas}")
    for row, runs in times.items():
        if row not in complete:  # an engine never finished it: the others' medians alone
            medians = ", ".join(f"{n} {statistics.median(v):.2f} s ({len(v)} runs)" for n, v in runs.items() if v)
            print(f"{row}: {medians}")
    for what, count in unfinished.items():
        print(f"did not return within 20 s: {what}: {count} of {args.reps} runs")


if __name__ == "__main__":
    main()
