"""The zygote: a small pre-loaded process that forks one detached shim per request. Stdlib only.

The agent runs `python -m berth_agent.shim.zygote` once and talks to it over stdin/stdout, one JSON
object per line. Request: the shim's params (see container.Shim). Answer: {"ok":true,"pid":P} once
the shim has mounted the rootfs and listens on its socket, or {"ok":false,"error":MSG}.

Each shim is forked, then forked again after setsid(), so it is re-parented away from the agent
(to init or the nearest subreaper): kill -9 of the agent and of the zygote leaves it running.
The zygote exits when its stdin closes (its agent is gone).
"""

from __future__ import annotations

import codecs
import contextlib
import gc
import json
import os
import select
import sys

from berth_common.mounts import libc

# Imported here so every shim shares these pages with the zygote (copy-on-write).
from berth_agent.shim.main import run_shim

READY_TIMEOUT = 30.0


def _detach_stdio(bundle: str) -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    log = os.open(os.path.join(bundle, "shim.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 2)
    os.close(devnull)
    os.close(log)


def spawn(params: dict[str, object]) -> dict[str, object]:
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # first child: new session, fork the shim, exit
        try:
            os.close(ready_r)
            os.setsid()
            if os.fork() == 0:
                _detach_stdio(str(params["bundle"]))
                os.closerange(3, ready_w)
                os.closerange(ready_w + 1, 65536)
                sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - lives as long as the shim
                os._exit(run_shim(params, ready_w))
        except BaseException:  # noqa: BLE001 - a forked child must never return into our loop
            os._exit(1)
        os._exit(0)
    os.close(ready_w)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    try:
        buf = b""
        while not buf.endswith(b"\n"):
            readable, _, _ = select.select([ready_r], [], [], READY_TIMEOUT)
            if not readable:
                return {"ok": False, "error": "shim did not become ready"}
            chunk = os.read(ready_r, 4096)
            if not chunk:
                return {"ok": False, "error": "shim exited before becoming ready"}
            buf += chunk
        answer = json.loads(buf)
        return answer if isinstance(answer, dict) else {"ok": False, "error": "bad shim answer"}
    finally:
        os.close(ready_r)


def preload() -> None:
    """Make here, once, what shims would otherwise each make on first use: every object a shim
    creates or module it imports is memory that each container pays for (bench/README.md, 4b)."""
    for name in ("prctl", "malloc_trim", "mount", "umount2"):
        getattr(libc(), name)  # ctypes builds a function pointer on first use
    codecs.lookup("ascii")  # imports encodings.ascii: shims read /proc and pid files as ascii


def main() -> None:
    preload()
    # Move everything imported so far out of the collector's reach: a GC pass in a shim would
    # otherwise write to every object header and un-share the zygote's pages (copy-on-write).
    gc.collect()
    gc.freeze()
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    for line in stdin:
        try:
            params = json.loads(line)
            answer = spawn(params)
        except Exception as exc:  # noqa: BLE001 - answer every request
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        stdout.write(json.dumps(answer).encode() + b"\n")
        stdout.flush()


if __name__ == "__main__":
    main()
