"""The supervisor's state file, <exec-root>/berth.json, read by `berth down` and `berth status`."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec


class ChildState(msgspec.Struct, kw_only=True):
    name: str  # service.name, or "nats-server"
    module: str = ""  # python -m module; empty for nats-server
    pid: int = 0  # 0 while not running
    start_ticks: int = 0  # /proc/<pid>/stat starttime: guards against pid reuse
    state: str = "starting"  # starting | running | backoff | stopping | stopped
    restarts: int = 0
    last_exit: int | None = None  # exit status of the previous run (negative: signal)


class NatsState(msgspec.Struct, kw_only=True):
    url: str
    embedded: bool
    process: ChildState | None = None
    # The bus directory (berth_kit.busauth): `berth status` pings with its berth-status identity.
    # Empty: an external NATS without --nats-creds, reached without credentials.
    creds_dir: str = ""
    # A manager's second nats-server for a swarm across hosts (berth_cli.swarmwatch).
    swarm_server: ChildState | None = None


class BerthState(msgspec.Struct, kw_only=True):
    version: int = 1
    supervisor_pid: int
    supervisor_start_ticks: int = 0
    data_root: str
    exec_root: str
    hosts: list[str]
    docker_host: str
    api_tls: str = ""  # how docker_host speaks: "" plain, "tls", "verify" (TLSSettings.mode)
    log_file: str = ""
    forkserver_pid: int = 0  # 0: none (BERTH_FORKSERVER=0, or between restarts)
    nats: NatsState
    services: list[ChildState] = msgspec.field(default_factory=list)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(BerthState)


def write_state(path: Path, state: BerthState) -> None:
    """Write atomically: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = msgspec.json.format(_encoder.encode(state), indent=2)
    # 0600, as everything private in the roots (it names every service's pid and NATS url).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data + b"\n")
    os.replace(tmp, path)


def read_state(path: Path) -> BerthState | None:
    """The state, or None when there is none (berth not running, or never ran here)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError:
        return None


def remove_state(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
