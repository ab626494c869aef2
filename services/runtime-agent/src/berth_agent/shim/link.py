"""The shim's end of its agent connection: a listening unix socket, one agent at a time. Stdlib only.

A new connection (a restarted agent) replaces the old one and is greeted with a hello frame.
Frames to a missing agent are dropped (the log has the output), except a few spans kept for the
next one. Writes never block the shim: what the socket does not take waits in outbuf, and past
OUTBUF_SOFT_LIMIT the gate stops reading the container's pipes until the agent catches up.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import time

from berth_agent.shim import proto
from berth_agent.shim.gate import OUTBUF_SOFT_LIMIT, OutputGate

# typing costs memory in every shim; annotations are strings here, so import it for checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from berth_agent.shim.frames import Hello

READ_SIZE = 64 * 1024
SPANS_KEPT = 64  # spans waiting for an agent to connect


class AgentLink:
    def __init__(
        self,
        sel: selectors.BaseSelector,
        gate: OutputGate,
        on_frame: Callable[[dict[str, Any]], None],
        hello: Callable[[], Hello],
    ) -> None:
        self._sel = sel
        self._gate = gate
        self._on_frame = on_frame
        self._hello = hello
        self.listener: socket.socket | None = None
        self.conn: socket.socket | None = None
        self._inbuf = bytearray()
        self._outbuf = bytearray()
        self._pending_spans: list[Mapping[str, Any]] = []

    def listen(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):  # makedirs(exist_ok) raises inside: memory (4b)
            os.makedirs(directory, exist_ok=True)
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lst.bind(path)
        os.chmod(path, 0o600)
        lst.listen(4)
        lst.setblocking(False)
        self.listener = lst
        self._sel.register(lst, selectors.EVENT_READ, self.on_accept)

    def on_accept(self, mask: int) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.drop()
        conn.setblocking(False)
        self.conn = conn
        self._inbuf.clear()
        self._outbuf.clear()
        self._sel.register(conn, selectors.EVENT_READ, self.on_conn)
        self.send(self._hello())
        spans, self._pending_spans = self._pending_spans, []
        for span in spans:
            self.send(span)

    def drop(self) -> None:
        if self.conn is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(self.conn)
        with contextlib.suppress(OSError):
            self.conn.close()
        self.conn = None
        self._outbuf.clear()
        self._gate.reset()

    def send(self, frame: Mapping[str, Any]) -> None:
        if self.conn is None:  # no agent: output is dropped (the log has it), spans kept a while
            if frame.get("t") == "span" and len(self._pending_spans) < SPANS_KEPT:
                self._pending_spans.append(frame)
            return
        self._outbuf += proto.encode(frame)
        self.flush()

    def flush(self) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            while self._outbuf:
                n = conn.send(self._outbuf)
                del self._outbuf[:n]
        except BlockingIOError:
            pass
        except OSError:
            self.drop()
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._outbuf else 0)
        self._sel.modify(conn, events, self.on_conn)
        # Past the limit, output waits in the pipes (the processes block) until the agent reads.
        self._gate.set_backlog(len(self._outbuf) > OUTBUF_SOFT_LIMIT)

    def flush_blocking(self, timeout: float = 2.0) -> None:
        """Before the shim exits: give the agent its last frames."""
        deadline = time.monotonic() + timeout
        while self.conn is not None and self._outbuf and time.monotonic() < deadline:
            self.flush()
            if self._outbuf:
                time.sleep(0.01)

    def on_conn(self, mask: int) -> None:
        if mask & selectors.EVENT_READ:
            self._read()
        if mask & selectors.EVENT_WRITE:
            self.flush()

    def _read(self) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            data = conn.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop()
            return
        self._inbuf += data
        if len(self._inbuf) > proto.MAX_LINE:
            self.drop()
            return
        while self.conn is conn:
            nl = self._inbuf.find(b"\n")
            if nl < 0:
                break
            line = bytes(self._inbuf[:nl])
            del self._inbuf[: nl + 1]
            try:
                frame = proto.decode(line)
            except ValueError:
                continue
            self._on_frame(frame)

    def close(self, path: str) -> None:
        if self.listener is not None:
            with contextlib.suppress(OSError):
                self.listener.close()
            with contextlib.suppress(OSError):
                os.unlink(path)
        self.drop()
