"""json-file rotation (max-size / max-file) written by the shim, read back by TaskLogs."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import msgspec
from berth_agent import logs
from berth_agent.shim.log import JsonFileLog, NullLog
from berth_contracts.agent import TaskLogs
from berth_contracts.codec import decode
from berth_contracts.streams import LogBatch
from berth_kit.nats_conn import connect
from nats.aio.msg import Msg


def _records(path: Path) -> list[str]:
    return [json.loads(line)["log"] for line in path.read_text().splitlines()]


def test_rotates_when_full_and_keeps_max_files(tmp_path: Path) -> None:
    path = tmp_path / "c" / "c-json.log"
    log = JsonFileLog(str(path), max_size=200, max_files=3)
    # ~75 bytes a record: 3 per file, also when the output comes in one read.
    log.write(1, b"".join(f"line {i:02d}\n".encode() for i in range(8)))
    for i in range(8, 12):
        log.write(1, f"line {i:02d}\n".encode())
    log.close()
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "c-json.log", "c-json.log.1", "c-json.log.2"
    ]  # fmt: skip
    kept = [r for p in (*logs.rotated_files(path), path) for r in _records(p)]
    assert kept == [f"line {i:02d}\n" for i in range(3, 12)]  # the oldest file was dropped


def test_one_file_is_truncated_when_full(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    log = JsonFileLog(str(path), max_size=200, max_files=1)
    for i in range(4):
        log.write(2, f"line {i:02d}\n".encode())
    log.close()
    assert _records(path) == ["line 03\n"]
    assert list(tmp_path.iterdir()) == [path]


def test_null_log_keeps_nothing(tmp_path: Path) -> None:
    log = NullLog()
    log.write(1, b"x\n")
    log.close()
    assert list(tmp_path.iterdir()) == []


def test_logs_read_and_follow_across_rotations(nats_url: str, tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    writer = JsonFileLog(str(path), max_size=200, max_files=3)
    for i in range(7):
        writer.write(1, f"old {i}\n".encode())

    async def collect(cmd: TaskLogs) -> list[bytes]:
        nc = await connect(nats_url, "rotation-test")
        got: list[LogBatch] = []
        done = anyio.Event()

        async def on_batch(msg: Msg) -> None:
            got.append(decode(msg.data, LogBatch))
            if got[-1].end:
                done.set()

        running = [True]
        try:
            inbox = nc.new_inbox()
            await nc.subscribe(inbox, cb=on_batch)
            cmd = msgspec.structs.replace(cmd, stream_subject=inbox)
            async with anyio.create_task_group() as tg:

                async def write_more() -> None:
                    await anyio.sleep(0.3)  # the follower is past the replay
                    for i in range(7):
                        writer.write(1, f"new {i}\n".encode())  # two rotations meanwhile
                        await anyio.sleep(0.05)
                    await anyio.sleep(0.3)
                    running[0] = False

                if cmd.follow:
                    tg.start_soon(write_more)
                with anyio.fail_after(20):
                    await logs.stream_logs(nc, cmd, path, lambda: running[0])
                    await done.wait()
        finally:
            await nc.close()
        return [ln.data for b in got for ln in b.lines]

    replay = anyio.run(collect, TaskLogs(container_id="c", stream_subject=""))
    assert replay == [f"old {i}\n".encode() for i in range(7)]
    tail = anyio.run(collect, TaskLogs(container_id="c", stream_subject="", tail=2))
    assert tail == [b"old 5\n", b"old 6\n"]
    followed = anyio.run(collect, TaskLogs(container_id="c", stream_subject="", follow=True))
    assert followed == [f"old {i}\n".encode() for i in range(7)] + [
        f"new {i}\n".encode() for i in range(7)
    ]
    writer.close()
