"""Push benchmark: berth (lifecycle straight to the registry) against dockerd, in one run.

    .venv/bin/python bench/push_bench.py [--mb 200] [--reps 2]

The three-layer image of pull_bench.py (about --mb MB of incompressible files, gzip layers) is
seeded in a local docker-registry; each engine pulls it, then pushes it to a fresh registry of
its own (every layer uploaded: `docker push`), then pushes it again under another tag (every
layer already there: the re-push). Each push is timed --reps times (a new empty registry for
each first push). Everything it starts is stopped at the end. Prints a markdown table; asserts
nothing.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path

from berth_testsupport import registry as tr

sys.path.insert(0, str(Path(__file__).parent))
from engines import UnixHTTPConnection  # noqa: E402
from pull_bench import bench_args, berth_engine, dockerd_engine, print_table, seeded_image, timed  # noqa: E402


def api_push(env: dict[str, str], ref: str, tag: str) -> float:
    """POST /images/{ref}/push straight on the socket, the stream read to its end: the engine's
    own time, without the docker CLI's start-up (about 40 ms, the same for both engines)."""
    sock = env["DOCKER_HOST"].removeprefix("unix://")
    auth = base64.urlsafe_b64encode(b"{}").decode()
    conn = UnixHTTPConnection(Path(sock))
    try:
        start = time.perf_counter()
        conn.request("POST", f"/v1.41/images/{ref}/push?tag={tag}", headers={"X-Registry-Auth": auth})
        body = conn.getresponse().read()
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    if b"errorDetail" in body or b"digest: sha256:" not in body:
        raise RuntimeError(f"push of {ref}:{tag} failed: {body[-500:]!r}")
    return elapsed


def measure(env: dict[str, str], source: str, reps: int) -> tuple[list[float], list[float], list[float]]:
    subprocess.run(["docker", "pull", "-q", source], env=env, capture_output=True, check=True, timeout=900)
    first: list[float] = []
    again: list[float] = []
    again_api: list[float] = []
    for i in range(reps):
        with tr.registry() as target:
            ref = f"{target.removeprefix('http://')}/bench/pushed"
            subprocess.run(["docker", "tag", source, f"{ref}:1"], env=env, check=True, timeout=60)
            first.append(timed(["docker", "push", f"{ref}:1"], env))
            subprocess.run(["docker", "tag", source, f"{ref}:{i + 2}"], env=env, check=True, timeout=60)
            again.append(timed(["docker", "push", f"{ref}:{i + 2}"], env))
            subprocess.run(["docker", "tag", source, f"{ref}:api{i}"], env=env, check=True, timeout=60)
            again_api.append(api_push(env, ref, f"api{i}"))
    return first, again, again_api


def main() -> None:
    args = bench_args()
    rows: list[tuple[str, list[float]]] = []
    with seeded_image("berth-pushbench-", args.mb) as (root, source):
        with berth_engine(root / "b") as env:
            first, again, api = measure(env, source, args.reps)
            rows += [("berth: push, every layer uploaded", first), ("berth: re-push, layers already there", again),
                     ("berth: re-push, the API call alone (no CLI)", api)]
        with dockerd_engine(root / "d") as env:
            first, again, api = measure(env, source, args.reps)
            rows += [("dockerd: push, every layer uploaded", first), ("dockerd: re-push, layers already there", again),
                     ("dockerd: re-push, the API call alone (no CLI)", api)]
    print_table(f"push of a {args.mb} MB three-layer image", rows)


if __name__ == "__main__":
    main()
