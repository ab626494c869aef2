"""Connecting with credentials to a nats-server configured from the permission table."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import anyio
import nats
import pytest
from berth_contracts import subjects
from berth_contracts.base import Ping, Pong
from berth_contracts.buspermissions import API_GATEWAY, ENGINE, RUNTIME_AGENT
from berth_kit.busauth import creds_path, read_credentials
from berth_kit.nats_conn import connect
from berth_kit.rpc import RpcClient, RpcServer
from berth_kit.testing import authenticated_nats_server
from nats.errors import Error as NatsError

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def bus() -> Iterator[tuple[str, Path]]:
    with authenticated_nats_server() as found:
        yield found


async def test_without_credentials_the_connection_is_refused(bus: tuple[str, Path]) -> None:
    url, _ = bus
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)


async def test_a_service_talks_with_its_credentials(bus: tuple[str, Path]) -> None:
    """The engine commands the agent through the kit's RPC, as the services do; the answer comes
    back on the engine's own inbox without any publish right on it (allow_responses)."""
    url, bus_dir = bus
    agent = await connect(url, RUNTIME_AGENT, 10, str(creds_path(bus_dir, RUNTIME_AGENT)))
    engine = await connect(url, ENGINE, 10, str(creds_path(bus_dir, ENGINE)))
    try:
        async with anyio.create_task_group() as tg:
            server = RpcServer(agent, subjects.agent_rpc("n1"), Ping, queue=subjects.AGENT_QUEUE)

            async def pong(_: Ping) -> Pong:
                return Pong(service=RUNTIME_AGENT, pid=1, node="n1")

            server.handle(Ping, pong)
            await server.start(tg)
            reply = await RpcClient(engine).request(subjects.agent_rpc("n1"), Ping(), Pong, timeout=5)
            assert reply.service == RUNTIME_AGENT
            assert engine.new_inbox().startswith(subjects.inbox_prefix(ENGINE) + ".")
            await server.stop()
    finally:
        await agent.close()
        await engine.close()


class _Watch(logging.Handler):
    def __init__(self, words: str) -> None:
        super().__init__(logging.WARNING)
        self.words = words
        self.seen = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.words in record.getMessage():
            self.seen.set()


async def test_a_publish_outside_the_table_is_refused_and_logged(bus: tuple[str, Path]) -> None:
    """The gateway may not command the agent: the server drops it and says so; the kit logs it
    at warning level."""
    url, bus_dir = bus
    watch = _Watch("NATS refused: nats: permissions violation for publish")
    logging.getLogger("berth_kit.nats_conn").addHandler(watch)
    agent = await connect(url, RUNTIME_AGENT, 10, str(creds_path(bus_dir, RUNTIME_AGENT)))
    gateway = await connect(url, API_GATEWAY, 10, str(creds_path(bus_dir, API_GATEWAY)))
    try:
        sub = await agent.subscribe(subjects.agent_rpc("n1"))
        await agent.flush()
        await gateway.publish(subjects.agent_rpc("n1"), b"TaskCreate privileged")
        await gateway.flush()
        with anyio.fail_after(5):
            await watch.seen.wait()
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=0.5)
    finally:
        logging.getLogger("berth_kit.nats_conn").removeHandler(watch)
        await agent.close()
        await gateway.close()


async def test_one_service_cannot_read_another_services_replies(bus: tuple[str, Path]) -> None:
    url, bus_dir = bus
    errors: list[Exception] = []
    refused = anyio.Event()

    async def on_error(exc: Exception) -> None:
        errors.append(exc)
        refused.set()

    creds = read_credentials(creds_path(bus_dir, API_GATEWAY))
    spy = await nats.connect(
        url, user=creds.user, password=creds.password, error_cb=on_error, allow_reconnect=False
    )
    try:
        await spy.subscribe(f"{subjects.inbox_prefix(ENGINE)}.>")
        await spy.flush()
        with anyio.fail_after(5):
            await refused.wait()
        assert "permissions violation for subscription" in str(errors[0])
    finally:
        await spy.close()
