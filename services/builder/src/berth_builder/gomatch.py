"""Go's path/filepath.Match, which COPY/ADD wildcards use (`*`, `?`, `[a-z]`, `[^a]`, `\\x`)."""

from __future__ import annotations


class BadPattern(ValueError):
    def __init__(self) -> None:
        super().__init__("syntax error in pattern")


def _class(pattern: str, i: int, ch: str) -> tuple[bool, int]:
    """Match ch against the class starting after '[' at i; return (matched, index after ']')."""
    negated = i < len(pattern) and pattern[i] == "^"
    if negated:
        i += 1
    matched = False
    first = True
    while True:
        if i >= len(pattern):
            raise BadPattern()
        if pattern[i] == "]" and not first:
            i += 1
            break
        first = False
        lo, i = _class_char(pattern, i)
        hi = lo
        if i < len(pattern) and pattern[i] == "-":
            hi, i = _class_char(pattern, i + 1)
        if lo <= ch <= hi:
            matched = True
    return matched != negated, i


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    if i >= len(pattern) or pattern[i] in "-]":
        raise BadPattern()
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise BadPattern()
    return pattern[i], i + 1


def match(pattern: str, name: str) -> bool:
    """True when name matches pattern; `*` and `?` never match '/'. Raises BadPattern."""
    return _match(pattern, 0, name, 0)


def _match(p: str, pi: int, s: str, si: int) -> bool:
    while pi < len(p):
        ch = p[pi]
        if ch == "*":
            while pi < len(p) and p[pi] == "*":
                pi += 1
            if pi == len(p):
                return "/" not in s[si:]
            for k in range(si, len(s) + 1):
                if k > si and s[k - 1] == "/":
                    break
                if _match(p, pi, s, k):
                    return True
            _validate(p, pi)
            return False
        if si >= len(s):
            _validate(p, pi)
            return False
        if ch == "?":
            if s[si] == "/":
                return False
            pi, si = pi + 1, si + 1
        elif ch == "[":
            ok, pi = _class(p, pi + 1, s[si])
            if not ok:
                return False
            si += 1
        elif ch == "\\":
            if pi + 1 >= len(p):
                raise BadPattern()
            if p[pi + 1] != s[si]:
                return False
            pi, si = pi + 2, si + 1
        else:
            if ch != s[si]:
                return False
            pi, si = pi + 1, si + 1
    return si == len(s)


def _validate(p: str, pi: int) -> None:
    """Go reports a bad pattern even when the match already failed: check the rest's syntax."""
    while pi < len(p):
        if p[pi] == "\\":
            if pi + 1 >= len(p):
                raise BadPattern()
            pi += 2
        elif p[pi] == "[":
            _, pi = _class(p, pi + 1, "\0")
        else:
            pi += 1


def contains_wildcards(name: str) -> bool:
    """moby's containsWildcards (Linux): `*`, `?` or `[` not escaped by a backslash."""
    i = 0
    while i < len(name):
        if name[i] == "\\":
            i += 2
            continue
        if name[i] in "*?[":
            return True
        i += 1
    return False
