"""Command-line parsing and the resolved configuration of each command."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

# Standard library only (the CLI's import stays light); the rules live with the gateway.
from berth_gateway.apitls import TLSConfigError, TLSSettings, check_plain_tcp, server_context
from berth_kit.node import parse_generic_resources  # stdlib only

DEFAULT_DATA_ROOT = "/var/lib/berth"
DEFAULT_EXEC_ROOT = "/run/berth"
DEFAULT_HOST = "unix:///run/berth/docker.sock"
DEFAULT_TLS_HOST = "tcp://localhost:2376"
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
    ServiceSpec("berth-orchestrator", "berth_orchestrator"),
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
    tls: TLSSettings = field(default_factory=TLSSettings)  # dockerd's --tls* as given
    allow_origins: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()  # dockerd's --label: this engine's labels, KEY=VALUE
    node_generic_resources: tuple[str, ...] = ()  # dockerd's --node-generic-resource, KIND=VALUE

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

    @property
    def api_tls(self) -> str:
        """How the first -H speaks: "" plain, "tls", or "verify" (client certificates)."""
        return self.tls.mode if self.docker_host.startswith("tcp://") else ""


def default_cert_path() -> Path:
    """dockerd's default place for its TLS files: $DOCKER_CERT_PATH, else $DOCKER_CONFIG,
    else ~/.docker (moby daemon/command/options.go)."""
    return Path(
        os.environ.get("DOCKER_CERT_PATH")
        or os.environ.get("DOCKER_CONFIG")
        or Path.home() / ".docker"
    )


def parse_bool(value: str) -> bool:
    """Go's strconv.ParseBool, which dockerd's --tls=VALUE uses."""
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {value!r}")


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
    certs = default_cert_path()
    for flag, help_text in (
        ("--tls", "use TLS on the tcp:// hosts; implied by --tlsverify"),
        ("--tlsverify", "use TLS and verify the remote (clients need a certificate from the CA)"),
    ):
        up.add_argument(
            flag,
            nargs="?",
            const=True,
            default=None,
            type=parse_bool,
            metavar="BOOL",
            help=help_text,
        )
    up.add_argument(
        "--tlscacert",
        default=str(certs / "ca.pem"),
        metavar="PATH",
        help="trust certs signed only by this CA",
    )
    up.add_argument(
        "--tlscert",
        default=str(certs / "cert.pem"),
        metavar="PATH",
        help="path to TLS certificate file",
    )
    up.add_argument(
        "--tlskey", default=str(certs / "key.pem"), metavar="PATH", help="path to TLS key file"
    )
    up.add_argument(
        "--api-allow-origin",
        action="append",
        dest="allow_origins",
        default=None,
        metavar="ORIGIN",
        help="let requests from this browser origin in (refused by default); repeatable, * for any",
    )
    up.add_argument(
        "--label",
        action="append",
        dest="labels",
        default=None,
        metavar="KEY=VALUE",
        help="a label of this engine (docker info, swarm constraints engine.labels.KEY); repeatable",
    )
    up.add_argument(
        "--node-generic-resource",
        action="append",
        dest="node_generic_resources",
        default=None,
        metavar="KIND=VALUE",
        help="a resource this node offers to swarm tasks (KIND=COUNT, or KIND=NAME per unit); repeatable",
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
    tls_given = ns.tls is True or ns.tlsverify is not None
    # dockerd: with --tls or --tlsverify and no -H, the default host is tcp://localhost:2376.
    default = DEFAULT_TLS_HOST if tls_given else DEFAULT_HOST
    hosts = tuple(validate_host(h) for h in (ns.hosts or [default]))
    if not 0 <= ns.nats_port < 65536:
        raise UsageError(f"invalid --nats-port {ns.nats_port}")
    if ns.nats_url and not ns.nats_url.startswith(("nats://", "tls://")):
        raise UsageError(f"invalid --nats-url {ns.nats_url!r}: expected nats://HOST:PORT")
    if ns.nats_creds and not ns.nats_url:
        raise UsageError("--nats-creds needs --nats-url (the embedded server's are generated)")
    tls = TLSSettings(
        tls=ns.tls,
        verify=ns.tlsverify,
        cacert=str(Path(ns.tlscacert).absolute()),
        cert=str(Path(ns.tlscert).absolute()),
        key=str(Path(ns.tlskey).absolute()),
    )
    check_tls(hosts, tls)
    for label in ns.labels or ():
        if "=" not in label or label.startswith("="):  # moby's opts.ValidateLabel
            raise UsageError(f"bad attribute format: {label}")
    try:
        parse_generic_resources(list(ns.node_generic_resources or ()))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return UpConfig(
        tls=tls,
        allow_origins=tuple(ns.allow_origins or ()),
        labels=tuple(ns.labels or ()),
        node_generic_resources=tuple(ns.node_generic_resources or ()),
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


def check_tls(hosts: tuple[str, ...], settings: TLSSettings) -> None:
    """dockerd's refusals, before anything starts: plain TCP on a non-loopback address without
    an explicit --tls=false/--tlsverify=false, and TLS files that cannot be used. The gateway
    owns the rules (it applies them again when started on its own, in compose)."""
    tcp = [(h, h[len("tcp://") :].rpartition(":")[0]) for h in hosts if h.startswith("tcp://")]
    try:
        check_plain_tcp(tcp, settings)
        if tcp:
            server_context(settings)
    except TLSConfigError as exc:
        raise UsageError(str(exc)) from None


def tls_argv(settings: TLSSettings) -> list[str]:
    """The flags that give `settings` again (for the re-executed background supervisor)."""
    out = [
        f"--tlscacert={settings.cacert}",
        f"--tlscert={settings.cert}",
        f"--tlskey={settings.key}",
    ]
    if settings.tls is not None:
        out.append(f"--tls={str(settings.tls).lower()}")
    if settings.verify is not None:
        out.append(f"--tlsverify={str(settings.verify).lower()}")
    return out
