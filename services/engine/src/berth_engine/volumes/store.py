"""The local volume driver's storage: `<data-root>/engine/volumes/<name>/_data` plus a small
JSON record of labels and options beside it (dockerd keeps the same layout)."""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from pathlib import Path

import msgspec
from berth_common.gotime import rfc3339nano
from berth_contracts.errors import Conflict, InvalidParameter, NotFound
from berth_contracts.identifiers import NAME_PATTERN
from berth_contracts.volumes import Volume

# moby's volume name rule (daemon/names): the first character alphanumeric.
_NAME = re.compile(NAME_PATTERN)
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
_META = "berth.json"


class _Meta(msgspec.Struct):
    created_at: str
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    options: dict[str, str] = msgspec.field(default_factory=dict)


def validate_volume_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidParameter(
            f'create {name}: "{name}" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path"
        )


class VolumeStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o701)

    def _dir(self, name: str) -> Path:
        validate_volume_name(name)  # never a path part unchecked, whoever called
        return self.root / name

    def data_path(self, name: str) -> Path:
        return self._dir(name) / "_data"

    def _load(self, name: str) -> _Meta | None:
        try:
            raw = (self._dir(name) / _META).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:  # no such volume could have been made
                return None
            raise
        return msgspec.json.decode(raw, type=_Meta)

    def _view(self, name: str, meta: _Meta) -> Volume:
        return Volume(
            name=name,
            mountpoint=str(self.data_path(name)),
            created_at=meta.created_at,
            labels=dict(meta.labels),
            options=dict(meta.options) or None,
        )

    def get(self, name: str) -> Volume:
        meta = self._load(name) if _NAME.match(name) else None
        if meta is None:
            raise NotFound(f"get {name}: no such volume")
        return self._view(name, meta)

    def exists(self, name: str) -> bool:
        return _NAME.match(name) is not None and self._load(name) is not None

    def create(
        self, name: str, labels: dict[str, str] | None = None, options: dict[str, str] | None = None
    ) -> Volume:
        """Create (or return the existing) volume; "" makes an anonymous one."""
        if not name:
            name = secrets.token_hex(32)
            labels = {ANONYMOUS_LABEL: "", **(labels or {})}
        validate_volume_name(name)
        if options:
            # The local driver's type/device/o mount options would need a mount per use.
            raise InvalidParameter(
                f"create {name}: berth's local driver does not support driver options yet"
            )
        existing = self._load(name)
        if existing is not None:
            return self._view(name, existing)
        meta = _Meta(created_at=_created_now(), labels=dict(labels or {}))
        tmp = self.root / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "_data").mkdir(parents=True)
        os.chmod(tmp / "_data", 0o755)
        (tmp / _META).write_bytes(msgspec.json.encode(meta))
        try:
            tmp.rename(self._dir(name))  # atomic: a volume is there whole or not at all
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            again = self._load(name)
            if again is None:
                raise
            return self._view(name, again)
        return self._view(name, meta)

    def names(self) -> list[str]:
        return sorted(
            p.name
            for p in self.root.iterdir()
            if not p.name.startswith(".") and (p / _META).exists()
        )

    def all(self) -> list[Volume]:
        out: list[Volume] = []
        for name in self.names():
            meta = self._load(name)
            if meta is not None:
                out.append(self._view(name, meta))
        return out

    def remove(self, name: str) -> int:
        """Delete the volume and its data; the bytes it held."""
        if not self.exists(name):
            raise NotFound(f"get {name}: no such volume")
        target = self._dir(name)
        size = _du(target / "_data")
        trash = self.root / f".{name}.removing"
        try:
            target.rename(trash)
        except OSError as exc:
            raise Conflict(f"remove {name}: {exc.strerror}") from None
        shutil.rmtree(trash, ignore_errors=True)
        return size


def _created_now() -> str:
    # Docker shows the volume's CreatedAt in seconds with the zone offset.
    return rfc3339nano().split(".")[0].rstrip("Z") + "Z"


def _du(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total
