"""A swarm task's secrets and configs as files, as dockerd's executor gives them: written under
the exec root (`/run/berth`, a tmpfs on most hosts, so a secret stays off the disk as dockerd's
tmpfs keeps it), one private directory per task, each bind-mounted read-only at its target.
They go with the task's container."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from berth_contracts.errors import InvalidParameter
from berth_contracts.swarmnode import TaskAssignment

from berth_engine.containers.mountspec import MountEntry

_TASK_ID = re.compile(r"[0-9a-z]{1,64}")


def files_dir() -> Path:
    return Path(os.environ.get("BERTH_EXEC_ROOT", "/run/berth")) / "engine" / "swarm-files"


def _owner(value: str, what: str) -> int:
    if not value.isdigit():  # moby: strconv.Atoi
        raise InvalidParameter(f"invalid {what} {value!r} for a secret or config file: a number is needed")
    return int(value)


def data_given(task: TaskAssignment) -> bool:
    """False when the orchestrator left the files' data out: it heard that this node holds them
    (files_held), which the node said before that task's container went. The next beat
    brings the data."""
    return all(file.data is not None for file in task.files)


def write_files(task: TaskAssignment) -> list[MountEntry]:
    """Write the task's files (owner and mode as their references say); the read-only bind
    mounts for them, which inspect does not list (dockerd's are not in its Mounts either)."""
    if not task.files:
        return []
    if not data_given(task):
        raise InvalidParameter(f"the data of task {task.task_id}'s secrets and configs was not given")
    if not _TASK_ID.fullmatch(task.task_id):
        raise InvalidParameter(f"invalid task id {task.task_id!r}")
    root = files_dir()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    task_dir = root / task.task_id
    shutil.rmtree(task_dir, ignore_errors=True)  # a creation tried before
    task_dir.mkdir(mode=0o700)
    mounts = []
    for i, file in enumerate(task.files):
        path = task_dir / f"{file.kind}-{i}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(file.data or b"")
            os.fchown(out.fileno(), _owner(file.uid, "uid"), _owner(file.gid, "gid"))
            os.fchmod(out.fileno(), file.mode & 0o777)
        mounts.append(MountEntry(type="bind", source=str(path), destination=file.target, rw=False, listed=False))
    return mounts


def remove_files(task_id: str) -> None:
    if _TASK_ID.fullmatch(task_id):
        shutil.rmtree(files_dir() / task_id, ignore_errors=True)


def prune_files(keep: set[str]) -> set[str]:
    """Remove the files of tasks that have no container any more (an engine stopped before
    removing them); the tasks whose files are kept."""
    try:
        names = [p.name for p in files_dir().iterdir()]
    except FileNotFoundError:
        return set()
    for name in names:
        if name not in keep:
            remove_files(name)
    return {name for name in names if name in keep}
