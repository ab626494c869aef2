"""The forkserver's protocol, driven over its stdin/stdout like the supervisor does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)

SERVICE = """
import os, sys
with open(os.environ["OUT"], "w") as f:
    f.write(open("/proc/self/comm").read().strip() + " " + os.environ["GREETING"] + " " + sys.argv[0])
    f.write(" sid=%d" % (os.getsid(0) == os.getpid()))
sys.exit(int(os.environ.get("CODE", "0")))
"""


@pytest.fixture
def forkserver(tmp_path: Path) -> Any:
    (tmp_path / "fs_probe.py").write_text(SERVICE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "berth_cli.forkserver", "json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    yield proc, env
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def ask(proc: subprocess.Popen[bytes], request: dict[str, Any]) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(request).encode() + b"\n")
    proc.stdin.flush()
    answer: dict[str, Any] = json.loads(proc.stdout.readline())
    return answer


def test_forks_the_module_with_its_env_title_and_session_and_reports_the_exit(
    forkserver: Any, tmp_path: Path
) -> None:
    proc, env = forkserver
    out = tmp_path / "out"
    job_env = dict(env, OUT=str(out), GREETING="hello", CODE="3")
    started = ask(proc, {"id": 7, "module": "fs_probe", "title": "berth-probe", "env": job_env})
    assert started["id"] == 7 and started["pid"] > 0
    exited = json.loads(proc.stdout.readline())
    assert exited == {"exited": started["pid"], "status": 3}
    comm, greeting, argv0, sid = out.read_text().split()
    assert (comm, greeting, sid) == ("berth-probe", "hello", "sid=1")
    assert argv0.endswith("fs_probe.py")


def test_a_failing_module_and_a_bad_request(forkserver: Any) -> None:
    proc, env = forkserver
    started = ask(proc, {"id": 1, "module": "no_such_module_here", "env": env})
    exited = json.loads(proc.stdout.readline())
    assert exited == {"exited": started["pid"], "status": 1}
    # A line that is not a request is skipped; the next request is still answered.
    proc.stdin.write(b"not json\n")
    proc.stdin.flush()
    again = ask(proc, {"id": 2, "module": "no_such_module_here", "env": env})
    assert again["id"] == 2


def test_exits_when_its_input_closes(forkserver: Any) -> None:
    proc, _ = forkserver
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0
