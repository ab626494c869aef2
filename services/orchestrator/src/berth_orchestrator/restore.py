"""The swarm's state kept on disk while a lone manager's swarm server moves into a cluster of
managers (a second manager joined): nats-server does not carry a lone server's streams into a
cluster, so the admitting manager writes the state here before its server restarts, and puts it
into the cluster's bucket once the cluster answers (swarmlink)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from berth_common.privatefile import write_private


class Restore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def save(self, entries: dict[str, bytes], replicas: int) -> None:
        doc = {"replicas": replicas, "entries": {k: base64.b64encode(v).decode() for k, v in entries.items()}}
        write_private(self.path, json.dumps(doc))  # the tokens' secrets are in it

    def load(self) -> tuple[dict[str, bytes], int] | None:
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return {k: base64.b64decode(v) for k, v in doc["entries"].items()}, int(doc["replicas"])

    def done(self) -> None:
        self.path.unlink(missing_ok=True)
