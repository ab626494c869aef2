from __future__ import annotations

import json
import uuid
from pathlib import Path

import anyio
from agent_testlib import client, spec


def test_echo(agent, rootfs: Path, nats_url: str) -> None:
    async def main() -> None:
        async with client(nats_url, agent.node) as c:
            cid = uuid.uuid4().hex + uuid.uuid4().hex
            out = await c.collect_output(cid)
            await c.run(cid, rootfs, spec("echo", "hello"))
            ev = await c.wait_exit(cid)
            await out.wait_eof()
            assert out.data(1) == b"hello\n"
            assert ev.exit_code == 0
            log = agent.data_root / "agent" / "containers" / cid / f"{cid}-json.log"
            rec = json.loads(log.read_text().splitlines()[0])
            assert rec["log"] == "hello\n"
            await c.delete(cid)

    anyio.run(main)
