"""The swarm's state kept on disk while a manager's swarm server moves between a cluster of
managers and a server of its own: nats-server carries neither a lone server's streams into a
cluster, nor a cluster's to a server left alone (JetStream never restarts a cluster of one).
- Into a cluster (a second manager joined): the admitting manager writes the state here before
  its server restarts, and puts it into the cluster's bucket once the cluster answers.
- Into one (one of two managers demoted): the other writes it here before its server restarts
  on its own, and puts it into that server's new bucket (swarmlink)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from berth_common.privatefile import write_private

Into = Literal["cluster", "one"]


@dataclass(frozen=True)
class Kept:
    entries: dict[str, bytes]
    replicas: int
    into: Into


class Restore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def save(self, entries: dict[str, bytes], replicas: int, into: Into = "cluster") -> None:
        doc = {
            "replicas": replicas, "into": into,
            "entries": {k: base64.b64encode(v).decode() for k, v in entries.items()},
        }  # fmt: skip
        write_private(self.path, json.dumps(doc))  # the tokens' secrets are in it

    def load(self) -> Kept | None:
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        into: Into = "one" if doc.get("into") == "one" else "cluster"
        return Kept({k: base64.b64decode(v) for k, v in doc["entries"].items()}, int(doc["replicas"]), into)

    def pending(self) -> bool:
        return self.path.exists()

    def done(self) -> None:
        self.path.unlink(missing_ok=True)
