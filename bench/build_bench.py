"""`docker build` on berth and on dockerd 20.10 (classic builder on both), in one run.

    .venv/bin/python bench/build_bench.py --reps 3 --mb 25 --files 3000     # as root, minutes

Both engines get the same busybox image (`docker import` of busybox_rootfs_tar) and build the same
context with the real docker CLI (`DOCKER_BUILDKIT=0`): issue 11's 10-step Dockerfile, metadata
steps, a COPY of `--files` small files (1-4 KiB each) and RUN steps that write `--mb` MB of
incompressible and `--mb` MB of compressible data. Three measures per engine, the engines
alternating every round:

1. cold: `docker build --no-cache` (every step runs and is committed);
2. cached: the same build again (every step a cache hit);
3. one line changed: the last RUN differs (the steps before it are cache hits).

It prints a table of medians with berth / dockerd ratios and asserts nothing; issue 11 asks for cold
<= 0.8x and cached <= 0.5x of dockerd.

`--settle S` syncs and waits S seconds before every cold build. On these machines' ext4 (no
journal), creating a file skips every inode freed in the last 60 s (360 s while its inode table
block is unwritten): `recently_deleted()` in fs/ext4/ialloc.c, 50-60 % of a slow extraction's time
under `perf`. So one engine's deletions (dockerd removes each step container's files and the
extracted context) slow the next build's file creation, whichever engine runs it; the same
3000-file `tar -x` takes 0.05-2 s depending on what was deleted before it. `--settle 61` is not
enough on its own: a build's own allocations dirty those inode table blocks again, which makes
the window 360 s. `--blocks` waits 370 s, runs all of dockerd's rounds, waits 370 s, and runs
berth's, so that each engine builds only in its own deletions' aftermath, as on a host that runs
one of them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from engines import Engine, engines_with_busybox  # noqa: E402

DOCKERFILE = """\
FROM busybox:latest
LABEL bench=build
ENV APP=/app MB={mb}
WORKDIR /app
COPY src /app/src
RUN dd if=/dev/urandom of=/app/random.bin bs=1M count=$MB 2>/dev/null
RUN dd if=/dev/zero of=/app/zero.bin bs=1M count=$MB 2>/dev/null && echo {last}
EXPOSE 8080
USER nobody
CMD ["sh", "-c", "ls -l /app"]
"""


def write_context(root: Path, mb: int, files: int, last: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(DOCKERFILE.format(mb=mb, last=last))
    src = root / "src"
    if not src.exists():
        for i in range(files):
            d = src / f"d{i % 50:02d}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"f{i:05d}.txt").write_bytes(os.urandom(512) * (2 + i % 7))
    return root


def timed_build(engine: Engine, context: Path, tag: str, *extra: str) -> float:
    start = time.perf_counter()
    res = engine.docker(
        "build", "-q", "-t", tag, *extra, str(context), env={"DOCKER_BUILDKIT": "0"}, check=False
    )
    elapsed = time.perf_counter() - start
    if res.returncode != 0:
        raise RuntimeError(f"{engine.name}: docker build failed: {res.stderr[-2000:]}")
    return elapsed


# The kernel's longest "recently deleted" window: 60 s, plus 300 s while the inode table block
# is unwritten, which the next build's own allocations make it again.
BLOCK_GAP = 370.0


def settle(seconds: float) -> None:
    if seconds > 0:
        os.sync()
        time.sleep(seconds)


def measure(
    engines: list[Engine], base: Path, mb: int, files: int, reps: int, settle_s: float = 0.0,
    blocks: bool = False,
) -> dict[str, dict[str, list[float]]]:
    times: dict[str, dict[str, list[float]]] = {
        what: {e.name: [] for e in engines} for what in ("cold", "cached", "last step changed")
    }
    context = write_context(base / "ctx", mb, files, "first")
    # Alternating: the engines take turns each round. Blocks: BLOCK_GAP, all of dockerd's
    # rounds, BLOCK_GAP, berth's: neither builds in the other's (or the set-up's) deletions.
    rounds = [[e] for e in reversed(engines) for _ in range(reps)] if blocks else [
        engines if rep % 2 == 0 else list(reversed(engines)) for rep in range(reps)
    ]
    for rep, order in enumerate(rounds):
        for e in order:
            new_block = blocks and (rep == 0 or rounds[rep - 1] != order)
            settle(BLOCK_GAP if new_block else settle_s)
            times["cold"][e.name].append(timed_build(e, context, "bench:cold", "--no-cache"))
        for e in order:
            times["cached"][e.name].append(timed_build(e, context, "bench:cold"))
        changed = write_context(base / "ctx", mb, files, f"changed-{rep}")
        for e in order:
            times["last step changed"][e.name].append(timed_build(e, changed, "bench:changed"))
        write_context(base / "ctx", mb, files, "first")
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mb", type=int, default=25, help="MB each of the two RUN steps writes")
    ap.add_argument("--files", type=int, default=3000, help="small files the COPY step copies")
    ap.add_argument("--no-dockerd", action="store_true")
    ap.add_argument("--settle", type=float, default=0.0, help="sync and wait S s before each cold build")
    ap.add_argument("--blocks", action="store_true", help="each engine's rounds together, not alternating")
    args = ap.parse_args()
    with engines_with_busybox("bbuild-", with_dockerd=not args.no_dockerd) as (base, engines):
        load = os.getloadavg()[0]
        times = measure(engines, base, args.mb, args.files, args.reps, args.settle, args.blocks)
    names = [e.name for e in engines]
    two = len(names) == 2
    print(
        f"\nmachine: {os.uname().nodename}, {os.cpu_count()} cores; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; reps={args.reps}, mb={args.mb}, "
        f"files={args.files}, settle={args.settle:g} s{', blocks' if args.blocks else ''}; "
        f"load average (1 min) at the start {load:.2f}\n"
    )
    header = "| docker build (classic), median s (runs) | " + " | ".join(names)
    header += " | berth / dockerd |" if two else " |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for what, by_engine in times.items():
        cells = [
            f"{statistics.median(v):.2f} ({', '.join(f'{x:.2f}' for x in v)})"
            for v in (by_engine[n] for n in names)
        ]
        if two:
            ratio = statistics.median(by_engine["berth"]) / statistics.median(by_engine["dockerd"])
            cells.append(f"{ratio:.2f}×")
        print(f"| {what} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
