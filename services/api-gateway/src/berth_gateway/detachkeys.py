"""Detach keys: the key sequence (ctrl-p ctrl-q unless the client names another) that ends an
attach to a TTY, on the server side as in moby, for clients that do not watch for it themselves
(the docker CLI does, and never sends the sequence on).

Parsing follows moby/term's ToBytes; detection follows its escape proxy, including its rule that
only input arriving one byte at a time counts (keys typed on a terminal, not pasted text).
"""

from __future__ import annotations

from berth_contracts.errors import InvalidParameter

DEFAULT = b"\x10\x11"  # ctrl-p, ctrl-q

# "ctrl-@" is 0, "ctrl-a" 1 ... "ctrl-z" 26, then ctrl-[ ctrl-\ ctrl-] ctrl-^ ctrl-_ (27-31).
_CTRL = {f"ctrl-{c}": i for i, c in enumerate("@abcdefghijklmnopqrstuvwxyz[\\]^_")}


def parse(spec: str, what: str = "detach keys") -> bytes:
    """moby's term.ToBytes; an empty spec means the default sequence."""
    if not spec:
        return DEFAULT
    codes = bytearray()
    for key in spec.split(","):
        if len(key.encode()) == 1:
            codes += key.encode()
        elif key in _CTRL:
            codes.append(_CTRL[key])
        elif key == "DEL":
            codes.append(127)
        else:
            raise InvalidParameter(f"Invalid {what} ({spec}) provided")
    return bytes(codes)


class EscapeWatch:
    """Feed it the client's input chunk by chunk: it answers what to pass on, and whether the
    client has just typed the whole sequence (then nothing of the sequence is passed on)."""

    def __init__(self, keys: bytes) -> None:
        self._keys = keys
        self._pos = 0  # how many keys of the sequence have been held back so far

    def feed(self, chunk: bytes) -> tuple[bytes, bool]:
        held = self._keys[: self._pos]
        if len(chunk) != 1 or chunk[0] != self._keys[self._pos]:
            self._pos = 0
            return held + chunk, False  # not (or no longer) the sequence: nothing is lost
        if self._pos == len(self._keys) - 1:
            self._pos = 0
            return b"", True
        self._pos += 1
        return b"", False
