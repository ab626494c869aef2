"""The node name, stdlib only: the supervisor needs it without loading NATS and OpenTelemetry."""

from __future__ import annotations

import os
import socket


def default_node() -> str:
    return os.environ.get("BERTH_NODE") or socket.gethostname().split(".")[0].replace(".", "-")
