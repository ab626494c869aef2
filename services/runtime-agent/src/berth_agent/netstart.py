"""A task's network setup, run alongside its creation: the agent makes the namespace and
netavark attaches it while the shim spawns and `runc create` runs (runc joins that namespace);
the process starts only once the setup is done (`result`)."""

from __future__ import annotations

import anyio
from berth_contracts.agent import TaskSpec
from opentelemetry import trace

from berth_agent.netsetup import NetworkSetup

tracer = trace.get_tracer("berth-runtime-agent")
# netavark's own timeout (60 s) plus as long again for the host's network lock.
TIMEOUT = 120.0


class NetworkStart:
    """Started in the agent's task group; `done` is set however it ends."""

    def __init__(self, net: NetworkSetup, cid: str, spec: TaskSpec) -> None:
        self.net, self.cid, self.spec = net, cid, spec
        self.done = anyio.Event()
        self.error: Exception | None = None
        # Whether netlink will do it (no netavark process): then it is as quick as the spawn.
        self.quick = bool(spec.networks) and net.quick(cid, spec)
        if not spec.networks:
            self.done.set()

    async def run(self) -> None:
        try:
            with tracer.start_as_current_span("network.setup"):
                await anyio.to_thread.run_sync(
                    self.net.setup, self.cid, self.spec, self.spec.hostname
                )
        except Exception as exc:  # noqa: BLE001 - raised in create, by result()
            self.error = exc
        finally:
            self.done.set()

    async def result(self) -> None:
        with anyio.fail_after(TIMEOUT):
            await self.done.wait()
        if self.error is not None:
            raise self.error
