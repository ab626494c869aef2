"""Where the engine keeps its state; configured through the environment like every berth service."""

from __future__ import annotations

import os
from pathlib import Path


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
