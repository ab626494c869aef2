"""The service forkserver: one interpreter imports every service's code once, then forks each
service from that warm image. The services then share those pages (copy-on-write) instead of
each loading its own copy of CPython's heap of modules (nats-py, msgspec, OpenTelemetry, aiohttp,
uvloop): the idle suite's memory is most of what it costs (bench/README.md, item 5).

The supervisor forks it from itself before its event loop starts, having imported the same modules,
so the supervisor shares those pages too (berth_cli.forkclient.prefork); when that one dies it
runs `python -m berth_cli.forkserver MODULE...` instead. Either way a socket is its stdin and
stdout, one JSON object per line:
  request  {"id": N, "module": "berth_engine", "title": "berth-engine", "env": {...}, "fds": K}
           K (optional): file descriptors sent with the request (SCM_RIGHTS) that the service
           inherits, their numbers in its BERTH_LISTEN_FD (the listening sockets the supervisor
           bound for it: no port is picked by one process and bound later by another)
  replies  {"id": N, "pid": P} or {"id": N, "error": MSG}, and later
           {"exited": P, "status": S}  (S as Popen.returncode: negative for a signal)

A forked service runs in its own session with stdin on /dev/null and stdout on the forkserver's
stderr, exactly as `python -m MODULE` would, and does not depend on the forkserver afterwards:
if the forkserver goes, its services are re-parented and keep running (the supervisor then
watches them by pid). The forkserver exits when its stdin closes (the supervisor is gone).
Stdlib only here (berth_common is stdlib-only too); the services' imports are what it is for.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import importlib.util
import json
import logging
import os
import runpy
import selectors
import signal
import socket
import sys
import threading
import traceback
from dataclasses import dataclass, field
from typing import NoReturn

from berth_common.reaping import exited_children


@dataclass(frozen=True)
class Job:
    """What a freshly forked child runs, once it has left the forkserver's loop."""

    module: str
    title: str
    env: dict[str, str] | None = field(default=None)
    fds: tuple[int, ...] = ()


LISTEN_FD_ENV = "BERTH_LISTEN_FD"  # the fd number(s) of the listening socket(s) a service inherits


def _say(msg: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, f"berth-forkserver: {msg}\n".encode())


# What every service imports only once it runs (anyio loads its backend and uvloop lazily),
# found by diffing sys.modules in a forked service against the forkserver's.
RUNTIME_MODULES = (
    "uvloop",
    "anyio._backends._asyncio",
    "anyio.streams.tls",
    "concurrent.futures.thread",
    "queue",
    "encodings.idna",
)


def preload(modules: list[str]) -> None:
    """Import each service's `__main__` (guarded by `if __name__ == "__main__"`, so nothing runs).

    Plain modules are not imported here: their top level might start the service.
    """
    for module in RUNTIME_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    for module in modules:
        try:
            spec = importlib.util.find_spec(module)
            if spec is not None and spec.submodule_search_locations is not None:
                importlib.import_module(f"{module}.__main__")
        except Exception as exc:  # noqa: BLE001 - the child will fail to start and say why
            _say(f"cannot preload {module}: {type(exc).__name__}: {exc}")


def _send(obj: dict[str, object]) -> None:
    with contextlib.suppress(BrokenPipeError):  # the supervisor is gone; stdin EOF follows
        os.write(1, json.dumps(obj).encode() + b"\n")


def _reap() -> None:
    for pid, status in exited_children():
        _send({"exited": pid, "status": os.waitstatus_to_exitcode(status)})


def serve() -> Job | None:
    """Answer requests until stdin closes (None); in a forked child, return its Job instead."""
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so SIGCHLD writes the wakeup fd
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the supervisor's
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ, "stdin")
    sel.register(wake_r, selectors.EVENT_READ, "child")
    buf = b""
    received: list[int] = []  # fds that came with requests, in order
    try:
        control: socket.socket | None = socket.socket(fileno=0)
    except OSError:  # a pipe (tests): no fds can come with requests
        control = None
    try:
        while True:
            for key, _ in sel.select():
                if key.data == "child":
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 4096)
                    _reap()
                    continue
                if control is not None:
                    chunk, fds, _flags, _addr = socket.recv_fds(control, 65536, 16)
                    received.extend(fds)
                else:
                    chunk = os.read(0, 65536)
                if not chunk:
                    return None
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    job = _handle(line, received)
                    if job is not None:  # we are the child now
                        _close(received)  # sent for later requests: not this service's
                        return job
    finally:
        if control is not None:
            control.detach()  # fd 0 stays open: it is stdin
        sel.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.close(wake_r)
        os.close(wake_w)


def _handle(line: bytes, received: list[int]) -> Job | None:
    """Fork for one request; `received` holds the fds sent so far (this request's first)."""
    fds: tuple[int, ...] = ()
    try:
        req = json.loads(line)
        env = req.get("env")
        nfds = int(req.get("fds", 0))
        fds = tuple(received[:nfds])
        del received[:nfds]
        job = Job(
            module=str(req["module"]),
            title=str(req.get("title") or req["module"]),
            env={str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else None,
            fds=fds,
        )
        req_id = req["id"]
    except (ValueError, KeyError, TypeError) as exc:
        _say(f"bad request {line[:200]!r}: {exc}")
        _close([*fds, *received])  # whose they were is unknown now: no later request gets them
        received.clear()
        return None
    if len(fds) != nfds:
        _send({"id": req_id, "error": f"{nfds} fds announced, {len(fds)} received"})
        _close(fds)
        return None
    if threading.active_count() != 1:  # forking a threaded process can copy a held lock
        _send({"id": req_id, "error": "forkserver has threads; refusing to fork"})
        _close(fds)
        return None
    try:
        pid = os.fork()
    except OSError as exc:
        _send({"id": req_id, "error": f"fork: {exc}"})
        _close(fds)
        return None
    if pid == 0:
        return job
    _close(fds)  # the service has its copies; the forkserver keeps none
    _send({"id": req_id, "pid": pid})
    return None


def _close(fds: tuple[int, ...] | list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def set_title(title: str) -> None:
    """What ps -o comm, top and pgrep show (the command line stays the parent's)."""
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
        comm.write(title[:15])


def freeze() -> None:
    """Objects imported so far are never collected: a GC pass in a service would otherwise write
    to every object header and un-share the pages it inherited."""
    gc.collect()
    gc.freeze()


def run_job(job: Job) -> NoReturn:
    """In the forked child: become `python -m MODULE` in a session of its own, then exit as the
    interpreter would (atexit handlers, flushed output) without unwinding into the parent's stack."""
    code = 0
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(2, 1)  # the control socket is the supervisor's; output goes where stderr goes
        os.setsid()
        set_title(job.title)
        if job.env is not None:
            os.environ.clear()
            os.environ.update(job.env)
        if job.fds:
            os.environ[LISTEN_FD_ENV] = ",".join(str(fd) for fd in job.fds)
        if os.environ.get("PYTHONUNBUFFERED"):
            sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        logging.root.handlers.clear()  # the service configures logging as if it were new
        sys.argv = [job.module]
        # The preloaded copy was for its imports; runpy runs __main__ afresh (and warns if the
        # preloaded one is still registered).
        sys.modules.pop(f"{job.module}.__main__", None)
        runpy.run_module(job.module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - report it like the interpreter would, then exit
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def serve_forever() -> NoReturn:
    """The forkserver's life after its preload: serve, and in each forked child run its job."""
    try:
        job = serve()
        if job is not None:
            run_job(job)
    except BaseException:  # noqa: BLE001 - never unwind into whoever forked us
        traceback.print_exc()
        os._exit(1)
    os._exit(0)


def main() -> None:
    set_title("berth-forksrv")
    preload(sys.argv[1:])
    freeze()
    serve_forever()


if __name__ == "__main__":
    main()
