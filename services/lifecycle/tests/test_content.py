"""Content store: verified, atomic, never a partial blob under its final name."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from berth_lifecycle.content import ContentStore, DigestMismatch


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_write_and_read(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    data = b"hello" * 1000
    digest = store.write_stream(io.BytesIO(data), expected=_digest(data))
    assert digest == _digest(data)
    assert store.read_bytes(digest) == data
    assert store.path(digest) == tmp_path / "blobs" / "sha256" / digest.split(":")[1]
    assert list((tmp_path / "ingest").iterdir()) == []
    # Writing it again is a no-op that leaves no temp file behind.
    assert store.write_bytes(data) == digest
    assert list((tmp_path / "ingest").iterdir()) == []


def test_mismatch_leaves_nothing(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    wrong = _digest(b"something else")
    with pytest.raises(DigestMismatch):
        store.write_bytes(b"data", expected=wrong)
    assert not store.exists(wrong)
    assert not store.exists(_digest(b"data"))
    assert list((tmp_path / "ingest").iterdir()) == []


def test_partial_write_is_never_visible(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    data = b"x" * (3 << 20)
    writer = store.writer(_digest(data))
    writer.write(data[: 1 << 20])
    # Mid-write: only a temp file in ingest/, nothing under blobs/.
    assert list(store.blob_dir.iterdir()) == []
    assert len(list(store.ingest_dir.iterdir())) == 1
    writer.abort()
    assert list(store.ingest_dir.iterdir()) == []

    class Broken(io.RawIOBase):
        def __init__(self) -> None:
            self.n = 0

        def read(self, size: int = -1) -> bytes:
            self.n += 1
            if self.n > 2:
                raise OSError("connection lost")
            return b"y" * 1000

    with pytest.raises(OSError, match="connection lost"):
        store.write_stream(Broken())  # type: ignore[arg-type]
    assert list(store.blob_dir.iterdir()) == []
    assert list(store.ingest_dir.iterdir()) == []


def test_leftover_ingest_is_cleaned_on_open(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    writer = store.writer()
    writer.write(b"half")
    # A crash here; the next open drops the leftover.
    ContentStore(tmp_path)
    assert list((tmp_path / "ingest").iterdir()) == []
    assert list(store.blob_dir.iterdir()) == []
