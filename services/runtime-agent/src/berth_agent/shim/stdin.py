"""A process's stdin as the shim feeds it: never blocking the shim's loop. Stdlib only."""

from __future__ import annotations

import contextlib
import os
import selectors


class StdinWriter:
    """Bytes wait here until the process's stdin takes them (the fd is watched for writability
    meanwhile); after close() the fd is closed once what was written before is delivered."""

    __slots__ = ("_buf", "_closing", "_sel", "fd")

    def __init__(self, sel: selectors.BaseSelector, fd: int) -> None:
        self._sel = sel
        self.fd = fd  # -1: no stdin (not opened, or closed)
        self._buf = bytearray()
        self._closing = False

    def write(self, data: bytes) -> None:
        if self.fd < 0 or self._closing:
            return
        self._buf += data
        self.flush()

    def close(self) -> None:
        if self.fd < 0:
            return
        self._closing = True
        self.flush()

    def flush(self, mask: int = 0) -> None:
        fd = self.fd
        if fd < 0:
            return
        try:
            while self._buf:
                del self._buf[: os.write(fd, self._buf)]
        except BlockingIOError:
            pass
        except OSError:  # the process closed its stdin: what is left has nowhere to go
            self._buf.clear()
            self._closing = True
        registered = fd in self._sel.get_map()
        if self._buf and not registered:
            self._sel.register(fd, selectors.EVENT_WRITE, self.flush)
        elif not self._buf:
            if registered:
                self._sel.unregister(fd)
            if self._closing:
                self.discard()

    def discard(self) -> None:
        """The process is gone: drop what is buffered and close the fd."""
        if self.fd < 0:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(self.fd)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1
        self._buf.clear()
