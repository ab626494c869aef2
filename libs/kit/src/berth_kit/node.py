"""The node's name and labels, stdlib only: the supervisor needs them without loading NATS and
OpenTelemetry."""

from __future__ import annotations

import os
import socket


def default_node() -> str:
    return os.environ.get("BERTH_NODE") or socket.gethostname().split(".")[0].replace(".", "-")


ENGINE_LABELS_ENV = "BERTH_ENGINE_LABELS"  # `berth up --label KEY=VALUE`s, one per line


def engine_labels() -> list[str]:
    """This engine's labels as dockerd lists them in `docker info` (KEY=VALUE, in order)."""
    return [line for line in os.environ.get(ENGINE_LABELS_ENV, "").splitlines() if "=" in line]


def engine_label_map() -> dict[str, str]:
    """The same as a map (a swarm node's Description.Engine.Labels): the last of a key wins."""
    return dict(label.split("=", 1) for label in engine_labels())
