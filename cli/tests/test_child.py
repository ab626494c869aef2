"""The restart/stop policy of one supervised process, driven directly (short timings)."""

from __future__ import annotations

import os
import sys
import time

import anyio
import pytest
from berth_cli import child as child_mod
from berth_cli import procs
from berth_cli.child import Child
from berth_cli.state import ChildState

pytestmark = pytest.mark.timeout(60)

PY = sys.executable


async def poll(pred, limit: float) -> None:  # type: ignore[no-untyped-def]
    """Wait until pred() holds; state changes come from another task, so polling is simplest."""
    with anyio.fail_after(limit):
        while not pred():  # noqa: ASYNC110
            await anyio.sleep(0.01)


def test_crashing_child_is_restarted_with_growing_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(child_mod, "BACKOFF_MIN", 0.05)
    monkeypatch.setattr(child_mod, "BACKOFF_MAX", 0.2)
    state = ChildState(name="crasher")
    starts: list[float] = []

    def on_change() -> None:
        if state.state == "running":
            starts.append(time.monotonic())

    async def main() -> None:
        c = Child(state, [PY, "-c", "raise SystemExit(3)"], dict(os.environ), on_change)
        async with anyio.create_task_group() as tg:
            tg.start_soon(c.run)
            await poll(lambda: len(starts) >= 5, 30)
            await c.stop()

    anyio.run(main)
    assert state.last_exit in (3, -15)  # -15: stopped while running
    assert state.restarts >= 4
    assert state.state == "stopped" and state.pid == 0
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    # 0.05, 0.1, 0.2, 0.2 (capped) plus process start-up time.
    assert gaps[0] >= 0.05 and gaps[2] >= 0.2 and gaps[3] >= 0.2


def test_stop_escalates_to_sigkill(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = ChildState(name="stubborn")
    ready = tmp_path / "ready"
    code = (
        "import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    )

    async def main() -> float:
        c = Child(state, [PY, "-c", code], dict(os.environ), lambda: None, stop_grace=0.5)
        async with anyio.create_task_group() as tg:
            tg.start_soon(c.run)
            await poll(lambda: ready.exists(), 20)
            pid = state.pid
            assert os.getsid(pid) == pid  # its own session
            t0 = time.monotonic()
            await c.stop()
            assert not procs.alive(pid)
            return time.monotonic() - t0

    took = anyio.run(main)
    assert 0.5 <= took < 5
    assert state.last_exit == -9
    assert state.restarts == 0


def test_stop_is_quick_for_a_well_behaved_child() -> None:
    state = ChildState(name="polite")

    async def main() -> float:
        c = Child(state, [PY, "-c", "import time; time.sleep(60)"], dict(os.environ), lambda: None)
        async with anyio.create_task_group() as tg:
            tg.start_soon(c.run)
            await poll(lambda: state.state == "running", 20)
            t0 = time.monotonic()
            await c.stop()
            return time.monotonic() - t0

    assert anyio.run(main) < 3
    assert state.last_exit == -15


def test_stop_before_run_returns_at_once() -> None:
    state = ChildState(name="never")

    async def main() -> None:
        c = Child(state, [PY, "-c", "pass"], dict(os.environ), lambda: None)
        with anyio.fail_after(2):
            await c.stop()
            await c.run()  # told to stop already: returns without starting anything

    anyio.run(main)
    assert state.state == "stopped" and state.pid == 0


def test_missing_executable_is_retried_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(child_mod, "BACKOFF_MIN", 0.05)
    state = ChildState(name="ghost")

    async def main() -> None:
        c = Child(state, ["/nonexistent/binary"], dict(os.environ), lambda: None)
        async with anyio.create_task_group() as tg:
            tg.start_soon(c.run)
            await poll(lambda: state.restarts >= 2, 10)
            await c.stop()

    anyio.run(main)
    assert state.state == "stopped"


def test_cancelled_supervision_still_stops_the_process() -> None:
    """If the supervisor itself fails, its children are stopped, not left running untracked."""
    state = ChildState(name="orphan-candidate")
    pids: list[int] = []

    async def main() -> None:
        c = Child(state, [PY, "-c", "import time; time.sleep(60)"], dict(os.environ), lambda: None)
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(c.run)
                await poll(lambda: state.state == "running", 20)
                pids.append(state.pid)
                tg.cancel_scope.cancel()

    anyio.run(main)
    assert pids and not procs.alive(pids[0])
