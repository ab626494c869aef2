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

    offset: how many bytes of this run's output (both streams) came before this chunk. Readers
    acknowledge what they delivered with StdioAck; a jump in offsets is output lost upstream
    (while no agent was connected to the shim).
    """

    stream: int
    data: bytes
    eof: bool = False
    offset: int = 0


class StdioAck(msgspec.Struct, frozen=True):
    """A reader's credit for one output stream, on subjects.stdio_ack(id) (flow control).

    The agent stops the container's output (it stops reading its pipes, which then block the
    process, as Docker's do) while it is more than a window ahead of the slowest reader that
    acknowledges. offset -1 registers a reader at the current position; readers repeat their
    ack while they stay (a reader not heard from for a while is forgotten) and send done=True
    when they leave.
    """

    reader: str
    offset: int
    done: bool = False


class StdinChunk(msgspec.Struct, frozen=True):
    """Input for a container's main process on subjects.stdio_in(id); eof closes its stdin."""

    data: bytes
    eof: bool = False


class LogLine(msgspec.Struct, frozen=True, omit_defaults=True):
    stream: int
    data: bytes
    time: str  # RFC3339Nano, as in Docker's json-file log
    # Details (`?details=1`): a service's log names each line's node, service and task.
    attrs: dict[str, str] = msgspec.field(default_factory=dict)


class LogBatch(msgspec.Struct, frozen=True):
    """Log records sent to the stream subject a ContainerLogs/TaskLogs request named.

    end=True marks the last batch (with follow: once the container has stopped).
    error, if set, ends the stream with that message.
    """

    lines: list[LogLine]
    end: bool = False
    error: str = ""
