"""Which output pipes the shim reads: back-pressure from the agent. Stdlib only.

Output is never dropped while an agent is connected. Instead the shim stops reading a
process's pipes (the process then blocks in write(2) once the pipe is full, as with Docker's
FIFOs) while
* the agent is more than OUTBUF_SOFT_LIMIT behind on the shim's socket (backlog), or
* the agent paused that stream ("opause"): its readers are a window behind (agent outflow.py).
A pause no longer holds once the process has exited: what is left in its pipes is bounded, and
its exit must not wait for a client that stopped reading. With no agent connected the pipes are
read and live output dropped (the log has it): a container never depends on the agent.

Streams are keyed "" for the container's init and by exec id for execs. Each stream counts the
bytes it read (its offset), which go with the output so readers can see a gap.
"""

from __future__ import annotations

import contextlib
import os
import selectors

from berth_agent.shim.stdio import read_output

OUTBUF_SOFT_LIMIT = 1024 * 1024  # beyond this, the shim waits for the agent to read


class OutputGate:
    def __init__(self, sel: selectors.BaseSelector) -> None:
        self._sel = sel
        self._fds: dict[int, tuple[str, object]] = {}  # fd -> (stream key, selector tag)
        self._exited: set[str] = set()
        self._held: set[str] = set()
        self._offsets: dict[str, int] = {}
        self.backlog = False

    def add(self, fd: int, key: str, tag: object) -> None:
        self._fds[fd] = (key, tag)
        self._apply(fd)

    def remove(self, fd: int) -> None:
        """The pipe is at EOF or given up: stop watching it (the caller closes it)."""
        self._fds.pop(fd, None)
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(fd)

    def read(self, pipes: dict[int, int], fd: int) -> tuple[int, bytes] | None:
        """One chunk of a watched pipe of `pipes` (fd -> stream): (stream, data), or None when
        there is nothing to read; at its end the pipe is unwatched, closed and dropped."""
        stream = pipes.get(fd)
        if stream is None:  # closed earlier in this same batch of events
            return None
        data = read_output(fd)
        if not data:
            if data is not None:
                self.remove(fd)
                os.close(fd)
                del pipes[fd]
            return None
        return stream, data

    def advance(self, key: str, n: int) -> int:
        """Count n bytes read from stream key; the offset they start at."""
        offset = self._offsets.get(key, 0)
        self._offsets[key] = offset + n
        return offset

    def hold(self, key: str, on: bool) -> None:
        if on:
            self._held.add(key)
        else:
            self._held.discard(key)
        self._refresh()

    def exited(self, key: str) -> None:
        self._exited.add(key)
        self._refresh()

    def forget(self, key: str) -> None:
        self._exited.discard(key)
        self._held.discard(key)
        self._offsets.pop(key, None)

    def set_backlog(self, on: bool) -> None:
        if on != self.backlog:
            self.backlog = on
            self._refresh()

    def reset(self) -> None:
        """A new agent (or none): pauses were the old agent's."""
        self._held.clear()
        self.backlog = False
        self._refresh()

    def _blocked(self, key: str) -> bool:
        return self.backlog or (key in self._held and key not in self._exited)

    def _refresh(self) -> None:
        for fd in list(self._fds):
            self._apply(fd)

    def _apply(self, fd: int) -> None:
        key, tag = self._fds[fd]
        watched = fd in self._sel.get_map()
        if self._blocked(key):
            if watched:
                self._sel.unregister(fd)
        elif not watched:
            self._sel.register(fd, selectors.EVENT_READ, tag)
