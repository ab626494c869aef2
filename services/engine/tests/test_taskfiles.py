"""A swarm task's secrets and configs as files: written privately, owned and moded as their
references say, mounted read-only at their targets, and gone with the task."""

from __future__ import annotations

import stat
from pathlib import Path

import msgspec
import pytest
from berth_contracts.errors import InvalidParameter
from berth_contracts.swarmnode import TaskAssignment, TaskFile
from berth_engine.swarm import taskfiles


def _task(task_id: str, *files: TaskFile) -> TaskAssignment:
    return TaskAssignment(task_id=task_id, desired_state="running", container_name="web.1." + task_id,
                          image="busybox", labels={}, files=list(files))  # fmt: skip


def test_files_are_private_owned_and_mounted_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_EXEC_ROOT", str(tmp_path))
    secret = TaskFile(kind="secret", object_id="s1", target="/run/secrets/db", data=b"pw", uid="1000", gid="1001", mode=0o400)
    config = TaskFile(kind="config", object_id="c1", target="/etc/app.conf", data=b"a=1\n")
    mounts = taskfiles.write_files(_task("t0abc", secret, config))
    assert [(m.destination, m.rw, m.type, m.listed) for m in mounts] == [
        ("/run/secrets/db", False, "bind", False), ("/etc/app.conf", False, "bind", False),
    ]
    first = Path(mounts[0].source)
    assert first.read_bytes() == b"pw" and stat.S_IMODE(first.stat().st_mode) == 0o400
    assert (first.stat().st_uid, first.stat().st_gid) == (1000, 1001)
    assert stat.S_IMODE(first.parent.stat().st_mode) == 0o700 and stat.S_IMODE(taskfiles.files_dir().stat().st_mode) == 0o700
    assert Path(mounts[1].source).read_bytes() == b"a=1\n"
    assert taskfiles.write_files(_task("t1")) == []  # nothing to write: no directory
    taskfiles.write_files(_task("t2", config))
    # An engine restarted: files of tasks with no container go; the others are held.
    assert taskfiles.prune_files({"t2", "t9"}) == {"t2"}
    assert sorted(p.name for p in taskfiles.files_dir().iterdir()) == ["t2"]
    not_given = msgspec.structs.replace(config, data=None)
    assert not taskfiles.data_given(_task("t3", config, not_given)) and taskfiles.data_given(_task("t3", config))
    with pytest.raises(InvalidParameter, match="was not given"):
        taskfiles.write_files(_task("t2", not_given))
    assert (taskfiles.files_dir() / "t2").is_dir()  # what it holds stays
    taskfiles.remove_files("t2")
    assert not any(taskfiles.files_dir().iterdir())


def test_bad_owners_and_task_ids_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_EXEC_ROOT", str(tmp_path))
    file = TaskFile(kind="secret", object_id="s1", target="/run/secrets/x", data=b"x", uid="root")
    with pytest.raises(InvalidParameter, match="a number is needed"):
        taskfiles.write_files(_task("t3", file))
    with pytest.raises(InvalidParameter, match="invalid task id"):
        taskfiles.write_files(_task("../escape", file))
    taskfiles.remove_files("../escape")  # never outside its directory
    assert tmp_path.exists()
