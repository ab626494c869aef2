"""RpcServer/RpcClient against a real nats-server."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from berth_contracts.base import Command, Done, Reply
from berth_contracts.errors import InvalidParameter, NotFound
from berth_contracts.identifiers import Identifier
from berth_kit.nats_conn import connect
from berth_kit.rpc import RpcClient, RpcServer
from berth_kit.testing import nats_server


class Echo(Command, frozen=True):
    text: str


class Missing(Command, frozen=True):
    name: str


class Slow(Command, frozen=True):
    pass


class Echoed(Reply, frozen=True):
    text: str


@pytest.fixture(scope="module")
def nats_url() -> Iterator[str]:
    with nats_server() as url:
        yield url


def test_round_trip_errors_idempotency_and_concurrency(nats_url: str) -> None:
    calls = {"echo": 0}

    async def main() -> None:
        nc = await connect(nats_url, "test")
        async with anyio.create_task_group() as tg:
            server = RpcServer(nc, "t.rpc", Echo | Missing | Slow, queue="q", limit=8)

            async def echo(cmd: Echo) -> Echoed:
                calls["echo"] += 1
                return Echoed(text=cmd.text)

            async def missing(cmd: Missing) -> Done:
                raise NotFound(f"No such container: {cmd.name}")

            async def slow(_: Slow) -> Done:
                await anyio.sleep(0.3)
                return Done()

            server.handle(Echo, echo)
            server.handle(Missing, missing)
            server.handle(Slow, slow)
            await server.start(tg)
            client = RpcClient(nc)

            assert (await client.request("t.rpc", Echo(text="hi"), Echoed)).text == "hi"
            with pytest.raises(NotFound, match="No such container: x"):
                await client.request("t.rpc", Missing(name="x"), Done)

            # The same idempotency key twice runs the handler once.
            before = calls["echo"]
            for _ in range(2):
                await client.request("t.rpc", Echo(text="k", idempotency_key="abc"), Echoed)
            assert calls["echo"] == before + 1

            # Requests on one subscription run concurrently, not one after another.
            start = anyio.current_time()
            async with anyio.create_task_group() as inner:
                for _ in range(6):
                    inner.start_soon(client.request, "t.rpc", Slow(), Done)
            assert anyio.current_time() - start < 1.5
            tg.cancel_scope.cancel()
        await nc.close()

    anyio.run(main)


def test_no_responders_is_unavailable(nats_url: str) -> None:
    from berth_contracts.errors import Unavailable

    async def main() -> None:
        nc = await connect(nats_url, "test")
        with pytest.raises(Unavailable):
            await RpcClient(nc).request("nobody.home", Echo(text="x"), Echoed, timeout=0.5, attempts=2)
        await nc.close()

    anyio.run(main)


class Named(Command, frozen=True):
    container_id: Identifier


def test_a_field_that_breaks_its_contract_is_invalid_parameter(nats_url: str) -> None:
    """Refused while decoding, before any handler: the caller gets a 400, not a 500."""
    handled: list[str] = []

    async def main() -> None:
        nc = await connect(nats_url, "test-ids")
        async with anyio.create_task_group() as tg:
            server = RpcServer(nc, "t.ids", Named)

            async def named(cmd: Named) -> Done:
                handled.append(cmd.container_id)
                return Done()

            server.handle(Named, named)
            await server.start(tg)
            client = RpcClient(nc)
            await client.request("t.ids", Named(container_id="abc"), Done)
            with pytest.raises(InvalidParameter, match='invalid container_id: identifier "../x"'):
                await client.request("t.ids", Named(container_id="../x"), Done, attempts=1)
            await server.stop()
            tg.cancel_scope.cancel()
        await nc.close()

    anyio.run(main)
    assert handled == ["abc"]


def test_a_server_missing_a_handler_refuses_to_start(nats_url: str) -> None:
    async def main() -> None:
        nc = await connect(nats_url, "test")
        try:
            async with anyio.create_task_group() as tg:
                server = RpcServer(nc, "t.partial", Echo | Missing | Slow)

                async def echo(cmd: Echo) -> Echoed:
                    return Echoed(text=cmd.text)

                server.handle(Echo, echo)
                assert server.unhandled() == ["Missing", "Slow"]
                with pytest.raises(ValueError, match="no handler on t.partial for: Missing, Slow"):
                    await server.start(tg)
        finally:
            await nc.close()

    anyio.run(main)
