"""The bus of a real `berth up` is locked: no anonymous client gets in, from the host or from a
container, and one service's credentials allow only that service's publishes and
subscriptions (berth_contracts.buspermissions)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import anyio
import nats
import pytest
from berth_contracts import subjects
from berth_contracts.agent import TaskListAll
from berth_contracts.buspermissions import API_GATEWAY
from berth_contracts.codec import encode
from berth_kit.busauth import creds_path, read_credentials
from berth_kit.node import default_node
from berth_kit.testing import ANONYMOUS_NATS_PROBE
from harness import Berth, wait_until
from nats.aio.msg import Msg

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

# CONNECT without credentials, then PING: an open server answers PONG.
ANONYMOUS = "CONNECT {}\r\nPING\r\n"
SECRET = "SECRET_TOKEN=bus-e2e-hunter2"


def nats_port(berth: Berth) -> int:
    return int(berth.status()["nats"]["url"].rsplit(":", 1)[1])


def test_user_nobody_cannot_connect(berth: Berth) -> None:
    res = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         "/usr/bin/python3", "-c", ANONYMOUS_NATS_PROBE, "127.0.0.1", str(nats_port(berth))],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "PONG" not in res.stdout
    assert "-ERR 'Authorization Violation'" in res.stdout
    # And the credentials are out of its reach: the bus directory is root's alone.
    bus = berth.data_root / "nats"
    assert bus.stat().st_mode & 0o077 == 0
    assert creds_path(bus, API_GATEWAY).stat().st_mode & 0o077 == 0
    # nats-server says so in berth's log.
    wait_until(
        lambda: "authentication error" in berth.log_tail(400), 15, "the refusal in berth.log"
    )


def test_a_host_network_container_cannot_connect(berth: Berth, busybox_image: str) -> None:
    port = nats_port(berth)
    shell = f"(printf '{ANONYMOUS}'; sleep 1) | nc 127.0.0.1 {port}"
    out = berth.docker_ok(
        "run", "--rm", "--network", "host", "--user", "65534", busybox_image, "sh", "-c", shell,
        timeout=60,
    )  # fmt: skip
    assert out.startswith("INFO "), out  # it did reach the server
    assert "PONG" not in out
    assert "-ERR 'Authorization Violation'" in out


def gateway_auth(berth: Berth) -> dict[str, Any]:
    """Connect options with the gateway's credentials (none where berth generated none)."""
    path = creds_path(berth.data_root / "nats", API_GATEWAY)
    if not path.exists():
        return {}
    creds = read_credentials(path)
    return {"user": creds.user, "password": creds.password,
            "inbox_prefix": subjects.inbox_prefix(API_GATEWAY)}  # fmt: skip


class Spy:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.refused = anyio.Event()
        self.payloads: list[tuple[str, bytes]] = []
        self.destroyed = anyio.Event()

    async def on_error(self, exc: Exception) -> None:
        self.errors.append(str(exc))
        if "permissions violation" in str(exc):
            self.refused.set()

    async def on_msg(self, msg: Msg) -> None:
        self.payloads.append((msg.subject, msg.data))
        if b"destroy" in msg.data:
            self.destroyed.set()


@contextlib.asynccontextmanager
async def connected(berth: Berth, spy: Spy) -> AsyncIterator[nats.NATS]:
    nc = await nats.connect(
        berth.status()["nats"]["url"],
        error_cb=spy.on_error,
        allow_reconnect=False,
        connect_timeout=5,
        name="bus-e2e-spy",
        **gateway_auth(berth),
    )
    try:
        yield nc
    finally:
        await nc.close()


def test_gateway_credentials_cannot_command_the_agent(berth: Berth) -> None:
    async def main() -> tuple[Spy, str]:
        spy = Spy()
        async with connected(berth, spy) as nc:
            subject = subjects.agent_rpc(default_node())
            try:
                await nc.request(subject, encode(TaskListAll()), timeout=3)
                answered = "answered"
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
                answered = type(exc).__name__
            with anyio.move_on_after(5):
                await spy.refused.wait()
        return spy, answered

    spy, answered = anyio.run(main)
    assert answered != "answered"
    assert any("permissions violation for publish" in e and "agent" in e for e in spy.errors), spy.errors


def test_gateway_credentials_read_nothing_secret(berth: Berth, busybox_image: str) -> None:
    """Subscribing to everything is refused, and what the gateway may read of a `docker run -e`
    (events, output) does not carry the environment."""

    async def main() -> Spy:
        spy = Spy()
        async with connected(berth, spy) as nc:
            for subject in (">", subjects.ENGINE_RPC, subjects.agent_rpc("*"),
                            subjects.DOCKER_EVENTS_ALL, subjects.stdio_out("*")):  # fmt: skip
                await nc.subscribe(subject, cb=spy.on_msg)
            await nc.flush()
            await anyio.to_thread.run_sync(
                lambda: berth.docker_ok("run", "--rm", "--network", "none", "-e", SECRET,
                                        busybox_image, "true")  # fmt: skip
            )
            await nc.flush()
            with anyio.move_on_after(5):  # the last events (die, destroy) on their way
                await spy.destroyed.wait()
        return spy

    spy = anyio.run(main)
    leaked = [subject for subject, data in spy.payloads if b"hunter2" in data]
    assert not leaked, f"the secret went by on {leaked}"
    refused = [e for e in spy.errors if "permissions violation for subscription" in e]
    assert any('">"' in e for e in refused), spy.errors
    assert any(subjects.ENGINE_RPC in e for e in refused), spy.errors
    # It did see what it may see: the run's events.
    assert any(s.startswith("berth.events.v1.docker.container.") for s, _ in spy.payloads)
