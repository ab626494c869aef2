"""The supervisor's side of the forkserver (berth_cli.forkserver): fork the first one from the
supervisor itself, keep one running, start services through it, and hand back process handles
that Child drives like any other process."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anyio
from anyio.abc import Process, TaskGroup, TaskStatus, UNIXSocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from berth_cli import forkserver, procs

log = logging.getLogger("berth.supervisor")

SPAWN_TIMEOUT = 15.0  # forking is milliseconds
READY_TIMEOUT = 60.0  # a restarted forkserver imports every service first: seconds when loaded
MAX_LINE = 1 << 16
BACKOFF_MIN = 0.5
BACKOFF_MAX = 10.0
STOP_GRACE = 5.0


class LaunchError(Exception):
    """The forkserver could not start a service."""


@dataclass
class Preforked:
    """A forkserver forked from the supervisor before its event loop started."""

    pid: int
    sock: socket.socket


def prefork(modules: Sequence[str]) -> Preforked:
    """Import the services' code here, then fork the forkserver: the supervisor, the forkserver
    and every service then share one copy of it. Call before any thread or event loop exists."""
    forkserver.preload(list(modules))
    forkserver.freeze()
    mine, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            mine.close()
            os.dup2(theirs.fileno(), 0)
            os.dup2(theirs.fileno(), 1)
            theirs.close()
            os.setsid()  # a terminal's Ctrl-C is for the supervisor, which then stops us
            forkserver.set_title("berth-forksrv")
        except BaseException:  # noqa: BLE001 - never return into the supervisor's code
            traceback.print_exc()
            os._exit(1)
        forkserver.serve_forever()
    theirs.close()
    return Preforked(pid, mine)


async def wait_pid_gone(pid: int, ticks: int = 0) -> None:
    """Until pid has exited (any process, not only our children): its pidfd turns readable.
    With ticks, a pid reused by another process counts as gone."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if not ticks or procs.alive(pid, ticks):
            await anyio.wait_readable(pidfd)
    finally:
        os.close(pidfd)


class ForkedProcess:
    """A service forked by the forkserver: not our child, so its exit comes as a message."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._ticks = procs.start_ticks(pid)
        self._exited = anyio.Event()

    async def wait(self) -> int | None:
        """The exit status; None when the forkserver went first and nobody could reap it for us."""
        await self._exited.wait()
        return self.returncode

    def send_signal(self, sig: signal.Signals) -> None:
        if not self._exited.is_set():
            procs.signal_pid(self.pid, sig, self._ticks)

    def exited(self, status: int | None) -> None:
        if not self._exited.is_set():
            self.returncode = status
            self._exited.set()

    async def watch_orphaned(self) -> None:
        """The forkserver is gone: learn of the exit from the pid itself."""
        await wait_pid_gone(self.pid, self._ticks)
        self.exited(None)


class _Server:
    """One forkserver process: the prefork (our fork) or a restart (`python -m`)."""

    def __init__(self, pid: int, stream: UNIXSocketStream, proc: Process | None) -> None:
        self.pid = pid
        self.stream = stream
        self._proc = proc
        self._reaped = False

    async def wait(self) -> None:
        if self._proc is not None:
            await self._proc.wait()
            return
        if self._reaped:
            return
        await wait_pid_gone(self.pid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, os.WNOHANG)  # noqa: ASYNC222 - it has exited: this only reaps
        self._reaped = True

    def kill(self) -> None:
        if self._proc is not None:
            if self._proc.returncode is None:
                self._proc.kill()
        elif not self._reaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


class ForkServer:
    def __init__(
        self,
        modules: Sequence[str],
        env: dict[str, str],
        preforked: Preforked | None = None,
        on_change: Callable[[int], None] = lambda pid: None,
    ) -> None:
        """on_change(pid) is told of each forkserver start (its pid) and exit (0)."""
        self._on_change = on_change
        self._argv = [sys.executable, "-m", "berth_cli.forkserver", *modules]
        self._env = env
        self._preforked = preforked
        self._server: _Server | None = None
        self._ready = anyio.Event()
        self._stopping = False
        self._next_id = 0
        self._pending: dict[int, tuple[anyio.Event, list[int | str]]] = {}
        self._forked: dict[int, ForkedProcess] = {}
        self._early_exits: dict[int, int] = {}
        self._lock = anyio.Lock()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Keep a forkserver running until stop(); restart it with backoff when it dies."""
        task_status.started()
        delay = BACKOFF_MIN
        # Orphan watchers live here, not in one run's task group: a restart must not wait on them.
        async with anyio.create_task_group() as watchers:
            while not self._stopping:
                started = time.monotonic()
                try:
                    await self._run_once(watchers)
                except OSError as exc:
                    log.error("cannot start the forkserver: %s", exc)
                if self._stopping:
                    break
                if time.monotonic() - started > 30:
                    delay = BACKOFF_MIN
                log.warning("forkserver exited; restarting in %.1fs", delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
            watchers.cancel_scope.cancel()

    async def _start(self) -> _Server:
        if self._preforked is not None:
            first, self._preforked = self._preforked, None
            return _Server(first.pid, await UNIXSocketStream.from_socket(first.sock), None)
        mine, theirs = socket.socketpair()
        try:
            proc = await anyio.open_process(
                self._argv,
                env=self._env,
                stdin=theirs.fileno(),
                stdout=theirs.fileno(),
                stderr=None,  # the terminal, or berth.log when detached
                start_new_session=True,
            )
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        return _Server(proc.pid, await UNIXSocketStream.from_socket(mine), proc)

    async def _run_once(self, watchers: TaskGroup) -> None:
        server = await self._start()
        self._server = server
        self._ready.set()
        self._on_change(server.pid)
        log.info("forkserver running (pid %d)", server.pid)
        reader = BufferedByteReceiveStream(server.stream)
        try:
            while True:
                try:
                    line = await reader.receive_until(b"\n", MAX_LINE)
                except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                    break
                self._dispatch(line)
        finally:
            self._ready = anyio.Event()
            self._server = None
            self._on_change(0)
            for event, answer in self._pending.values():
                answer.append("the forkserver exited")
                event.set()
            # Services it forked keep running: watch them by pid from now on.
            for forked in self._forked.values():
                watchers.start_soon(forked.watch_orphaned)
            self._forked.clear()
            with anyio.CancelScope(shield=True):
                await self._close(server)

    @staticmethod
    async def _close(server: _Server) -> None:
        await server.stream.aclose()
        with anyio.move_on_after(STOP_GRACE):
            await server.wait()
            return
        server.kill()
        with anyio.move_on_after(STOP_GRACE):
            await server.wait()

    def _dispatch(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            log.warning("forkserver: bad line %r", line[:200])
            return
        if "exited" in msg:
            pid, status = int(msg["exited"]), int(msg["status"])
            forked = self._forked.pop(pid, None)
            if forked is not None:
                forked.exited(status)
            else:  # exited before its spawn() saw the pid
                self._early_exits[pid] = status
            return
        waiter = self._pending.get(int(msg.get("id", -1)))
        if waiter is not None:
            waiter[1].append(int(msg["pid"]) if "pid" in msg else str(msg.get("error", "?")))
            waiter[0].set()

    async def spawn(
        self,
        module: str,
        title: str,
        env: dict[str, str] | None = None,
        fds: Sequence[int] = (),
    ) -> ForkedProcess:
        """Fork `python -m module` from the forkserver (with env, default the forkserver's),
        which hands it `fds` (its listening sockets, numbered in its BERTH_LISTEN_FD);
        raises LaunchError."""
        with anyio.move_on_after(READY_TIMEOUT):
            await self._ready.wait()
        server = self._server
        if server is None:
            raise LaunchError("the forkserver is not running")
        self._next_id += 1
        req_id = self._next_id
        event, answer = anyio.Event(), []  # type: tuple[anyio.Event, list[int | str]]
        self._pending[req_id] = (event, answer)
        request = {
            "id": req_id,
            "module": module,
            "title": title,
            "env": env or self._env,
            "fds": len(fds),
        }
        try:
            async with self._lock:  # one request line at a time on the socket
                try:
                    line = json.dumps(request).encode() + b"\n"
                    if fds:  # in the same sendmsg as the line's first byte
                        await server.stream.send_fds(line, fds)
                    else:
                        await server.stream.send(line)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                    raise LaunchError(f"the forkserver is gone: {exc}") from None
            with anyio.move_on_after(SPAWN_TIMEOUT):
                await event.wait()
        finally:
            del self._pending[req_id]
        if not answer:
            raise LaunchError(f"the forkserver did not answer within {SPAWN_TIMEOUT:.0f}s")
        if isinstance(answer[0], str):
            raise LaunchError(answer[0])
        forked = ForkedProcess(answer[0])
        if forked.pid in self._early_exits:
            forked.exited(self._early_exits.pop(forked.pid))
        else:
            self._forked[forked.pid] = forked
        return forked

    async def stop(self) -> None:
        """End of input makes it exit; the services it forked are stopped by their Childs."""
        self._stopping = True
        server = self._server
        if server is None:
            return
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await server.stream.send_eof()
        with anyio.move_on_after(STOP_GRACE):
            await server.wait()
            return
        server.kill()
