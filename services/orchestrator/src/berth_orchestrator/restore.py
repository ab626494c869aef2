"""The swarm's state kept on disk while a lone manager's swarm server moves into a cluster of
managers (a second manager joined): nats-server does not carry a lone server's streams into a
cluster, so the admitting manager writes the state here before its server restarts, and puts it
into the cluster's bucket once the cluster answers (swarmlink)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path


class Restore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def save(self, entries: dict[str, bytes], replicas: int) -> None:
        doc = {"replicas": replicas, "entries": {k: base64.b64encode(v).decode() for k, v in entries.items()}}
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # the tokens' secrets are in it
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, self.path)

    def load(self) -> tuple[dict[str, bytes], int] | None:
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return {k: base64.b64decode(v) for k, v in doc["entries"].items()}, int(doc["replicas"])

    def done(self) -> None:
        self.path.unlink(missing_ok=True)
