"""docker exec: the API shapes (POST /containers/{id}/exec, /exec/{id}/start, /exec/{id}/json)
and the engine commands behind them. Execs live in the engine's memory, as in dockerd."""

from __future__ import annotations

import msgspec
from msgspec import field

from berth_contracts.base import Command, Reply


class _Docker(msgspec.Struct, rename="pascal", omit_defaults=False):
    pass


class ExecConfig(_Docker):
    """Body of POST /containers/{id}/exec."""

    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    detach_keys: str = ""
    tty: bool = False
    env: list[str] | None = None
    cmd: list[str] | None = None
    privileged: bool = False
    user: str = ""
    working_dir: str = ""
    console_size: list[int] | None = None


class ExecStartConfig(_Docker):
    """Body of POST /exec/{id}/start."""

    detach: bool = False
    tty: bool = False
    console_size: list[int] | None = None


class ExecProcessConfig(msgspec.Struct, omit_defaults=False):
    tty: bool
    entrypoint: str
    arguments: list[str]
    privileged: bool = False
    user: str | None = None


class ExecInspect(_Docker):
    """GET /exec/{id}/json."""

    id: str = field(name="ID")
    running: bool
    exit_code: int | None
    process_config: ExecProcessConfig
    open_stdin: bool
    open_stderr: bool
    open_stdout: bool
    can_remove: bool
    container_id: str = field(name="ContainerID")
    detach_keys: str
    pid: int


class ExecCreate(Command, frozen=True):
    ref: str
    config: ExecConfig


class ExecCreated(Reply, frozen=True):
    id: str


class ExecGet(Command, frozen=True):
    """Inspect; also what /exec/{id}/start needs to know before it hijacks."""

    exec_id: str


class ExecDetail(Reply, frozen=True):
    exec: ExecInspect
    tty: bool
    ran: bool  # started once already (an exec runs at most once)


class ExecStart(Command, frozen=True):
    """Start the process; Done once it runs. Its output goes to subjects.stdio_out(exec_id)."""

    exec_id: str
    tty: bool = False
    height: int = 0
    width: int = 0


class ExecResize(Command, frozen=True):
    exec_id: str
    height: int
    width: int
