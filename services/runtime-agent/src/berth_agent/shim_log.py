"""Docker's json-file log format, written by the shim. Stdlib only.

Each record is `{"log":"<text>","stream":"stdout|stderr","time":"<RFC3339Nano>"}` on one line.
Like Docker's copier, output is cut at newlines and lines longer than 16 KiB are cut into
16 KiB partial records (no trailing newline); a partial line left at EOF is written as is.
"""

from __future__ import annotations

import json
import os

from berth_agent.timefmt import rfc3339nano

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


class JsonFileLog:
    """Appends records for stdout/stderr, keeping one partial-line buffer per stream."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._pending: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}

    def write(self, stream: int, data: bytes) -> None:
        buf = self._pending[stream]
        buf += data
        out = bytearray()
        ts = rfc3339nano()
        while True:
            nl = buf.find(b"\n", 0, LINE_MAX)
            if nl >= 0:
                out += record(bytes(buf[: nl + 1]), stream, ts)
                del buf[: nl + 1]
            elif len(buf) >= LINE_MAX:
                out += record(bytes(buf[:LINE_MAX]), stream, ts)
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
                out += record(bytes(buf), stream, ts)
                buf.clear()
        self._write(out)

    def _write(self, out: bytearray) -> None:
        view = memoryview(out)
        while view:
            # Log writes are best effort: a full disk must not kill the container's shim.
            try:
                n = os.write(self._fd, view)
            except OSError:
                return
            view = view[n:]

    def close(self) -> None:
        self.flush_partial()
        os.close(self._fd)
