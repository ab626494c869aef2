"""TaskLogs: replaying (and following) a container's json-file log as LogBatch messages.

A rotated log (max-size / max-file) is read oldest file first (`<path>.N` … `<path>.1`, then
`<path>`); a follower moves on to the new file when the shim rotates, or starts over when it
truncates (max-file 1).

Pacing: NATS has no back-pressure, and a log is far bigger than any subscription's buffer (47 MB
of short lines are ~270 MB of LogBatches), so the replay waits for its reader. Every
CHECKPOINT_BATCHES-th batch goes out as a request (reply to this agent's inbox) and the reader
answers it once it has handed that batch's lines to its client; before sending the next
checkpoint the agent waits for the previous one's answer. At most two windows (~4 MiB) are in
flight, and a slow `docker logs` reader slows the replay instead of losing lines. While it waits,
the agent checks every LISTENER_PROBE_INTERVAL that the reader is still there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import anyio
from berth_common.gotime import parse_ns
from berth_contracts.agent import TaskLogs
from berth_contracts.codec import encode
from berth_contracts.streams import STDERR, STDOUT, LogBatch, LogLine
from berth_kit.logprobe import reader_present
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription
from nats.errors import TimeoutError as NatsTimeoutError

log = logging.getLogger(__name__)

BATCH_BYTES = 256 * 1024
CHECKPOINT_BATCHES = 8  # a paced window: 8 batches (~2 MiB)
FOLLOW_POLL = 0.1
LISTENER_PROBE_INTERVAL = 5.0  # while following an idle log: is the reader still there?
_STREAMS = {"stdout": STDOUT, "stderr": STDERR}


def parse_line(raw: bytes) -> LogLine | None:
    try:
        rec = json.loads(raw)
        return LogLine(
            stream=_STREAMS.get(rec.get("stream", "stdout"), STDOUT),
            data=str(rec.get("log", "")).encode(),
            time=str(rec.get("time", "")),
        )
    except (ValueError, AttributeError):
        return None


class _Filter:
    def __init__(self, cmd: TaskLogs) -> None:
        self.cmd = cmd

    def keep(self, line: LogLine) -> bool:
        if line.stream == STDOUT and not self.cmd.stdout:
            return False
        if line.stream == STDERR and not self.cmd.stderr:
            return False
        if self.cmd.since or self.cmd.until:
            ts = parse_ns(line.time) / 1e9
            if self.cmd.since and ts < self.cmd.since:
                return False
            if self.cmd.until and ts > self.cmd.until:
                return False
        return True


class _Batcher:
    def __init__(self, nc: NATS, subject: str) -> None:
        self.nc = nc
        self.subject = subject
        self.lines: list[LogLine] = []
        self.size = 0
        self.sent = 0  # batches with lines
        self.acks: Subscription | None = None  # the reader's answers to checkpoints
        self.unanswered = 0  # checkpoints sent and not answered yet (0 or 1 before a send)

    async def add(self, line: LogLine) -> None:
        self.lines.append(line)
        self.size += len(line.data) + 64
        if self.size >= BATCH_BYTES:
            await self.flush()

    async def listener_present(self) -> bool:
        return await reader_present(self.nc, self.subject)

    async def flush(self, end: bool = False, error: str = "") -> None:
        if not self.lines and not end:
            return
        batch = LogBatch(lines=self.lines, end=end, error=error)
        self.lines, self.size = [], 0
        if not batch.lines:
            await self.nc.publish(self.subject, encode(batch))
            return
        self.sent += 1
        if self.sent % CHECKPOINT_BATCHES:
            await self.nc.publish(self.subject, encode(batch))
            return
        await self._answered()  # the previous checkpoint: at most two windows in flight
        if self.acks is None:
            self.acks = await self.nc.subscribe(self.nc.new_inbox())
        await self.nc.publish(self.subject, encode(batch), reply=self.acks.subject)
        self.unanswered += 1

    async def _answered(self) -> None:
        """Wait until the reader answered every checkpoint sent (raises _ListenerGone)."""
        while self.unanswered and self.acks is not None:
            try:
                await self.acks.next_msg(timeout=LISTENER_PROBE_INTERVAL)
                self.unanswered -= 1
            except NatsTimeoutError:
                if not await self.listener_present():
                    raise _ListenerGone from None

    async def close(self) -> None:
        acks, self.acks = self.acks, None
        if acks is not None:
            with contextlib.suppress(Exception):
                await acks.unsubscribe()


def rotated_files(path: Path) -> list[Path]:
    """The rotated files of a log, oldest first."""
    found: list[Path] = []
    while (older := path.with_name(f"{path.name}.{len(found) + 1}")).exists():
        found.append(older)
    return found[::-1]


def _older_records(path: Path) -> Iterator[bytes]:
    for older in rotated_files(path):
        try:
            with older.open("rb") as f:
                yield from (raw for raw in f if raw.endswith(b"\n"))
        except FileNotFoundError:
            continue  # rotated away while we read


async def stream_logs(nc: NATS, cmd: TaskLogs, path: Path, is_running: Callable[[], bool]) -> None:
    """Send the log to cmd.stream_subject; with follow, keep going until the task has stopped."""
    out = _Batcher(nc, cmd.stream_subject)
    keep = _Filter(cmd).keep
    try:
        try:
            f = path.open("rb")
        except FileNotFoundError:
            await out.flush(end=True)
            return
        with f:
            # tail counts records of either stream, as dockerd's json-file reader does.
            if cmd.tail >= 0:
                records: deque[bytes] = deque(maxlen=cmd.tail) if cmd.tail > 0 else deque(maxlen=0)
                records.extend(_older_records(path))
                for raw in f:
                    if raw.endswith(b"\n"):
                        records.append(raw)
                    else:
                        f.seek(-len(raw), 1)
                        break
                source: list[bytes] = list(records)
            else:
                source = []
            if cmd.tail < 0:
                for raw in _older_records(path):
                    line = parse_line(raw)
                    if line is not None and keep(line):
                        await out.add(line)
                partial = b""
                for raw in f:
                    if not raw.endswith(b"\n"):
                        partial = raw
                        break
                    line = parse_line(raw)
                    if line is not None and keep(line):
                        await out.add(line)
                if partial:
                    f.seek(-len(partial), 1)
            else:
                for raw in source:
                    line = parse_line(raw)
                    if line is not None and keep(line):
                        await out.add(line)
            await out.flush()
            if cmd.follow:
                await _follow(f, path, out, keep, is_running)
        await out.flush(end=True)
    except _ListenerGone:
        log.info("log reader of %s went away", cmd.container_id)
        return
    except Exception as exc:  # noqa: BLE001 - the reader must learn why its stream ended
        log.exception("log stream for %s failed", cmd.container_id)
        await out.flush(end=True, error=str(exc))
    finally:
        await out.close()
    await nc.flush(timeout=5)


def _replaced(f: BinaryIO, path: Path) -> bool:
    """Whether the shim rotated the log away from f (a new file has its name)."""
    try:
        return path.stat().st_ino != os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False  # between two renames: the new file comes


async def _follow(
    first: BinaryIO,
    path: Path,
    out: _Batcher,
    keep: Callable[[LogLine], bool],
    is_running: Callable[[], bool],
) -> None:
    f = first  # the caller closes the first file; the ones opened after it are closed here
    pending = b""
    idle_since = time.monotonic()
    try:
        while True:
            running = is_running()  # sampled before reading, so the last read sees every record
            chunk = f.read(BATCH_BYTES)
            if not chunk and os.fstat(f.fileno()).st_size < f.tell():
                f.seek(0)  # truncated (max-file 1): the records start over
                pending = b""
                continue
            if not chunk and _replaced(f, path):
                new = path.open("rb")  # f was drained: on to the file that has its name now
                if f is not first:
                    f.close()
                f, pending = new, b""
                continue
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    line = parse_line(raw)
                    if line is not None and keep(line):
                        await out.add(line)
                await out.flush()
                continue
            if not running:
                return
            if time.monotonic() - idle_since > LISTENER_PROBE_INTERVAL:
                idle_since = time.monotonic()
                if not await out.listener_present():
                    raise _ListenerGone
            await anyio.sleep(FOLLOW_POLL)
    finally:
        if f is not first:
            f.close()


class _ListenerGone(Exception):
    """Nobody subscribes to the stream subject any more (the client went away)."""
