"""Shared helpers for lifecycle tests."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable

import pytest


class TarMaker:
    """Builds tars entry by entry, including entries no sane tool would write."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _add(self, info: tarfile.TarInfo, data: bytes | None = None) -> TarMaker:
        info.mtime = 1_600_000_000
        if data is not None:
            info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return self

    def file(self, name: str, data: bytes = b"x", mode: int = 0o644, uid: int = 0, gid: int = 0,
             xattrs: dict[str, str] | None = None) -> TarMaker:
        info = tarfile.TarInfo(name)
        info.mode, info.uid, info.gid = mode, uid, gid
        if xattrs:
            info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
        return self._add(info, data)

    def dir(self, name: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> TarMaker:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, gid
        return self._add(info)

    def symlink(self, name: str, target: str) -> TarMaker:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = tarfile.SYMTYPE, target
        return self._add(info)

    def hardlink(self, name: str, target: str) -> TarMaker:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = tarfile.LNKTYPE, target
        return self._add(info)

    def device(self, name: str, kind: bytes, major: int, minor: int) -> TarMaker:
        info = tarfile.TarInfo(name)
        info.type, info.devmajor, info.devminor, info.mode = kind, major, minor, 0o600
        return self._add(info)

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


@pytest.fixture
def tar_maker() -> Callable[[], TarMaker]:
    return TarMaker
