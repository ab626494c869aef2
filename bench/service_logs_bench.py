"""`docker service logs` on one node, berth and dockerd 20.10 side by side in one run.

    .venv/bin/python bench/service_logs_bench.py --reps 5 --replicas 3     # as root, a few minutes

Each engine: `docker swarm init`, one service whose tasks each write LINES lines and sleep, then
per round the time of `docker service logs SERVICE` (all lines, read to the end by the CLI,
output discarded) and of `docker service logs --tail 10 SERVICE`. The engines alternate every
round. Prints a table of medians and asserts nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from engines import Engine, engines_with_busybox, print_medians, swarm_bench_args, until  # noqa: E402

LINES = 20000


def _lines(e: Engine, *args: str) -> int:
    env = dict(os.environ, DOCKER_HOST=e.host, **e.env)
    res = subprocess.run(["docker", "service", "logs", *args, "logs"], env=env, capture_output=True, check=True)
    return len(res.stdout.splitlines()) + len(res.stderr.splitlines())


def _timed(e: Engine, *args: str) -> float:
    start = time.perf_counter()
    _lines(e, *args)
    return time.perf_counter() - start


def main() -> None:
    args = swarm_bench_args(__doc__.splitlines()[0])
    times: dict[str, dict[str, list[float]]] = {}
    with engines_with_busybox("bslogs-", with_dockerd=not args.no_dockerd) as (_, engines):
        for e in engines:
            e.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
            e.docker("service", "create", "--detach", "--name", "logs", "--replicas", str(args.replicas),
                     "busybox:latest", "sh", "-c", f"seq 1 {LINES}; exec sleep 100000")  # fmt: skip
            want = args.replicas * LINES
            until(lambda e=e, want=want: _lines(e) == want, 300, f"{e.name}: every task's {LINES} lines")  # type: ignore[misc]
        try:
            for rep in range(args.reps):
                for e in engines if rep % 2 == 0 else list(reversed(engines)):
                    times.setdefault(f"all {args.replicas * LINES} lines", {}).setdefault(e.name, []).append(_timed(e))
                    times.setdefault("--tail 10", {}).setdefault(e.name, []).append(_timed(e, "--tail", "10"))
        finally:
            for e in engines:
                e.docker("swarm", "leave", "--force", check=False)
    names = [e.name for e in engines]
    print_medians("one node, median s (runs)", names, times, f"reps={args.reps}, replicas={args.replicas}")


if __name__ == "__main__":
    main()
