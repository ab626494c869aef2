"""Autolock (`docker swarm init --autolock`, `swarm update --autolock`, `swarm unlock`,
`swarm unlock-key [--rotate]`), as swarmkit does it with berth's parts.

Each manager's swarm server keeps the swarm's state encrypted with a key of its own (its DEK,
berth_kit.storekey). With autolock, the swarm has an unlock key (its KEK, swarmkit's
`SWMKEY-1-...`), kept in the state, and each manager keeps its store key wrapped by it
(AES-GCM): a manager whose berth starts again cannot read its store until `docker swarm unlock`
gives the unlock key (`StoreKey.unlock`). Each manager follows the swarm's unlock key on its
own (`StoreKey.follow`, every couple of seconds), as swarmkit's managers re-encrypt their
keys when it changes.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from berth_common.privatefile import write_private
from berth_contracts.errors import InvalidParameter, Unauthorized
from berth_kit.storekey import key_path, read_json, unlocked_path, usable_key, write_unlocked
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# moby's words (daemon/cluster/errors.go, swarmkit's encryption.ParseHumanReadableKey)
SWARM_LOCKED = (
    'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm '
    'unlock" to unlock it.'
)
NOT_LOCKED = "swarm is not locked"
INVALID_KEY = "swarm could not be unlocked: invalid key provided"
_PREFIX = "SWMKEY-1-"
# The link's rounds and the API both write the file, from worker threads: one at a time
# (write_private's temp file is one per file).
_ONE_AT_A_TIME = threading.Lock()
_T = TypeVar("_T")
_P = ParamSpec("_P")


def _one_at_a_time(method: Callable[_P, _T]) -> Callable[_P, _T]:
    @functools.wraps(method)
    def serialised(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        with _ONE_AT_A_TIME:
            return method(*args, **kwargs)

    return serialised


def new_unlock_key() -> str:
    """swarmkit's HumanReadableKey of 32 random bytes."""
    return _PREFIX + base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def parse_unlock_key(text: str) -> bytes:
    """swarmkit's ParseHumanReadableKey (base64 without padding)."""
    if not text.startswith(_PREFIX):
        raise InvalidParameter("invalid key string")
    body = text[len(_PREFIX) :]
    try:
        if "=" in body:
            raise ValueError("padded")
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (ValueError, binascii.Error):
        raise InvalidParameter("invalid key string") from None


def unlock_key_for(spec: dict[str, object], current: str, rotate: bool) -> str:
    """The swarm's unlock key after an init or update: one while AutoLockManagers is set, a
    new one when asked (`swarm unlock-key --rotate`), none otherwise (swarmkit's UpdateCluster)."""
    encryption = spec.get("EncryptionConfig")
    if not (isinstance(encryption, dict) and encryption.get("AutoLockManagers")):
        return ""
    return new_unlock_key() if rotate or not current else current


def _fingerprint(kek: bytes) -> str:
    """Which unlock key wrapped the file (not the key: a digest of 256 random bits)."""
    return hashlib.sha256(b"berth swarm unlock key\0" + kek).hexdigest()[:16]


class StoreKey:
    """This manager's store key file (berth_kit.storekey) in its bus directory."""

    def __init__(self, bus_dir: Path) -> None:
        self.bus_dir = bus_dir

    @_one_at_a_time
    def ensure(self) -> str:
        """The key's id; a new key (in the clear: no autolock yet) when there is none."""
        raw = read_json(key_path(self.bus_dir))
        if raw is not None and isinstance(raw.get("id"), str):
            return str(raw["id"])
        key_id = secrets.token_hex(8)
        self.bus_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(key_path(self.bus_dir), json.dumps({"id": key_id, "key": secrets.token_urlsafe(32)}), durable=True)
        return key_id

    def locked(self, key_id: str) -> bool:
        """Whether the key is wrapped and not unwrapped in memory since `berth up`. Each file
        read once: this is asked every half second while a manager waits for its server."""
        raw = read_json(key_path(self.bus_dir))
        if raw is None or raw.get("id") != key_id or "wrapped" not in raw:
            return False
        unwrapped = read_json(unlocked_path(self.bus_dir))
        return unwrapped is None or unwrapped.get("id") != key_id or not isinstance(unwrapped.get("key"), str)

    @_one_at_a_time
    def unlock(self, key_id: str, unlock_key: str) -> None:
        """Unwrap the store key with the unlock key the user gave, into memory (the supervisor
        then starts the server)."""
        kek = parse_unlock_key(unlock_key)
        raw = read_json(key_path(self.bus_dir)) or {}
        try:
            sealed = base64.b64decode(str(raw["wrapped"]))
            key = AESGCM(kek).decrypt(sealed[:12], sealed[12:], key_id.encode()).decode()
        except (KeyError, ValueError, InvalidTag):  # a key of the wrong size is a ValueError
            raise Unauthorized(INVALID_KEY) from None
        write_unlocked(self.bus_dir, key_id, key)

    @_one_at_a_time
    def follow(self, key_id: str, unlock_key: str) -> bool:
        """Keep the store key wrapped by the swarm's unlock key, or in the clear without one.
        False when it cannot: this manager is locked (it follows once unlocked)."""
        raw = read_json(key_path(self.bus_dir))
        key = usable_key(self.bus_dir, key_id)
        if raw is None or key is None:
            return False
        if not unlock_key:
            if "wrapped" in raw:
                write_private(key_path(self.bus_dir), json.dumps({"id": key_id, "key": key}), durable=True)
            return True
        kek = parse_unlock_key(unlock_key)
        if raw.get("kek") == _fingerprint(kek):
            return True
        write_unlocked(self.bus_dir, key_id, key)  # first: the running server's key stays usable
        nonce = os.urandom(12)
        sealed = base64.b64encode(nonce + AESGCM(kek).encrypt(nonce, key.encode(), key_id.encode())).decode()
        write_private(
            key_path(self.bus_dir), json.dumps({"id": key_id, "wrapped": sealed, "kek": _fingerprint(kek)}), durable=True
        )
        return True

    @_one_at_a_time
    def remove(self) -> None:
        """Out of the swarm (or no longer a manager): its store goes, and its key."""
        key_path(self.bus_dir).unlink(missing_ok=True)
        unlocked_path(self.bus_dir).unlink(missing_ok=True)
