"""Where the engine keeps its state; configured through the environment like every berth service."""

from __future__ import annotations

import os
from pathlib import Path

from berth_contracts.docker import Ulimit
from berth_contracts.errors import InvalidParameter


def data_root() -> Path:
    return Path(os.environ.get("BERTH_DATA_ROOT", "/var/lib/berth"))


def engine_dir() -> Path:
    return data_root() / "engine"


def volumes_dir() -> Path:
    return engine_dir() / "volumes"


def db_path() -> Path:
    return engine_dir() / "engine.db"


# How often running records are checked against the agents (missed exits, dead shims).
RECONCILE_INTERVAL = float(os.environ.get("BERTH_ENGINE_RECONCILE_INTERVAL", "5"))


def default_ulimits() -> list[Ulimit]:
    """dockerd's --default-ulimit, as BERTH_DEFAULT_ULIMITS="nofile=1024:2048 nproc=512"."""
    out = []
    for item in os.environ.get("BERTH_DEFAULT_ULIMITS", "").replace(",", " ").split():
        name, _, limits = item.partition("=")
        soft, _, hard = limits.partition(":")
        try:
            out.append(Ulimit(name=name, soft=int(soft), hard=int(hard or soft)))
        except ValueError:
            raise InvalidParameter(f"invalid ulimit argument: {item}") from None
    return out
