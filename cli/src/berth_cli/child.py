"""One supervised process: start it, restart it with backoff when it dies, stop it gracefully.

Each child runs in its own session, so a Ctrl-C in the terminal that runs `berth up` reaches only
the supervisor, and only the child's own pid is ever signalled: the runtime-agent's shims (and so
the containers) must outlive every berth service.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio

from berth_cli.procs import start_ticks
from berth_cli.state import ChildState

log = logging.getLogger("berth.supervisor")

BACKOFF_MIN = 0.5
BACKOFF_MAX = 10.0
STABLE_AFTER = 30.0  # a run at least this long resets the backoff
STOP_GRACE = 10.0  # SIGTERM, then SIGKILL after this many seconds


class Running(Protocol):
    """What Child needs of a started process: an anyio Process, or a ForkedProcess."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int | None: ...

    def send_signal(self, sig: signal.Signals) -> None: ...


Launch = Callable[[], Awaitable[Running]]


class Child:
    def __init__(
        self,
        state: ChildState,
        argv: list[str],
        env: dict[str, str],
        on_change: Callable[[], None],
        *,
        stop_grace: float = STOP_GRACE,
        launch: Launch | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        """argv/env start a new process (inheriting pass_fds); launch, when given, starts it
        some other way (the forkserver) and may raise OSError or LaunchError."""
        self.state = state
        self._pass_fds = pass_fds
        self._launch = launch
        self._argv = argv
        self._env = env
        self._on_change = on_change
        self._stop_grace = stop_grace
        self._stopping = anyio.Event()
        self._done = anyio.Event()
        self._started = False
        self._proc: Running | None = None
        self._restart_asked = False

    @property
    def name(self) -> str:
        return self.state.name

    async def run(self) -> None:
        """Keep the process running until stop() is called."""
        self._started = True
        delay = BACKOFF_MIN
        try:
            while not self._stopping.is_set():
                started = time.monotonic()
                await self._run_once()
                if self._stopping.is_set():
                    break
                if time.monotonic() - started >= STABLE_AFTER:
                    delay = BACKOFF_MIN
                if self._restart_asked:  # restart(): at once, not a crash
                    self._restart_asked = False
                    log.info("%s restarting (asked)", self.name)
                    self.state.restarts += 1
                    continue
                log.warning(
                    "%s exited (status %s); restarting in %.1fs",
                    self.name,
                    self.state.last_exit,
                    delay,
                )
                self._set(state="backoff", pid=0, start_ticks=0)
                # Sleep the backoff, but wake at once if we are told to stop.
                with anyio.move_on_after(delay):
                    await self._stopping.wait()
                delay = min(delay * 2, BACKOFF_MAX)
                if not self._stopping.is_set():
                    self.state.restarts += 1
        finally:
            self._set(state="stopped", pid=0, start_ticks=0)
            self._done.set()

    def signal(self, sig: signal.Signals) -> bool:
        """Send a signal to the running process (nats-server: SIGHUP reloads its config);
        False when it is not running."""
        if self._proc is None or self._proc.returncode is not None:
            return False
        _signal(self._proc, sig)
        return True

    def restart(self) -> bool:
        """Stop the running process and start it again at once (no backoff)."""
        if self._proc is None or self._proc.returncode is not None:
            return False
        self._restart_asked = True
        _signal(self._proc, signal.SIGTERM)
        return True

    async def stop(self) -> None:
        """Ask the process to stop (SIGTERM, SIGKILL after the grace) and wait until it has."""
        self._stopping.set()
        if not self._started:  # run() never began: nothing to wait for
            self.state.state = "stopped"
            return
        # run() bounds its own wait (grace + SIGKILL); this outer bound only guards against a
        # process that survives SIGKILL (uninterruptible sleep), which we then leave behind.
        with anyio.move_on_after(self._stop_grace + 10):
            await self._done.wait()

    async def _start(self) -> Running:
        if self._launch is not None:
            return await self._launch()
        return await anyio.open_process(
            self._argv,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=None,  # inherit: the terminal, or berth.log when detached
            stderr=None,
            start_new_session=True,
            pass_fds=self._pass_fds,
        )

    async def _run_once(self) -> None:
        try:
            proc = await self._start()
        except Exception as exc:  # noqa: BLE001 - OSError, or the launcher's LaunchError
            log.error("%s: cannot start %s: %s", self.name, self._argv[0], exc)
            self.state.last_exit = None
            return
        self._proc = proc
        self._set(state="running", pid=proc.pid, start_ticks=start_ticks(proc.pid))
        log.info("%s started (pid %d)", self.name, proc.pid)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._stop_when_asked, proc)
                status = await proc.wait()
                tg.cancel_scope.cancel()
            self.state.last_exit = status
        finally:
            if proc.returncode is None:
                # Cancelled from outside (the supervisor is failing): never leave a child running
                # unsupervised and untracked; stop it the normal way, shielded from the cancel.
                with anyio.CancelScope(shield=True):
                    await self._terminate(proc)

    async def _terminate(self, proc: Running) -> None:
        _signal(proc, signal.SIGTERM)
        with anyio.move_on_after(self._stop_grace):
            await proc.wait()
            return
        _signal(proc, signal.SIGKILL)
        with anyio.move_on_after(5):
            await proc.wait()

    async def _stop_when_asked(self, proc: Running) -> None:
        await self._stopping.wait()
        self._set(state="stopping")
        _signal(proc, signal.SIGTERM)
        await anyio.sleep(self._stop_grace)
        log.warning("%s did not stop within %.0fs; sending SIGKILL", self.name, self._stop_grace)
        _signal(proc, signal.SIGKILL)

    def _set(self, **changes: object) -> None:
        for key, value in changes.items():
            setattr(self.state, key, value)
        self._on_change()


def _signal(proc: Running, sig: signal.Signals) -> None:
    if proc.returncode is not None:
        return
    try:
        proc.send_signal(sig)  # this pid only, never its process group
    except ProcessLookupError:
        pass
