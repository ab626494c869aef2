"""The context body read while it arrives: the same index as from the whole file, and a body
that stops half way fails the reader instead of leaving it waiting."""

from __future__ import annotations

import io
import tarfile
import threading
import time
from pathlib import Path

import pytest
from berth_builder.contextindex import index_archive
from berth_builder.spool import Spool, SpoolFailed


def make_tar(entries: list[tuple[str, str, bytes]]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE if kind == "dir" else tarfile.REGTYPE
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf


def _write_slowly(spool: Spool, data: bytes, chunk: int, fail_after: int = -1) -> None:
    for n, start in enumerate(range(0, len(data), chunk)):
        if n == fail_after:
            spool.close(failed=True)
            return
        piece = data[start : start + chunk]
        with open(spool.fd, "wb", closefd=False) as out:
            out.write(piece)
        spool.wrote(len(piece))
        time.sleep(0.002)
    spool.close(failed=False)


def test_the_index_read_while_the_body_arrives_is_the_whole_files(tmp_path: Path) -> None:
    entries = [("Dockerfile", "file", b"FROM scratch\n"), ("d", "dir", b"")]
    entries += [(f"d/f{i}", "file", bytes([i]) * (100 + 37 * i)) for i in range(60)]
    data = make_tar(entries).getvalue()
    (tmp_path / "whole.tar").write_bytes(data)
    spool = Spool(str(tmp_path / "body"))
    writer = threading.Thread(target=_write_slowly, args=(spool, data, 777))
    writer.start()
    with spool.reader() as body:
        assert body.peek(5) == body.peek(5) == data[:5]  # peeking does not move on
        growing = index_archive(spool.path, stream=body)
        spool.complete()
    writer.join()
    whole = index_archive(str(tmp_path / "whole.tar"))
    assert growing.sums == whole.sums and len(growing.sums) == 62
    assert growing.read("d/f59") == bytes([59]) * (100 + 37 * 59)


def test_a_body_that_stops_half_way_fails_the_reader(tmp_path: Path) -> None:
    data = make_tar([(f"f{i}", "file", b"x" * 5000) for i in range(20)]).getvalue()
    spool = Spool(str(tmp_path / "body"))
    writer = threading.Thread(target=_write_slowly, args=(spool, data, 4096, 5))
    writer.start()
    with spool.reader() as body, pytest.raises(SpoolFailed):
        body.read()
    writer.join()
    spool.close(failed=False)  # a second close keeps the first outcome
    with pytest.raises(SpoolFailed):
        spool.complete()


def test_reads_end_at_the_end_of_the_body(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "body"))
    _write_slowly(spool, b"FROM scratch\n", 4)
    with spool.reader() as body:
        assert body.peek(512) == b"FROM scratch\n"
        assert body.read(4) == b"FROM"
        assert body.read() == b" scratch\n"
        assert body.read(10) == b""
