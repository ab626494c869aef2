"""COPY/ADD sources in the context and moby's classic cache key for them.

A file's key is `file:` + its tarsum (context.tarsum_header: the sha256 of its archive entry's
header fields and content, computed when the context is indexed: contextindex.py); a directory's
is `dir:` + sha256 of its entries' sums, sorted, joined with ","; several sources `multi:` + the
same over their keys. The step's history text is `COPY <key> in <dest> `.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from berth_builder.context import ContextError, check_in_context, context_rel
from berth_builder.contextindex import ROOT, ContextIndex
from berth_builder.gomatch import contains_wildcards, match

NOT_FOUND = "file not found in build context or excluded by .dockerignore"
NO_SOURCES = "no source files were specified"


@dataclass(frozen=True)
class CopySource:
    path: str  # relative to the context root
    hash: str  # "file:<hex>", "dir:<hex>"


class ContextHasher:
    """moby's archiveContext: sums of the context archive's entries, looked up by path."""

    def __init__(self, index: ContextIndex) -> None:
        self.index = index

    def sum(self, rel: str) -> str:
        """A path's sum, links followed inside the context first (moby's normalize): a link's
        sum is its target's; a path with no archive entry sums to the path as given."""
        found = self.index.sums.get(self.index.resolve(rel))
        return found if found is not None else rel

    def sources(self, orig: str, allow_wildcards: bool = True) -> list[CopySource]:
        """moby's calcCopyInfo for a context source path (after variable substitution)."""
        orig = context_rel(orig)
        if allow_wildcards and contains_wildcards(orig):
            found: list[CopySource] = []
            for rel in self.index.walk(ROOT):
                if match(orig, rel):
                    found += self.sources(rel, allow_wildcards=False)
            return found
        check_in_context(orig)
        path = self.index.resolve(orig)
        kind = self.index.kind(path)
        if not kind:
            raise ContextError(f"{NOT_FOUND}: stat {orig}: file does not exist")
        if kind != "dir":
            return [CopySource(orig, "file:" + self.sum(orig))]
        subfiles = sorted(self.sum(p) for p in self.index.walk(path))
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
