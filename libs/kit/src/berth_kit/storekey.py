"""A manager's swarm server keeps the swarm's state encrypted at rest: its JetStream store's key
(swarmkit's DEK for its raft log) is this node's own, in the bus directory. Stdlib only: the
supervisor reads it to start the server, the orchestrator writes it.

- Without autolock the file holds the key itself (as swarmkit keeps its DEK in the clear in the
  node's TLS key when the swarm is not locked).
- With autolock (`docker swarm init --autolock`) it holds the key wrapped by the swarm's unlock
  key (swarmkit's KEK), which only the managers' state and the user hold. A berth started again
  finds it wrapped and cannot start the server: the manager is locked until `docker swarm
  unlock` gives the unlock key. The orchestrator then unwraps it into the *unlocked* file, in
  memory (/dev/shm, a tmpfs): it lives as long as the machine runs, and `berth up` removes it
  when it starts, as dockerd's restart forgets its key.
- nats-server reads the key from its environment (`key: $BERTH_SWARM_STORE_KEY`): it is never
  in a configuration file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from berth_common.privatefile import write_private

STORE_KEY_FILE = "swarm-store-key.json"
STORE_KEY_ENV = "BERTH_SWARM_STORE_KEY"
MEMORY_DIR = Path("/dev/shm")


def key_path(bus_dir: Path) -> Path:
    return bus_dir / STORE_KEY_FILE


def unlocked_path(bus_dir: Path) -> Path:
    """The unwrapped key while this manager is unlocked: in memory, named for this berth's bus
    directory (several berths on one machine each have their own)."""
    tag = hashlib.sha256(str(bus_dir.resolve()).encode()).hexdigest()[:16]
    if MEMORY_DIR.is_dir():
        return MEMORY_DIR / f"berth-swarm-store-{tag}.key"
    return bus_dir / "swarm-store-key.unlocked"  # no tmpfs here: as dockerd's memory, until `berth up`


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def usable_key(bus_dir: Path, key_id: str) -> str | None:
    """The store key named key_id, if this node can use it now: unlocked, or never locked.
    None: it is wrapped (the manager is locked) or missing."""
    for path in (unlocked_path(bus_dir), key_path(bus_dir)):
        raw = read_json(path)
        if raw is not None and raw.get("id") == key_id and isinstance(raw.get("key"), str):
            return str(raw["key"])
    return None


def write_unlocked(bus_dir: Path, key_id: str, key: str) -> None:
    write_private(unlocked_path(bus_dir), json.dumps({"id": key_id, "key": key}))


def forget_unlocked(bus_dir: Path) -> None:
    """`berth up` starts locked again (a wrapped key needs `docker swarm unlock`)."""
    unlocked_path(bus_dir).unlink(missing_ok=True)
