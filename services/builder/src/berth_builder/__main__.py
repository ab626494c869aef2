"""`python -m berth_builder`: the image builder, serving subjects.BUILDER_RPC on NATS and the
context upload listener (BERTH_BUILDER_HTTP)."""

from __future__ import annotations

from berth_contracts import subjects
from berth_contracts.builder import BuilderRequest
from berth_kit.service import ServiceContext, run_service

from berth_builder.executor import EngineExecutors
from berth_builder.service import Builder, data_root, http_listen

SERVICE = "berth-builder"


async def serve(ctx: ServiceContext) -> None:
    builder = Builder(data_root(), EngineExecutors(ctx.rpc, ctx.nc), http_listen())
    await builder.start()

    ctx.on_stop(builder.stop, timeout=5)
    server = ctx.server(subjects.BUILDER_RPC, BuilderRequest, queue=subjects.BUILDER_QUEUE)
    builder.register(server)


def main() -> None:
    run_service(SERVICE, serve)


if __name__ == "__main__":
    main()
