"""Where the agent keeps things (docs/architecture.md, "On-disk layout").

Every id is checked before it becomes a path part (containerd's rule), whoever called.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from berth_contracts.identifiers import validate_identifier


@dataclass(frozen=True)
class Paths:
    data_root: Path
    exec_root: Path

    @classmethod
    def from_env(cls) -> Paths:
        return cls(
            data_root=Path(os.environ.get("BERTH_DATA_ROOT", "/var/lib/berth")),
            exec_root=Path(os.environ.get("BERTH_EXEC_ROOT", "/run/berth")),
        )

    @property
    def tasks_dir(self) -> Path:
        return self.exec_root / "agent" / "tasks"

    @property
    def sockets_dir(self) -> Path:
        return self.exec_root / "agent" / "s"

    @property
    def runc_root(self) -> Path:
        return self.exec_root / "runc"

    def bundle(self, container_id: str) -> Path:
        return self.tasks_dir / validate_identifier(container_id, "container id")

    def socket(self, container_id: str) -> Path:
        # sun_path holds ~108 bytes: name the socket by a short prefix of the id.
        validate_identifier(container_id, "container id")
        return self.sockets_dir / f"{container_id[:16]}.sock"

    def log_dir(self, container_id: str) -> Path:
        return self.data_root / "agent" / "containers" / validate_identifier(
            container_id, "container id"
        )

    def log_path(self, container_id: str) -> Path:
        return self.log_dir(container_id) / f"{container_id}-json.log"
