"""Detach keys: moby/term's parsing and its escape proxy's rules."""

from __future__ import annotations

import pytest
from berth_contracts.errors import InvalidParameter
from berth_gateway.detachkeys import DEFAULT, EscapeWatch, parse


def test_parse_like_moby() -> None:
    assert parse("") == DEFAULT == b"\x10\x11"
    assert parse("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse("ctrl-@,ctrl-a,ctrl-z,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_") == bytes(
        [0, 1, 26, 27, 28, 29, 30, 31]
    )
    assert parse("a,DEL,Z") == b"a\x7fZ"
    for bad in ("ctrl-", "ctrl-yes", "ab", "ctrl-p,,ctrl-q", "é"):
        with pytest.raises(InvalidParameter, match=r"Invalid detach keys \(.*\) provided"):
            parse(bad)
    with pytest.raises(InvalidParameter, match=r"Invalid escape keys \(x,yy\) provided"):
        parse("x,yy", "escape keys")


def test_watch_detaches_on_keys_typed_one_at_a_time() -> None:
    watch = EscapeWatch(b"\x10\x11")
    assert watch.feed(b"l") == (b"l", False)
    assert watch.feed(b"\x10") == (b"", False)  # held back: may start the sequence
    assert watch.feed(b"\x11") == (b"", True)


def test_watch_passes_on_what_is_not_the_sequence() -> None:
    watch = EscapeWatch(b"\x10\x11")
    assert watch.feed(b"\x10") == (b"", False)
    assert watch.feed(b"a") == (b"\x10a", False)  # the held key is not lost
    assert watch.feed(b"\x10") == (b"", False)
    assert watch.feed(b"\x10") == (b"\x10\x10", False)  # moby does not restart on a repeat
    # Input that arrives several bytes at a time is pasted text, not keys (moby's rule).
    assert watch.feed(b"\x10\x11") == (b"\x10\x11", False)
    assert watch.feed(b"\x10") == (b"", False)
    assert watch.feed(b"xy") == (b"\x10xy", False)
