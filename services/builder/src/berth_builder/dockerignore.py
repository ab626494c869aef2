"""`.dockerignore` as moby 20.10 reads and matches it (dockerignore.ReadAll, fileutils.PatternMatcher).

Patterns are cleaned (Go filepath.Clean) and anchored at the context root: `*.key` matches
`a.key`, not `src/a.key` (that needs `**/*.key`). A later `!pattern` re-includes. A pattern also
matches everything under a directory it matches.

The docker CLI and docker-py leave excluded files out of the context tar themselves; the daemon
uses the patterns to drop the Dockerfile and .dockerignore from the context when they match.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass


class PatternError(ValueError):
    pass


def go_clean(path: str) -> str:
    """Go's path.Clean (filepath.Clean on Linux)."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def read_patterns(text: str | bytes) -> list[str]:
    """moby's dockerignore.ReadAll."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.removeprefix("\ufeff")
    out: list[str] = []
    for raw in text.split("\n"):
        raw = raw.removesuffix("\r")
        if raw.startswith("#"):
            continue
        pattern = raw.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        out.append("!" + pattern if invert else pattern)
    return out


def _check_match_syntax(pattern: str) -> None:
    """The errors Go's filepath.Match(pattern, ".") reports: an unclosed class, a trailing escape."""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= len(pattern):
                raise PatternError("syntax error in pattern")
            i += 2
            continue
        if ch == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "^":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                raise PatternError("syntax error in pattern")
            while j < len(pattern) and pattern[j] != "]":
                if pattern[j] == "\\":
                    j += 1
                j += 1
            if j >= len(pattern):
                raise PatternError("syntax error in pattern")
            i = j + 1
            continue
        i += 1


def _compile(pattern: str) -> re.Pattern[str]:
    """moby's Pattern.compile: `**` any number of directories, `*`/`?` within one."""
    out = "^"
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out += ".*" if i >= n else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch in ".$":
            out += "\\" + ch
        elif ch == "\\":
            if i < n:
                out += "\\" + pattern[i]
                i += 1
            else:
                out += "\\\\"
        else:
            out += ch
    try:
        return re.compile(out + "$")
    except re.error:
        raise PatternError("syntax error in pattern") from None


@dataclass
class _Pattern:
    cleaned: str
    dirs: list[str]
    regex: re.Pattern[str]
    exclusion: bool


class PatternMatcher:
    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[_Pattern] = []
        self.exclusions = False
        for raw in patterns:
            p = raw.strip()
            if not p:
                continue
            p = go_clean(p)
            exclusion = p.startswith("!")
            if exclusion:
                if len(p) == 1:
                    raise PatternError('illegal exclusion pattern: "!"')
                p = p[1:]
                self.exclusions = True
            _check_match_syntax(p)
            self.patterns.append(_Pattern(p, p.split("/"), _compile(p), exclusion))

    def matches(self, file: str) -> bool:
        """True when `file` (a context-relative path) is excluded."""
        parent = posixpath.dirname(file) or "."
        parent_dirs = parent.split("/")
        matched = False
        for pattern in self.patterns:
            hit = bool(pattern.regex.match(file))
            if not hit and parent != "." and len(pattern.dirs) <= len(parent_dirs):
                hit = bool(pattern.regex.match("/".join(parent_dirs[: len(pattern.dirs)])))
            if hit:
                matched = not pattern.exclusion
        return matched


def excluded(file: str, patterns: list[str]) -> bool:
    """moby's fileutils.Matches."""
    matcher = PatternMatcher(patterns)
    file = go_clean(file)
    return False if file == "." else matcher.matches(file)
