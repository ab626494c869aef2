"""Messages on stream subjects: container stdio and log replay."""

from __future__ import annotations

import msgspec

STDIN = 0
STDOUT = 1
STDERR = 2


class StdioChunk(msgspec.Struct, frozen=True):
    """Output of a container's main process on subjects.stdio_out(id).

    With a TTY there is one stream (stdout). The last chunk for one run of the process has
    eof=True and is published after every byte of output.
    """

    stream: int
    data: bytes
    eof: bool = False


class StdinChunk(msgspec.Struct, frozen=True):
    """Input for a container's main process on subjects.stdio_in(id); eof closes its stdin."""

    data: bytes
    eof: bool = False


class LogLine(msgspec.Struct, frozen=True):
    stream: int
    data: bytes
    time: str  # RFC3339Nano, as in Docker's json-file log


class LogBatch(msgspec.Struct, frozen=True):
    """Log records sent to the stream subject a ContainerLogs/TaskLogs request named.

    end=True marks the last batch (with follow: once the container has stopped).
    error, if set, ends the stream with that message.
    """

    lines: list[LogLine]
    end: bool = False
    error: str = ""
