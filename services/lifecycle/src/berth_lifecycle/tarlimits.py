"""Limits on the tars berth unpacks (image layers, `docker cp` uploads): stdlib only, as both
confined children import it before their chroot.

- bytes: the uncompressed tar stream (contents, headers, padding) is cut at max_bytes, which
  bounds the unpacked size and the time spent on a decompression bomb;
- entries: at most max_entries members (inodes);
- headers: the pax/GNU long-name records before one member total at most max_header bytes
  (Go's archive/tar, which dockerd uses, refuses special files over 1 MiB), and global pax
  headers at most max_header over the whole stream: tarfile reads them into memory whole.

Defaults are far above any real image and settable through the environment of lifecycle
(BERTH_TAR_MAX_BYTES, BERTH_TAR_MAX_ENTRIES, BERTH_TAR_MAX_HEADER), which passes them to
the children on their command line.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_BYTES = 32 << 30
DEFAULT_MAX_ENTRIES = 1_000_000
DEFAULT_MAX_HEADER = 1 << 20
_SPECIAL = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE)


class TarLimitError(tarfile.TarError):
    """The archive is over one of the limits (a TarError: callers already report those)."""


@dataclass(frozen=True)
class TarLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_header: int = DEFAULT_MAX_HEADER

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> TarLimits:
        e = os.environ if env is None else env
        return cls(
            max_bytes=_positive(e, "BERTH_TAR_MAX_BYTES", DEFAULT_MAX_BYTES),
            max_entries=_positive(e, "BERTH_TAR_MAX_ENTRIES", DEFAULT_MAX_ENTRIES),
            max_header=_positive(e, "BERTH_TAR_MAX_HEADER", DEFAULT_MAX_HEADER),
        )

    def to_args(self) -> list[str]:
        return [str(self.max_bytes), str(self.max_entries), str(self.max_header)]

    @classmethod
    def from_args(cls, args: list[str]) -> TarLimits:
        return cls(*(int(a) for a in args)) if args else cls()


def _positive(env: Any, name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    value = int(raw)
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, not {raw!r}")
    return value


class CappedReader:
    """Reads through to `src` and fails once more than `limit` bytes came out of it."""

    def __init__(self, src: Any, limit: int) -> None:
        self._src = src
        self._limit = limit
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = self._limit - self.count + 1  # never an unbounded read
        data: bytes = self._src.read(n)
        self.count += len(data)
        if self.count > self._limit:
            raise TarLimitError(f"archive is larger than the limit of {self._limit} bytes (BERTH_TAR_MAX_BYTES)")
        return data


class _LimitedTarInfo(tarfile.TarInfo):
    def _proc_member(self, tar: Any) -> Any:
        # Before tarfile reads the record into memory (its size is the header's word).
        if self.type in _SPECIAL or self.type == tarfile.XGLTYPE:
            tar.berth_account_header(self.type, self.size)
        return super()._proc_member(tar)  # type: ignore[misc]


class LimitedTarFile(tarfile.TarFile):
    """A TarFile within `limits` (open_stream makes a subclass per call: tarfile.open reads
    the first member before it returns, so the limits must be there from the start)."""

    tarinfo = _LimitedTarInfo
    limits = TarLimits()
    _entries = 0
    _member_headers = 0
    _global_headers = 0

    def berth_account_header(self, kind: bytes, size: int) -> None:
        padded = -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE + tarfile.BLOCKSIZE
        if kind == tarfile.XGLTYPE:
            self._global_headers += padded
            used = self._global_headers
        else:
            self._member_headers += padded
            used = self._member_headers
        if used > self.limits.max_header:
            raise TarLimitError(
                f"tar header is larger than the limit of {self.limits.max_header} bytes (BERTH_TAR_MAX_HEADER)"
            )

    def next(self) -> tarfile.TarInfo | None:
        self._member_headers = 0
        member = super().next()
        if member is not None:
            self._entries += 1
            if self._entries > self.limits.max_entries:
                raise TarLimitError(
                    f"archive has more than the limit of {self.limits.max_entries} entries (BERTH_TAR_MAX_ENTRIES)"
                )
        return member


def open_stream(src: Any, limits: TarLimits, **kwargs: Any) -> LimitedTarFile:
    """A streaming ("r|") reader of the uncompressed tar `src`, within `limits`."""
    cls: type[LimitedTarFile] = type("LimitedTarFile", (LimitedTarFile,), {"limits": limits})
    tar = cls.open(fileobj=CappedReader(src, limits.max_bytes), mode="r|", **kwargs)  # type: ignore[call-overload]
    assert isinstance(tar, LimitedTarFile)
    return tar
