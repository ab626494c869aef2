"""Resolve a container path inside its root, following symlinks as the container would see them
(filepath-securejoin's rule): `..` and absolute links never leave the root."""

from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Callable

MAX_LINKS = 255


def resolve_links(path: str, link_target: Callable[[list[str]], str | None]) -> list[str]:
    """The components of `path` below a root, every link followed inside that root.

    `link_target(components)` is the target of the link at those components, or None where
    there is no link (or nothing). Missing trailing parts are joined lexically. OSError ELOOP
    after MAX_LINKS links."""
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []  # components below root, all existing non-symlinks
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        target = link_target([*resolved, part])
        if target is None:
            resolved.append(part)
            continue
        links += 1
        if links > MAX_LINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p and p != "."] + parts
    return resolved


def secure_join(root: str, path: str) -> str:
    """The host path of `path` inside `root`; missing trailing parts are joined lexically."""
    root = os.path.abspath(root)

    def link_target(components: list[str]) -> str | None:
        candidate = os.path.join(root, *components)
        try:
            return os.readlink(candidate) if os.path.islink(candidate) else None
        except OSError:
            return None

    resolved = resolve_links(path, link_target)
    return posixpath.join(root, *resolved) if resolved else root
