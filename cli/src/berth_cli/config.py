"""Command-line parsing and the resolved configuration of each command."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATA_ROOT = "/var/lib/berth"
DEFAULT_EXEC_ROOT = "/run/berth"
DEFAULT_HOST = "unix:///run/berth/docker.sock"
DEFAULT_NATS_PORT = 4222
STATE_FILE = "berth.json"
LOG_FILE = "berth.log"
LOCK_FILE = "berth.lock"


@dataclass(frozen=True)
class ServiceSpec:
    """One supervised service: its OpenTelemetry service.name and the module `python -m` runs."""

    name: str
    module: str


# Start order does not matter (every service retries NATS); stop order is the reverse, so the
# gateway stops taking requests before the services behind it go away.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("berth-engine", "berth_engine"),
    ServiceSpec("berth-lifecycle", "berth_lifecycle"),
    ServiceSpec("berth-runtime-agent", "berth_agent"),
    ServiceSpec("berth-registry-proxy", "berth_registry_proxy"),
    ServiceSpec("berth-builder", "berth_builder"),
    ServiceSpec("berth-api-gateway", "berth_gateway"),
)

# Tests replace the service set with stand-ins: "name=module,name=module".
SERVICES_OVERRIDE_ENV = "BERTH_SUPERVISE"


def services_from_env() -> tuple[ServiceSpec, ...]:
    raw = os.environ.get(SERVICES_OVERRIDE_ENV, "").strip()
    if not raw:
        return SERVICES
    specs = []
    for item in raw.split(","):
        name, sep, module = item.strip().partition("=")
        if not sep or not name or not module:
            raise ValueError(f"{SERVICES_OVERRIDE_ENV}: expected name=module, got {item!r}")
        specs.append(ServiceSpec(name, module))
    return tuple(specs)


class UsageError(Exception):
    """A bad command line; printed without a traceback."""


@dataclass(frozen=True)
class UpConfig:
    detach: bool
    hosts: tuple[str, ...]
    data_root: Path
    exec_root: Path
    nats_port: int
    nats_url: str  # empty: run the embedded nats-server
    nats_creds: Path | None  # with nats_url: a bus directory of credentials (berth bus-init)
    ready_timeout: float
    daemonized: bool = False  # set on the re-executed background supervisor
    services: tuple[ServiceSpec, ...] = field(default=SERVICES)

    @property
    def state_path(self) -> Path:
        return self.exec_root / STATE_FILE

    @property
    def bus_dir(self) -> Path | None:
        """Where each identity's credentials are: the embedded server's are generated in
        <data-root>/nats; an external NATS's are given with --nats-creds (or none)."""
        return self.nats_creds if self.nats_url else self.data_root / "nats"

    @property
    def log_path(self) -> Path:
        return self.exec_root / LOG_FILE

    @property
    def docker_host(self) -> str:
        return self.hosts[0]


def validate_host(host: str) -> str:
    """Accept what dockerd's -H accepts here: unix://PATH or tcp://HOST:PORT."""
    if host.startswith("unix://"):
        path = host[len("unix://") :]
        if not path.startswith("/"):
            raise UsageError(f"invalid -H {host!r}: unix socket path must be absolute")
        # sun_path holds 108 bytes including the terminating NUL.
        if len(path.encode()) > 107:
            raise UsageError(f"invalid -H {host!r}: unix socket path is too long")
        return host
    if host.startswith("tcp://"):
        hostport = host[len("tcp://") :].rstrip("/")
        hostname, sep, port = hostport.rpartition(":")
        if not sep or not hostname or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"invalid -H {host!r}: expected tcp://HOST:PORT")
        return f"tcp://{hostport}"
    raise UsageError(f"invalid -H {host!r}: expected unix://PATH or tcp://HOST:PORT")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="berth", description="Docker-compatible container engine")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="start nats-server and the berth services")
    up.add_argument("-d", "--detach", action="store_true", help="run in the background")
    up.add_argument(
        "-H",
        "--host",
        action="append",
        dest="hosts",
        default=None,
        metavar="HOST",
        help="socket to serve the Docker API on (unix://PATH or tcp://HOST:PORT); repeatable",
    )
    up.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="persistent state directory")
    up.add_argument("--exec-root", default=DEFAULT_EXEC_ROOT, help="runtime state directory")
    up.add_argument(
        "--nats-port",
        type=int,
        default=DEFAULT_NATS_PORT,
        help="port of the embedded nats-server (0 picks a free port)",
    )
    up.add_argument("--nats-url", default="", help="use this NATS instead of an embedded one")
    up.add_argument(
        "--nats-creds",
        default="",
        metavar="DIR",
        help="with --nats-url: the bus directory (`berth bus-init DIR`) with each service's"
        " credentials; without it the services connect unauthenticated",
    )
    up.add_argument(
        "--ready-timeout",
        type=float,
        default=60.0,
        help="with -d: seconds to wait for the API to answer /_ping",
    )
    # Internal: marks the background supervisor that `up -d` re-executes.
    up.add_argument("--daemonized", action="store_true", help=argparse.SUPPRESS)

    down = sub.add_parser("down", help="stop a running berth")
    down.add_argument("--exec-root", default=DEFAULT_EXEC_ROOT)
    down.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the stop")

    bus = sub.add_parser(
        "bus-init",
        help="write NATS credentials and a nats-server config (for --nats-url, compose)",
    )
    bus.add_argument("dir", help="bus directory: DIR/nats.conf and DIR/<service>/bus.creds")
    bus.add_argument(
        "--line",
        action="append",
        default=[],
        metavar="SETTING",
        help="a line put at the top of nats.conf, e.g. 'port: 4222'; repeatable",
    )

    status = sub.add_parser("status", help="show the services, their pids and health")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--exec-root", default=DEFAULT_EXEC_ROOT)
    return parser


def up_config(ns: argparse.Namespace) -> UpConfig:
    exec_root = Path(ns.exec_root).absolute()
    # Like dockerd, the default socket does not follow --exec-root: give -H to run two berths.
    hosts = tuple(validate_host(h) for h in (ns.hosts or [DEFAULT_HOST]))
    if not 0 <= ns.nats_port < 65536:
        raise UsageError(f"invalid --nats-port {ns.nats_port}")
    if ns.nats_url and not ns.nats_url.startswith(("nats://", "tls://")):
        raise UsageError(f"invalid --nats-url {ns.nats_url!r}: expected nats://HOST:PORT")
    if ns.nats_creds and not ns.nats_url:
        raise UsageError("--nats-creds needs --nats-url (the embedded server's are generated)")
    return UpConfig(
        detach=ns.detach,
        hosts=hosts,
        data_root=Path(ns.data_root).absolute(),
        exec_root=exec_root,
        nats_port=ns.nats_port,
        nats_url=ns.nats_url,
        nats_creds=Path(ns.nats_creds).absolute() if ns.nats_creds else None,
        ready_timeout=ns.ready_timeout,
        daemonized=ns.daemonized,
        services=services_from_env(),
    )
