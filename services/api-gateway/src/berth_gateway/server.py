"""The gateway service: serve the Docker API on every configured host until asked to stop."""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import ssl
import stat
from pathlib import Path

from aiohttp import web
from berth_kit.service import ServiceContext

from berth_gateway.apitls import api_warnings, check_plain_tcp, server_context, settings_from_env
from berth_gateway.app import build_app
from berth_gateway.backend import Backend
from berth_gateway.connlimits import LimitedServer
from berth_gateway.hosts import Listen, configured_hosts
from berth_gateway.routes.system import API_WARNINGS_KEY
from berth_gateway.tlsfront import TLSSite

log = logging.getLogger(__name__)
ACCESS_LOG = logging.getLogger("berth_gateway.access")

SERVICE_NAME = "berth-api-gateway"
SOCKET_MODE = 0o660
SOCKET_GROUP = "docker"
# Streams (events, wait, logs -f, attach) can last forever; on shutdown they get this long.
SHUTDOWN_TIMEOUT = 2.0
MAX_HEADER_BYTES = 256 * 1024


class GatewayRunner(web.AppRunner):
    """An AppRunner whose connections can be hijacked (hijack.py), within limits (connlimits.py)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = LimitedServer
        return server


def _remove_stale_socket(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise RuntimeError(f"{path} exists and is not a socket")
    os.unlink(path)


def _give_to_docker_group(path: str) -> None:
    """Like dockerd: members of the `docker` group may use the socket (if that group exists)."""
    try:
        gid = grp.getgrnam(SOCKET_GROUP).gr_gid
    except KeyError:
        return
    try:
        os.chown(path, -1, gid)
    except OSError as exc:
        log.warning("cannot give %s to group %s: %s", path, SOCKET_GROUP, exc)


async def start_sites(
    runner: web.AppRunner, hosts: list[Listen], tls: ssl.SSLContext | None = None
) -> list[web.BaseSite]:
    """tls: the context of the tcp:// hosts (unix sockets never speak TLS, as dockerd's)."""
    sites: list[web.BaseSite] = []
    for host in hosts:
        site: web.BaseSite
        if host.kind == "unix":
            Path(host.path).parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_socket(host.path)
            site = web.UnixSite(runner, host.path)
            await site.start()
            os.chmod(host.path, SOCKET_MODE)
            _give_to_docker_group(host.path)
        else:
            site = (
                TLSSite(runner, host.host, host.port, tls)
                if tls is not None
                else web.TCPSite(runner, host.host, host.port)
            )
            await site.start()
        log.info("listening on %s%s", host, " (TLS)" if tls and host.kind == "tcp" else "")
        sites.append(site)
    return sites


async def serve(ctx: ServiceContext) -> None:
    """run_service's main: start listening, and stop listening when the service stops."""
    hosts = configured_hosts()
    tls_settings = settings_from_env()
    check_plain_tcp(((str(h), h.host) for h in hosts if h.kind == "tcp"), tls_settings)
    tls = server_context(tls_settings)
    app = build_app(Backend(rpc=ctx.rpc, nc=ctx.nc))
    tcp = [f"{h.host}:{h.port}" for h in hosts if h.kind == "tcp"]
    app[API_WARNINGS_KEY] = api_warnings(tcp, tls_settings)
    if tcp and not tls_settings.verifies_clients:
        log.warning(
            "Binding to IP address without --tlsverify is insecure and gives root access on"
            " this machine to everyone who has access to your network (%s)",
            ", ".join(tcp),
        )
    # handler_cancellation: a client that hangs up (docker run -d drops its /wait) cancels its
    # handler, which is how long waits and streams end and release their subscriptions.
    runner = GatewayRunner(
        app,
        handler_cancellation=True,
        # Access logs only when debugging: at INFO they would drown the suite's shared log.
        access_log=ACCESS_LOG if log.isEnabledFor(logging.DEBUG) else None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        # Long query strings (filters with many labels) and registry auth headers exceed
        # aiohttp's 8 KiB defaults; Go's server allows 1 MiB of headers in all (connlimits.py).
        max_line_size=MAX_HEADER_BYTES,
        max_field_size=MAX_HEADER_BYTES,
    )
    await runner.setup()
    try:
        await start_sites(runner, hosts, tls)
    except BaseException:
        await runner.cleanup()
        raise

    async def close() -> None:
        try:
            await runner.cleanup()  # waits up to SHUTDOWN_TIMEOUT for requests in flight
        finally:
            for host in hosts:
                if host.kind == "unix":
                    with contextlib.suppress(OSError):
                        os.unlink(host.path)

    ctx.on_stop(close, timeout=SHUTDOWN_TIMEOUT + 3)
