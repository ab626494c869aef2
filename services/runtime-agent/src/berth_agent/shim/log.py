"""Docker's json-file log format, written by the shim. Stdlib only.

Each record is `{"log":"<text>","stream":"stdout|stderr","time":"<RFC3339Nano>"}` on one line.
Like Docker's copier, output is cut at newlines and lines longer than 16 KiB are cut into
16 KiB partial records (no trailing newline); a partial line left at EOF is written as is.

Rotation (max-size / max-file) as moby's loggerutils.LogFile: before a write, a file that has
reached max_size is renamed to `<path>.1` (older ones shift up to `<path>.<max_files-1>`, the
oldest dropped) and a new one begun; with max_files 1 the file is truncated instead. Rotated
files stay uncompressed. The `none` driver keeps nothing (NullLog).
"""

from __future__ import annotations

import json
import os

from berth_common.gotime import rfc3339nano

LINE_MAX = 16 * 1024
STREAM_NAMES = {1: "stdout", 2: "stderr"}


def record(data: bytes, stream: int, ts: str) -> bytes:
    text = data.decode("utf-8", errors="replace")
    return (
        json.dumps(
            {"log": text, "stream": STREAM_NAMES[stream], "time": ts},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        + b"\n"
    )


def rotated_path(path: str, n: int) -> str:
    return f"{path}.{n}"


class NullLog:
    """The `none` logging driver: the output is streamed to attached clients, never kept."""

    def write(self, stream: int, data: bytes) -> None:
        pass

    def flush_partial(self) -> None:
        pass

    def close(self) -> None:
        pass


class JsonFileLog:
    """Appends records for stdout/stderr, keeping one partial-line buffer per stream."""

    def __init__(self, path: str, max_size: int = 0, max_files: int = 1) -> None:
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):  # makedirs(exist_ok) raises inside: memory (4b)
            os.makedirs(directory, exist_ok=True)
        self._path = path
        self._max_size = max_size
        self._max_files = max(max_files, 1)
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        self._pending: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}

    def _open(self) -> int:
        return os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def _rotate(self) -> None:
        if self._max_files == 1:
            os.ftruncate(self._fd, 0)
        else:
            for n in range(self._max_files - 1, 1, -1):
                older = rotated_path(self._path, n - 1)
                if os.path.exists(older):
                    os.replace(older, rotated_path(self._path, n))
            os.replace(self._path, rotated_path(self._path, 1))
            os.close(self._fd)
            self._fd = self._open()
        self._size = 0

    def write(self, stream: int, data: bytes) -> None:
        buf = self._pending[stream]
        buf += data
        out = bytearray()
        ts = rfc3339nano()
        while True:
            nl = buf.find(b"\n", 0, LINE_MAX)
            if nl >= 0:
                self._add(out, record(bytes(buf[: nl + 1]), stream, ts))
                del buf[: nl + 1]
            elif len(buf) >= LINE_MAX:
                self._add(out, record(bytes(buf[:LINE_MAX]), stream, ts))
                del buf[:LINE_MAX]
            else:
                break
        self._write(out)

    def flush_partial(self) -> None:
        """Write what is left of unterminated lines (at EOF of the process's output)."""
        out = bytearray()
        ts = rfc3339nano()
        for stream, buf in self._pending.items():
            if buf:
                self._add(out, record(bytes(buf), stream, ts))
                buf.clear()
        self._write(out)

    def _add(self, out: bytearray, rec: bytes) -> None:
        """Queue one record; a file full before it is written is rotated first (per record,
        as moby checks the capacity before each entry)."""
        if self._max_size and self._size + len(out) >= self._max_size:
            self._write(out)
            out.clear()
            try:
                self._rotate()
            except OSError:
                pass  # best effort, as every log write: keep appending to what is open
        out += rec

    def _write(self, out: bytearray) -> None:
        view = memoryview(out)
        while view:
            # Log writes are best effort: a full disk must not kill the container's shim.
            try:
                n = os.write(self._fd, view)
            except OSError:
                return
            self._size += n
            view = view[n:]

    def close(self) -> None:
        self.flush_partial()
        os.close(self._fd)
