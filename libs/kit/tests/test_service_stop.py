"""A service's stop, in a real process on a real nats-server: on SIGTERM the request in flight is
answered first, then the on_stop cleanups run (last registered first), while NATS is still up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
from berth_contracts import subjects
from berth_contracts.base import Ping, Pong
from berth_kit.nats_conn import connect
from berth_kit.rpc import RpcClient
from berth_kit.testing import nats_server

SERVICE = textwrap.dedent(
    """
    import sys, anyio
    from berth_contracts.base import Ping, Pong
    from berth_kit.service import run_service

    journal = open(sys.argv[1], "a", buffering=1)

    async def main(ctx):
        server = ctx.server("t.stop", Ping)

        async def slow(_):
            journal.write("request began\\n")
            await anyio.sleep(1.0)
            journal.write("request answered\\n")
            return Pong(service="t", pid=0, node=ctx.node)

        server.handle(Ping, slow)

        async def first():
            journal.write("cleanup registered first\\n")

        async def second():
            await ctx.nc.publish("t.still.connected", b"")  # NATS is still up
            journal.write("cleanup registered second\\n")

        ctx.on_stop(first)
        ctx.on_stop(second)

    run_service("berth-test", main)
    """
)


def test_stop_answers_in_flight_then_runs_cleanups_in_reverse(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    journal.touch()
    with nats_server() as url:
        env = dict(os.environ, BERTH_NATS_URL=url, BERTH_NODE="n1")
        proc = subprocess.Popen([sys.executable, "-c", SERVICE, str(journal)], env=env)
        try:

            async def main() -> Pong:
                nc = await connect(url, "caller")
                try:
                    client = RpcClient(nc)
                    with anyio.fail_after(20):
                        while True:  # until the service serves
                            try:
                                health = subjects.health("berth-test")
                                await client.request(health, Ping(), Pong, timeout=0.5, attempts=1)
                                break
                            except Exception:  # noqa: BLE001 - not up yet
                                await anyio.sleep(0.1)
                    async with anyio.create_task_group() as tg:
                        box: list[Pong] = []

                        async def call() -> None:
                            box.append(await client.request("t.stop", Ping(), Pong, timeout=10))

                        tg.start_soon(call)
                        while "request began" not in journal.read_text():  # noqa: ASYNC110 - a file another process writes
                            await anyio.sleep(0.02)
                        proc.send_signal(signal.SIGTERM)
                    return box[0]
                finally:
                    await nc.close()

            pong = anyio.run(main)
            assert pong.service == "t"
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    assert journal.read_text().splitlines() == [
        "request began",
        "request answered",
        "cleanup registered second",
        "cleanup registered first",
    ]
