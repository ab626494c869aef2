"""Listening sockets are bound once by the supervisor and handed to the service, so the port
cannot be taken between a pick and a bind (issue 15, finding 6)."""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path

import anyio
import pytest
from berth_cli.forkclient import ForkServer
from berth_cli.supervisor import registry_proxy_env

pytestmark = pytest.mark.timeout(60)

PROBE = """
import os, sys
from berth_kit.listen import inherited_sockets
[sock] = inherited_sockets()
sock.setblocking(True)
conn, _ = sock.accept()
conn.sendall(("served by %d; env has fd: %s" % (os.getpid(), "BERTH_LISTEN_FD" in os.environ)).encode())
conn.close()
"""


def test_registry_proxy_port_is_held_from_the_moment_it_is_chosen() -> None:
    env: dict[str, str] = {}
    sock = registry_proxy_env(env)
    try:
        host, _, port = env["BERTH_REGISTRY_PROXY_LISTEN"].rpartition(":")
        assert env["BERTH_REGISTRY_PROXY_URL"] == f"http://127.0.0.1:{port}"
        squatter = socket.socket()
        with squatter, pytest.raises(OSError) as exc:
            squatter.bind((host, int(port)))
        assert exc.value.errno == errno.EADDRINUSE
    finally:
        sock.close()


def test_forkserver_hands_the_bound_socket_to_the_service(tmp_path: Path) -> None:
    (tmp_path / "listen_probe.py").write_text(PROBE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    env.pop("BERTH_LISTEN_FD", None)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def main() -> str:
        forkserver = ForkServer(["json"], env)
        async with anyio.create_task_group() as tg:
            await tg.start(forkserver.run)
            forked = await forkserver.spawn("listen_probe", "listen-probe", fds=(listener.fileno(),))
            listener.close()  # the service's copy is the only one now
            stream = await anyio.connect_tcp("127.0.0.1", port)
            async with stream:
                with anyio.fail_after(30):
                    reply = (await stream.receive()).decode()
            with anyio.fail_after(30):
                assert await forked.wait() == 0
            await forkserver.stop()
            tg.cancel_scope.cancel()
        return reply

    reply = anyio.run(main)
    assert reply.startswith("served by ") and reply.endswith("env has fd: False")
