"""Every byte a container writes reaches the client that reads it, and the json-file log.

Tens of MB of a known pattern (`seq`) through the docker CLI (run, run -t, exec, attach) and
through docker-py's attach socket read slowly; counts and checksums are compared with the
pattern. Before the output stream had flow control, the shim dropped live output whenever the
agent fell more than 1 MiB behind, and `docker run ... | wc -c` came up short in most runs.
"""

from __future__ import annotations

import functools
import hashlib
import socket
import struct
import subprocess
import time

import docker
import pytest
from harness import Berth, unique_name

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

BIG = 6_000_000  # `seq 1 BIG`: 46,888,897 bytes
SMALL = 200_000  # on stderr alongside: 1,288,895 bytes
# For the slow reader, 87,888,897 bytes: more than the gateway's subscription buffers (64 MiB
# on main), so output that is not paced is lost there.
SLOW = 11_000_000
STALL_POLLS = 40  # the slow reader reads nothing for 20 s, or until the container exited
# busybox's seq writes a line at a time; cat of its output writes as fast as the pipe takes it
FAST_SEQ = f"seq 1 {BIG} >/tmp/p; cat /tmp/p"


@functools.cache
def seq_output(n: int) -> bytes:
    return b"".join(b"%d\n" % i for i in range(1, n + 1))


def digest(data: bytes) -> tuple[int, str]:
    return len(data), hashlib.sha256(data).hexdigest()


def assert_every_line(res: subprocess.CompletedProcess[bytes]) -> None:
    """BIG lines on stdout and SMALL on stderr, each byte in order."""
    assert res.returncode == 0, res.stderr[-2000:]
    assert digest(res.stdout) == digest(seq_output(BIG))
    assert digest(res.stderr) == digest(seq_output(SMALL))


def test_run_output_and_log_complete(berth: Berth, busybox_image: str) -> None:
    """`docker run` gets all of stdout and stderr; `docker logs` of the same run too."""
    cname = unique_name("out")
    script = f"{FAST_SEQ}; seq 1 {SMALL} >&2"
    try:
        res = berth.docker_bytes("run", "--name", cname, busybox_image, "sh", "-c", script)
        assert_every_line(res)
        logs = berth.docker_bytes("logs", cname)
        assert_every_line(logs)
    finally:
        berth.docker_bytes("rm", "-f", cname)


def test_run_tty_output_complete(berth: Berth, busybox_image: str) -> None:
    """With a terminal all output is one stream, and the pty turns \\n into \\r\\n."""
    res = berth.docker_bytes("run", "--rm", "-t", busybox_image, "sh", "-c", FAST_SEQ)
    assert res.returncode == 0, res.stderr[-2000:]
    assert digest(res.stdout) == digest(seq_output(BIG).replace(b"\n", b"\r\n"))


def test_exec_output_complete(berth: Berth, busybox_image: str) -> None:
    cname = unique_name("out")
    berth.docker_ok("run", "-d", "--name", cname, busybox_image, "sleep", "300")
    try:
        script = f"{FAST_SEQ}; seq 1 {SMALL} >&2"
        res = berth.docker_bytes("exec", cname, "sh", "-c", script)
        assert_every_line(res)
    finally:
        berth.docker_bytes("rm", "-f", cname)


def test_attach_output_complete(berth: Berth, busybox_image: str) -> None:
    """`docker attach` to a running container: the output it asks for with its input."""
    cname = unique_name("out")
    script = f"seq 1 {BIG} >/tmp/p; read go; cat /tmp/p"
    berth.docker_ok("run", "-d", "-i", "--name", cname, busybox_image, "sh", "-c", script)
    try:
        res = berth.docker_bytes("attach", cname, stdin=b"go\n")
        assert res.returncode == 0, res.stderr[-2000:]
        assert digest(res.stdout) == digest(seq_output(BIG))
    finally:
        berth.docker_bytes("rm", "-f", cname)


def _read_exactly(raw: socket.socket, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        data = raw.recv(n - len(got))
        if not data:
            break
        got += data
    return bytes(got)


def test_slow_reader_gets_everything(client: docker.DockerClient, busybox_image: str) -> None:
    """A client that reads slowly slows the container down instead of losing its output."""
    c = client.containers.create(busybox_image, ["sh", "-c", f"seq 1 {SLOW} >/tmp/p; cat /tmp/p"])
    try:
        sock = client.api.attach_socket(c.id, params={"stdout": 1, "stderr": 1, "stream": 1})
        raw: socket.socket = sock._sock  # docker-py's SocketIO wraps the raw socket
        raw.settimeout(120)
        # A small receive buffer makes the server's writes block soon, as for a slow network.
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        c.start()
        # A reader that stalls first: unpaced, the whole output would pile up in the gateway
        # (and the container finish at once); paced, the container waits for the reader.
        for _ in range(STALL_POLLS):
            c.reload()
            if c.status == "exited":
                break
            time.sleep(0.5)
        out = bytearray()
        while True:
            header = _read_exactly(raw, 8)
            if len(header) < 8:
                break
            stream, size = struct.unpack(">BxxxL", header)
            payload = _read_exactly(raw, size)
            assert len(payload) == size, "stream ended inside a frame"
            assert stream == 1, payload[:200]
            out += payload
            time.sleep(0.01 * size / 65536)  # and then slow: ~6 MB/s at most
        sock.close()
        assert digest(bytes(out)) == digest(seq_output(SLOW))
        assert c.wait(timeout=60)["StatusCode"] == 0
    finally:
        c.remove(force=True)
