"""`python -m berth_lifecycle`: containerd's role, serving lifecycle_rpc(node) on NATS."""

from __future__ import annotations

import anyio
from anyio import to_thread
from berth_contracts import subjects
from berth_contracts.lifecycle import LifecycleRequest
from berth_kit.service import ServiceContext, run_service

from berth_lifecycle.events import nats_publisher
from berth_lifecycle.service import Lifecycle, data_root, http_listen

SERVICE = "berth-lifecycle"


async def serve(ctx: ServiceContext) -> None:
    root = data_root()
    lifecycle = await to_thread.run_sync(Lifecycle.open, root, nats_publisher(ctx.nc), http_listen())
    await lifecycle.uploads.start()

    async def close() -> None:
        try:
            with anyio.move_on_after(5):
                await lifecycle.uploads.stop()
        finally:
            lifecycle.close()

    ctx.on_stop(close)
    server = ctx.server(subjects.lifecycle_rpc(ctx.node), LifecycleRequest, queue=subjects.LIFECYCLE_QUEUE)
    lifecycle.register(server)


def main() -> None:
    run_service(SERVICE, serve)


if __name__ == "__main__":
    main()
