"""A build's context body, written to disk as it arrives and readable while it grows.

The docker CLI tars the context while it sends it. Indexing the tar (headers, moby's tarsums)
reads the body through a `SpoolReader` in a worker thread at the same time, instead of after the
last byte: the first step starts about when the upload ends.
"""

from __future__ import annotations

import os
import threading
from types import TracebackType

# Longer than the receiver's own stall timeout, which closes the spool first.
STALL_TIMEOUT = 330.0


class SpoolFailed(Exception):
    """The body did not arrive whole; the receiving side reports why."""


class Spool:
    """One body: appended to by the receiver (`fd`, then `wrote`, then `close`), read by one
    reader thread, which waits for the bytes it asks for."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._cond = threading.Condition()
        self._size = 0
        self._state = "open"  # then "done" or "failed"

    def wrote(self, n: int) -> None:
        with self._cond:
            self._size += n
            self._cond.notify_all()

    def close(self, failed: bool) -> None:
        """The body ends (whole, or `failed`); closing twice keeps the first outcome."""
        with self._cond:
            if self._state == "open":
                os.close(self.fd)
                self._state = "failed" if failed else "done"
            self._cond.notify_all()

    def available(self, upto: int) -> int:
        """Block until `upto` bytes are on disk or the body has ended; the bytes on disk."""
        with self._cond:
            ended = self._cond.wait_for(
                lambda: self._size >= upto or self._state != "open", STALL_TIMEOUT
            )
            if not ended:
                raise SpoolFailed("the build context stopped arriving")
            if self._state == "failed":
                raise SpoolFailed("the build context did not arrive whole")
            return self._size

    def complete(self) -> None:
        """Block until the whole body is on disk."""
        self.available(1 << 62)

    def reader(self) -> SpoolReader:
        return SpoolReader(self)


class SpoolReader:
    """read(n) over the growing body, as over a finished file: n bytes unless the body ends."""

    def __init__(self, spool: Spool) -> None:
        self._spool = spool
        self._fd = os.open(spool.path, os.O_RDONLY | os.O_CLOEXEC)
        self._pos = 0

    def peek(self, n: int) -> bytes:
        size = self._spool.available(self._pos + n)
        return os.pread(self._fd, max(min(n, size - self._pos), 0), self._pos)

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            self._spool.complete()
            n = self._spool.available(0) - self._pos
        data = self.peek(n)
        self._pos += len(data)
        return data

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> SpoolReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
