"""berth's own registry (registry-proxy, hosted repositories) against Debian's docker-registry,
both with htpasswd users, a scratch dockerd 20.10 as the client, in one run.

    .venv/bin/python bench/own_registry_bench.py [--mb 200] [--reps 2]

The three-layer image of pull_bench.py (about --mb MB of incompressible files, gzip layers) is
seeded in a local docker-registry and pulled by dockerd; then, --reps times, into a fresh
registry of each kind: `docker login`, `docker push` (every layer uploaded), a re-push under
another tag (every layer there), `docker rmi` + `docker pull` back. Prints a markdown table;
asserts nothing. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from berth_testsupport import registry as tr

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "services" / "registry-proxy" / "tests"))
from hosted_harness import hosted_registry  # noqa: E402
from pull_bench import bench_args, dockerd_engine, print_table, seeded_image, timed  # noqa: E402


@contextlib.contextmanager
def berth_registry() -> Iterator[str]:
    with hosted_registry({"BERTH_REGISTRY_WEBHOOKS": "", "BERTH_REGISTRY_PROXY_MAX_BLOB": str(16 << 30)}) as run:
        yield run.url


def measure(env: dict[str, str], source: str, kind: str, reps: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"push": [], "re-push": [], "pull": []}
    for i in range(reps):
        registry = berth_registry() if kind == "berth" else tr.registry(users={"alice": "alice-pw"})
        with registry as url:
            host = url.removeprefix("http://")
            subprocess.run(["docker", "login", "-u", "alice", "--password-stdin", host], input="alice-pw", text=True,
                           env=env, check=True, capture_output=True, timeout=60)
            ref = f"{host}/alice/bench"
            subprocess.run(["docker", "tag", source, f"{ref}:1"], env=env, check=True, timeout=60)
            out["push"].append(timed(["docker", "push", f"{ref}:1"], env))
            subprocess.run(["docker", "tag", source, f"{ref}:{i + 2}"], env=env, check=True, timeout=60)
            out["re-push"].append(timed(["docker", "push", f"{ref}:{i + 2}"], env))
            subprocess.run(["docker", "rmi", f"{ref}:1", f"{ref}:{i + 2}", source], env=env, check=True,
                           capture_output=True, timeout=120)
            out["pull"].append(timed(["docker", "pull", f"{ref}:1"], env))
            subprocess.run(["docker", "tag", f"{ref}:1", source], env=env, check=True, timeout=60)
            subprocess.run(["docker", "rmi", f"{ref}:1"], env=env, check=True, capture_output=True, timeout=60)
            subprocess.run(["docker", "logout", host], env=env, capture_output=True, timeout=60)
    return out


def main() -> None:
    args = bench_args()
    rows: list[tuple[str, list[float]]] = []
    with seeded_image("berth-ownregbench-", args.mb) as (root, source):
        with dockerd_engine(root / "d") as env:
            subprocess.run(["docker", "pull", "-q", source], env=env, capture_output=True, check=True, timeout=900)
            for kind in ("berth", "docker-registry"):
                for what, values in measure(env, source, kind, args.reps).items():
                    rows.append((f"{kind}: {what}", values))
    print_table(f"dockerd 20.10 and a {args.mb} MB three-layer image", rows)


if __name__ == "__main__":
    main()
