"""Swarm object IDs and join tokens, in swarmkit's formats.

IDs are 25 characters of lowercase base36 from 128 random bits (swarmkit's identity.NewID).
A join token is `SWMTKN-1-<ca digest>-<secret>`: the digest is the swarm's root CA's
(swarmca.digest, as swarmkit's), the 25-character secret admits a worker or a manager. Tokens are compared in
constant time and never logged.
"""

from __future__ import annotations

import hmac
import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
TOKEN_PREFIX = "SWMTKN-1-"


def base36(value: int, width: int) -> str:
    out = []
    while value:
        value, digit = divmod(value, 36)
        out.append(_ALPHABET[digit])
    return "".join(reversed(out)).rjust(width, "0")


def new_id() -> str:
    return base36(secrets.randbits(128), 25)


def new_secret() -> str:
    return base36(secrets.randbits(128), 25)


def join_token(ca_digest: str, secret: str) -> str:
    return f"{TOKEN_PREFIX}{ca_digest}-{secret}"


def token_matches(token: str, ca_digest: str, secret: str) -> bool:
    return hmac.compare_digest(token.encode(), join_token(ca_digest, secret).encode())
