"""The HTTP listener a service hands single-use URLs of (lifecycle's uploads, pulls, archives,
saves; the builder's contexts): bulk bytes go over HTTP, never over NATS."""

from __future__ import annotations

import os

from aiohttp import web


class BulkListener:
    """An aiohttp app on `listen` ("host:port", port 0 picks one); `base_url` is how others
    reach it: the bound port, and the host from `advertise_env` when it listens on every
    address (compose: the service's name), else its own address."""

    def __init__(self, listen: str, advertise_env: str) -> None:
        host, _, port = listen.rpartition(":")
        self.host, self.port = host or "127.0.0.1", int(port or 0)
        self.advertise_env = advertise_env
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def start(self, app: web.Application, *, handler_cancellation: bool = False) -> None:
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=handler_cancellation
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []  # the bound port is only here
        port = sockets[0].getsockname()[1] if sockets else self.port
        advertised = os.environ.get(self.advertise_env) or (
            "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        )
        self.base_url = f"http://{advertised}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
