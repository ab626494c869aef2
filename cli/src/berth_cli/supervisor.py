"""The foreground supervisor behind `berth up`: nats-server first, then the services; the
reverse on SIGTERM/SIGINT. Keeps <exec-root>/berth.json current for `down` and `status`."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import anyio
from anyio.abc import TaskStatus
from berth_contracts.buspermissions import STATUS
from berth_kit.busauth import (
    CREDS_ENV,
    SERVER_CONFIG,
    CredentialsError,
    creds_path,
    jetstream_settings,
    read_credentials,
    write_bus_dir,
)
from berth_kit.diskmodes import ensure_dir, lock_down_roots
from berth_kit.swarmbus import SWARM_BUS_ENV, SWARM_BUS_FILE, read_swarm_bus

from berth_cli import apiprobe, listeners, natsd, procs, swarmwatch
from berth_cli.apiprobe import use_hint
from berth_cli.child import Child, Launch
from berth_cli.config import LOCK_FILE, UpConfig, UsageError
from berth_cli.forkclient import ForkedProcess, ForkServer, Preforked
from berth_cli.forkserver import LISTEN_FD_ENV
from berth_cli.state import BerthState, ChildState, NatsState, read_state, remove_state, write_state

log = logging.getLogger("berth.supervisor")

NATS_READY_TIMEOUT = 15.0
NATS_STOP_GRACE = 5.0  # nats-server stops in milliseconds; do not let it eat `down`'s budget
GATEWAY = "berth-api-gateway"
GATEWAY_HEAD_START = 3.0
# "0" starts each service as its own `python -m MODULE` instead of forking it from the
# forkserver (berth_cli.forkserver): same behaviour, several times the idle memory.
FORKSERVER_ENV = "BERTH_FORKSERVER"


class AlreadyRunning(UsageError):
    pass


class PortInUse(UsageError):
    pass


def acquire_lock(exec_root: Path) -> int:
    """Hold <exec-root>/berth.lock for the supervisor's life: one berth per exec root.

    The kernel drops the lock when the supervisor dies, however it dies. The descriptor is not
    inherited by children (Python opens it close-on-exec).
    """
    fd = os.open(exec_root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        old = read_state(exec_root / "berth.json")
        pid = f" (pid {old.supervisor_pid})" if old else ""
        raise AlreadyRunning(f"berth is already running with exec root {exec_root}{pid}") from None
    return fd


def reap_stale(path: Path) -> None:
    """A supervisor that died hard may have left services behind: stop them before starting."""
    old = read_state(path)
    if old is None or procs.alive(old.supervisor_pid, old.supervisor_start_ticks):
        return
    # Services first, together; nats-server last (services drain into it). Pid by pid, each
    # checked against its start time, never a process group: containers stay up.
    servers = [c for c in (old.nats.process, old.nats.swarm_server) if c is not None]
    for group in (old.services, servers):
        live = [c for c in group if procs.alive(c.pid, c.start_ticks)]
        for c in live:
            log.warning("stopping leftover %s (pid %d) of a previous berth", c.name, c.pid)
        procs.terminate_all([(c.pid, c.start_ticks) for c in live], grace=10.0)
    remove_state(path)


API_SECURITY_ENV = (
    "BERTH_TLS",
    "BERTH_TLSVERIFY",
    "BERTH_TLSCACERT",
    "BERTH_TLSCERT",
    "BERTH_TLSKEY",
    "BERTH_API_ALLOW_ORIGINS",
)


REGISTRY_PROXY_MODULE = "berth_registry_proxy"


def service_env(cfg: UpConfig, nats_url: str) -> tuple[dict[str, str], dict[str, socket.socket]]:
    """The services' environment, and the listening sockets bound for them (by module)."""
    from berth_kit.node import ENGINE_LABELS_ENV, NODE_RESOURCES_ENV, default_node  # stdlib only


    env = dict(os.environ)  # passes OTEL_* and the like through
    env.pop(CREDS_ENV, None)  # each service gets its own (own_env), never one from outside
    env.update(
        BERTH_NATS_URL=nats_url,
        BERTH_DATA_ROOT=str(cfg.data_root),
        BERTH_EXEC_ROOT=str(cfg.exec_root),
        BERTH_HOSTS=",".join(cfg.hosts),
        BERTH_NODE=default_node(),
        **{ENGINE_LABELS_ENV: "\n".join(cfg.labels), NODE_RESOURCES_ENV: "\n".join(cfg.node_generic_resources)},
        # Service logs go to a file when detached: do not let them sit in buffers.
        PYTHONUNBUFFERED="1",
    )
    api_security_env(cfg, env)
    return env, {REGISTRY_PROXY_MODULE: registry_proxy_env(env)}


def api_security_env(cfg: UpConfig, env: dict[str, str]) -> None:
    """The gateway's TLS settings and allowed browser origins: only what berth up was given."""
    for name in API_SECURITY_ENV:
        env.pop(name, None)
    env.update(cfg.tls.env())
    if cfg.allow_origins:
        env["BERTH_API_ALLOW_ORIGINS"] = ",".join(cfg.allow_origins)


def registry_proxy_env(env: dict[str, str]) -> socket.socket:
    """Where registry-proxy listens (a free loopback port unless given) and how lifecycle
    reaches it; its cache goes under <data-root>/registry-proxy (its own default).
    The socket is bound here, once, and inherited by the service (berth_cli.listeners)."""
    listen = env.get("BERTH_REGISTRY_PROXY_LISTEN") or "127.0.0.1:0"
    try:
        sock = listeners.bind_tcp(listen)
    except OSError as exc:
        raise PortInUse(
            f"cannot listen on {listen} for the registry-proxy: {exc.strerror or exc}"
            " (set BERTH_REGISTRY_PROXY_LISTEN to another HOST:PORT)"
        ) from None
    env["BERTH_REGISTRY_PROXY_LISTEN"] = listeners.address(sock)
    if not env.get("BERTH_REGISTRY_PROXY_URL"):
        host, _, port = env["BERTH_REGISTRY_PROXY_LISTEN"].rpartition(":")
        host = "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host
        env["BERTH_REGISTRY_PROXY_URL"] = f"http://{host}:{port}"
    return sock


ORCHESTRATOR = "berth-orchestrator"


def own_env(env: dict[str, str], bus_dir: Path | None, identity: str, embedded: bool = False) -> dict[str, str]:
    """The service environment plus the path of this service's credentials, and no other's;
    the orchestrator of an embedded NATS also gets the file that says what the bus carries
    between swarm nodes (berth_kit.swarmbus)."""
    if bus_dir is None:
        return env
    out = {**env, CREDS_ENV: str(creds_path(bus_dir, identity))}
    if embedded and identity == ORCHESTRATOR:
        out[SWARM_BUS_ENV] = str(bus_dir / SWARM_BUS_FILE)
    return out


def bus_settings(cfg: UpConfig) -> tuple[str, ...]:
    """The embedded nats-server's settings: JetStream for the swarm's state."""
    # JetStream's store holds the swarm's join tokens: the directory is private (0700).
    swarm_dir = ensure_dir(cfg.data_root / "swarm")
    return jetstream_settings(swarm_dir / "jetstream")


def prepare_bus(cfg: UpConfig) -> Path | None:
    """Embedded NATS: credentials (created if missing) and a fresh server config in
    <data-root>/nats. External: check the given credentials; without any, say what happens."""
    bus_dir = cfg.bus_dir
    if not cfg.nats_url:
        assert bus_dir is not None
        write_bus_dir(bus_dir, bus_settings(cfg), swarm=read_swarm_bus(bus_dir / SWARM_BUS_FILE))
        return bus_dir
    if bus_dir is None:
        log.warning(
            "--nats-url without --nats-creds: the services connect to %s without credentials;"
            " a NATS that requires them refuses every service (see berth bus-init)",
            cfg.nats_url,
        )
        return None
    for identity in {spec.name for spec in cfg.services} | {STATUS}:
        try:
            read_credentials(creds_path(bus_dir, identity))
        except CredentialsError as exc:
            raise UsageError(f"--nats-creds: {exc}") from None
    return bus_dir


def forkserver_enabled() -> bool:
    return os.environ.get(FORKSERVER_ENV, "1") != "0"


class Supervisor:
    def __init__(self, cfg: UpConfig, preforked: Preforked | None = None) -> None:
        """preforked: the forkserver forked before the event loop (forkclient.prefork)."""
        self.cfg = cfg
        self._preforked = preforked
        self._stop = anyio.Event()
        self._nats_child: Child | None = None
        self._services: list[Child] = []
        self._forkserver: ForkServer | None = None
        self._state: BerthState | None = None
        self._listeners: dict[str, socket.socket] = {}

    def _write(self) -> None:
        if self._state is not None:
            write_state(self.cfg.state_path, self._state)

    async def run(self) -> None:
        cfg = self.cfg
        lock_down_roots(cfg.data_root, cfg.exec_root)
        for host in cfg.hosts:  # the gateway binds there; dockerd creates the directory too
            if host.startswith("unix://"):
                Path(host[len("unix://") :]).parent.mkdir(parents=True, exist_ok=True)
        lock_fd = acquire_lock(cfg.exec_root)
        try:
            await anyio.to_thread.run_sync(reap_stale, cfg.state_path)
            await self._supervise()
        finally:
            for sock in self._listeners.values():
                sock.close()
            remove_state(cfg.state_path)
            os.close(lock_fd)

    async def _supervise(self) -> None:
        cfg = self.cfg
        bus_dir = await anyio.to_thread.run_sync(prepare_bus, cfg)
        creds_dir = str(bus_dir) if bus_dir is not None else ""
        if cfg.nats_url:
            nats_url = cfg.nats_url
            nats = NatsState(url=nats_url, embedded=False, creds_dir=creds_dir)
        else:
            port = natsd.pick_port(cfg.nats_port)
            if natsd.port_in_use(port):
                raise PortInUse(
                    f"port {port} is in use: cannot start the embedded nats-server"
                    " (choose another with --nats-port, 0 for any, or use --nats-url)"
                )
            nats_url = f"nats://127.0.0.1:{port}"
            assert bus_dir is not None
            nats = NatsState(
                url=nats_url,
                embedded=True,
                process=ChildState(name="nats-server"),
                creds_dir=creds_dir,
            )
            assert nats.process is not None
            self._nats_child = Child(
                nats.process,
                natsd.nats_argv(port, bus_dir / SERVER_CONFIG),
                dict(os.environ),
                self._write,
                stop_grace=NATS_STOP_GRACE,
            )
        env, self._listeners = service_env(cfg, nats_url)
        if forkserver_enabled():
            modules = [spec.module for spec in cfg.services]
            self._forkserver = ForkServer(modules, env, self._preforked, self._forkserver_changed)
        self._services = []
        for spec in cfg.services:
            sock = self._listeners.get(spec.module)
            fds = (sock.fileno(),) if sock is not None else ()
            child_env = own_env(env, bus_dir, spec.name, embedded=not cfg.nats_url)
            if fds:
                child_env = {**child_env, LISTEN_FD_ENV: str(fds[0])}
            self._services.append(
                Child(
                    ChildState(name=spec.name, module=spec.module),
                    [sys.executable, "-m", spec.module],
                    child_env,
                    self._write,
                    launch=self._forked(spec.module, spec.name, child_env, fds),
                    pass_fds=fds,
                )
            )
        self._state = BerthState(
            supervisor_pid=os.getpid(),
            supervisor_start_ticks=procs.start_ticks(os.getpid()),
            data_root=str(cfg.data_root),
            exec_root=str(cfg.exec_root),
            hosts=list(cfg.hosts),
            docker_host=cfg.docker_host,
            api_tls=cfg.api_tls,
            log_file=str(cfg.log_path) if cfg.daemonized else "",
            nats=nats,
            services=[c.state for c in self._services],
        )
        self._write()

        async with anyio.create_task_group() as tg:
            # Signals are handled before anything is started, so none is missed.
            await tg.start(self._watch_signals)
            if self._nats_child is not None:
                tg.start_soon(self._nats_child.run)
                await self._wait_nats(nats_url)
                assert bus_dir is not None
                tg.start_soon(
                    swarmwatch.watch_swarm_bus,
                    bus_dir, bus_dir / SWARM_BUS_FILE, lambda: bus_settings(cfg), self._nats_child,
                    self._swarm_server_state,
                )  # fmt: skip
            if self._forkserver is not None:
                await tg.start(self._forkserver.run)
            if not self._stop.is_set():
                for child in self._services:
                    tg.start_soon(child.run)
                tg.start_soon(self._announce_when_ready)
            await self._stop.wait()
            await self._stop_all()
            tg.cancel_scope.cancel()
        log.info("berth stopped")

    def _swarm_server_state(self, state: ChildState | None) -> None:
        if self._state is not None:
            self._state.nats.swarm_server = state
            self._write()

    def _forkserver_changed(self, pid: int) -> None:
        if self._state is not None:
            self._state.forkserver_pid = pid
            self._write()

    def _forked(
        self, module: str, title: str, env: dict[str, str], fds: tuple[int, ...] = ()
    ) -> Launch | None:
        forkserver = self._forkserver
        if forkserver is None:
            return None

        async def launch() -> ForkedProcess:
            return await forkserver.spawn(module, title, env, fds)

        return launch

    async def _wait_nats(self, url: str) -> None:
        with anyio.move_on_after(NATS_READY_TIMEOUT):
            while not self._stop.is_set():
                if await anyio.to_thread.run_sync(natsd.reachable, url):
                    log.info("nats-server ready at %s", url)
                    return
                await anyio.sleep(0.05)
        # Services retry their NATS connection, and the nats child keeps being restarted.
        log.error("nats-server not reachable at %s after %.0fs", url, NATS_READY_TIMEOUT)

    async def _announce_when_ready(self) -> None:
        host = self.cfg.docker_host
        while not self._stop.is_set():
            if await anyio.to_thread.run_sync(apiprobe.ping, host, 1.0, self.cfg.api_tls):
                log.info("API answers on %s", host)
                if not self.cfg.daemonized:
                    try:
                        print(f"berth is up. To use it:\n{use_hint(self.cfg)}", flush=True)
                    except OSError:  # stdout closed (`berth up | head`): not worth dying for
                        pass
                return
            await anyio.sleep(0.25)

    async def _watch_signals(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            task_status.started()
            async for signum in signals:
                name = signal.Signals(signum).name
                if self._stop.is_set():
                    # The stop is bounded (SIGKILL after the grace); a second Ctrl-C must not
                    # abandon services half-stopped.
                    log.info("received %s; already stopping", name)
                    continue
                log.info("received %s; stopping", name)
                self._stop.set()

    async def _stop_all(self) -> None:
        # The gateway goes first so no new request arrives while the rest stop; the other
        # services follow once it is gone (or after a head start, so the whole stop stays well
        # inside `berth down`'s 30 s); nats-server last, so the services can drain into it.
        gateway = [c for c in self._services if c.name == GATEWAY]
        others = [c for c in self._services if c.name != GATEWAY]
        gateway_gone = anyio.Event()

        async def stop_gateway() -> None:
            for child in gateway:
                await child.stop()
            gateway_gone.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_gateway)
            with anyio.move_on_after(GATEWAY_HEAD_START):
                await gateway_gone.wait()
            for child in others:
                tg.start_soon(child.stop)
        if self._forkserver is not None:
            await self._forkserver.stop()
        if self._nats_child is not None:
            await self._nats_child.stop()
