"""COPY/ADD sources in the context and moby's classic cache key for them.

A file's key is `file:` + its tarsum (context.tarsum_header: the sha256 of its archive entry's
header fields and content, computed while the context is extracted); a directory's is
`dir:` + sha256 of its entries' sums, sorted, joined with ","; several sources `multi:` + the
same over their keys. The step's history text is `COPY <key> in <dest> `.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass

from berth_builder.context import ContextError, check_in_context, context_rel, resolve_in_root
from berth_builder.gomatch import contains_wildcards, match

NOT_FOUND = "file not found in build context or excluded by .dockerignore"
NO_SOURCES = "no source files were specified"

@dataclass(frozen=True)
class CopySource:
    path: str  # relative to the context root
    hash: str  # "file:<hex>", "dir:<hex>"


class ContextHasher:
    """moby's archiveContext: sums of the context archive's entries, looked up by path."""

    def __init__(self, root: str, sums: dict[str, str]) -> None:
        self.root = os.path.realpath(root)
        self._sums = sums

    def sum(self, rel: str) -> str:
        """A path's sum, links followed inside the context first (moby's normalize): a link's
        sum is its target's; a path with no archive entry sums to the path as given."""
        full = resolve_in_root(self.root, rel)
        found = self._sums.get(os.path.relpath(full, self.root))
        return found if found is not None else rel

    def _walk(self, start_rel: str) -> list[str]:
        """Context-relative paths under start_rel (itself included unless it is the root), in
        Go filepath.Walk's lexical order; links are not followed."""
        out: list[str] = []

        def visit(rel: str) -> None:
            if rel != ".":
                out.append(rel)
            full = os.path.join(self.root, rel)
            if os.path.isdir(full) and not os.path.islink(full):
                for entry in sorted(os.listdir(full)):
                    visit(entry if rel == "." else f"{rel}/{entry}")

        visit(start_rel)
        return out

    def sources(self, orig: str, allow_wildcards: bool = True) -> list[CopySource]:
        """moby's calcCopyInfo for a context source path (after variable substitution)."""
        orig = context_rel(orig)
        if allow_wildcards and contains_wildcards(orig):
            found: list[CopySource] = []
            for rel in self._walk("."):
                if match(orig, rel):
                    found += self.sources(rel, allow_wildcards=False)
            return found
        check_in_context(orig)
        full = resolve_in_root(self.root, orig)
        rel = os.path.relpath(full, self.root)
        try:
            st = os.stat(full)
        except (FileNotFoundError, NotADirectoryError):
            raise ContextError(f"{NOT_FOUND}: stat {orig}: file does not exist") from None
        if not stat.S_ISDIR(st.st_mode):
            return [CopySource(orig, "file:" + self.sum(orig))]
        subfiles = sorted(self.sum(p) for p in self._walk(rel))
        return [CopySource(orig, hash_string_slice("dir", subfiles))]


def hash_string_slice(prefix: str, items: list[str]) -> str:
    return prefix + ":" + hashlib.sha256(",".join(items).encode()).hexdigest()


def sources_hash(sources: list[CopySource]) -> str:
    """moby's getSourceHashFromInfos."""
    if len(sources) == 1:
        return sources[0].hash
    return hash_string_slice("multi", [s.hash for s in sources])


def copy_comment(cmd_name: str, chown: str, sources: list[CopySource], dest: str) -> str:
    """The nop comment a COPY/ADD step records (its cache key and history text)."""
    if not sources:
        raise ContextError(NO_SOURCES)
    chown_text = f"--chown={chown}" if chown else ""
    return f"{cmd_name} {chown_text}{sources_hash(sources)} in {dest} "
