"""How late does the shim notice that `runc create` exited? Popen.wait(timeout) against a pidfd.

    .venv/bin/python bench/runc_wait.py [--runs 30]

Builds a busybox bundle under /tmp (rootfs from `berth_testsupport.images`, `runc spec`
defaults, no network namespace sharing), then alternates, for each run:
- old: `subprocess.run([runc, create, ...], timeout=60)` (what the shim did before), and
- new: `berth_agent.shim.runc.wait_pid` on a Popen's pid (a pidfd polled until it exits),
each followed by `runc delete --force`. Prints medians and min–max; removes everything after.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from berth_agent.shim.runc import wait_pid
from berth_testsupport.images import busybox_rootfs_tar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bb-runc-", dir="/tmp"))
    root = base / "runc"
    bundle = base / "bundle"
    try:
        (bundle / "rootfs").mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(busybox_rootfs_tar())) as tar:
            tar.extractall(bundle / "rootfs", filter="tar")
        subprocess.run(["runc", "spec", "-b", str(bundle)], check=True)
        config = json.loads((bundle / "config.json").read_text())
        config["process"]["terminal"] = False
        config["process"]["args"] = ["true"]
        (bundle / "config.json").write_text(json.dumps(config))
        times: dict[str, list[float]] = {"old: Popen.wait(timeout)": [], "new: pidfd": []}
        for i in range(args.runs * 2):
            cid = f"bbw{i}"
            cmd = ["runc", "--root", str(root), "create", "--bundle", str(bundle), cid]
            old = i % 2 == 0
            start = time.perf_counter()
            if old:
                subprocess.run(cmd, stdin=subprocess.DEVNULL, timeout=60, check=True)
            else:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
                proc.returncode = os.waitstatus_to_exitcode(wait_pid(proc.pid, 60))
            times[list(times)[0 if old else 1]].append(time.perf_counter() - start)
            subprocess.run(["runc", "--root", str(root), "delete", "--force", cid], check=True)
        print("| `runc create` seen exited by | median ms (min–max) |\n|---|---|")
        for name, vals in times.items():
            print(
                f"| {name} | {statistics.median(vals) * 1000:.1f} "
                f"({min(vals) * 1000:.1f}–{max(vals) * 1000:.1f}) |"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
