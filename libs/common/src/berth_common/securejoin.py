"""Resolve a container path inside its root, following symlinks as the container would see them
(filepath-securejoin's rule): `..` and absolute links never leave the root."""

from __future__ import annotations

import errno
import os
import posixpath

MAX_LINKS = 255


def secure_join(root: str, path: str) -> str:
    """The host path of `path` inside `root`; missing trailing parts are joined lexically."""
    root = os.path.abspath(root)
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []  # components below root, all existing non-symlinks
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            is_link = os.path.islink(candidate)
        except OSError:
            is_link = False
        if not is_link:
            resolved.append(part)
            continue
        links += 1
        if links > MAX_LINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p and p != "."] + parts
    return posixpath.join(root, *resolved) if resolved else root
