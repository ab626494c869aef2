"""docker-py, unchanged, for living with containers: exec_run, logs(stream=True),
attach_socket, events(decode=True), pause."""

from __future__ import annotations

import socket
import time

import docker
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_exec_run(client: docker.DockerClient, busybox_image: str) -> None:
    c = client.containers.run(busybox_image, ["sleep", "120"], detach=True)
    try:
        res = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 4"], demux=True)
        assert res.exit_code == 4
        assert res.output == (b"out\n", b"err\n")
        res = c.exec_run("id -u", user="65534", environment={"A": "1"}, workdir="/tmp")
        assert (res.exit_code, res.output) == (0, b"65534\n")
        res = c.exec_run("pwd", workdir="/tmp", tty=True)
        assert res.output == b"/tmp\r\n"
        chunks = list(c.exec_run(["sh", "-c", "echo a; sleep 0.2; echo b"], stream=True).output)
        assert b"".join(chunks) == b"a\nb\n"
        # the low-level API: exec_inspect has the exit code
        exec_id = client.api.exec_create(c.id, ["sh", "-c", "exit 7"])["Id"]
        client.api.exec_start(exec_id)
        info = client.api.exec_inspect(exec_id)
        assert (info["ExitCode"], info["Running"], info["ContainerID"]) == (7, False, c.id)
        with pytest.raises(docker.errors.NotFound):
            client.api.exec_inspect("0" * 64)
    finally:
        c.remove(force=True)


def test_logs_stream_and_events(client: docker.DockerClient, busybox_image: str) -> None:
    since = time.time() - 1
    c = client.containers.run(
        busybox_image, ["sh", "-c", "for i in 1 2 3; do echo n$i; sleep 0.3; done"], detach=True
    )
    try:
        lines = list(c.logs(stream=True, follow=True))
        assert b"".join(lines) == b"n1\nn2\nn3\n"
        assert c.wait(timeout=60)["StatusCode"] == 0
    finally:
        c.remove(force=True)
    events = client.events(
        since=since, until=time.time() + 1, decode=True, filters={"container": c.id}
    )
    assert [e["Action"] for e in events] == ["create", "start", "die", "destroy"]


def test_attach_socket_interactive(client: docker.DockerClient, busybox_image: str) -> None:
    c = client.containers.run(busybox_image, ["cat"], detach=True, stdin_open=True, tty=True)
    try:
        sock = client.api.attach_socket(c.id, params={"stdin": 1, "stdout": 1, "stream": 1})
        raw: socket.socket = sock._sock  # docker-py hands out the SocketIO; its socket is raw
        raw.settimeout(30)
        raw.sendall(b"hello\n")
        got = b""
        while got.count(b"hello") < 2:  # the terminal echoes the line, then cat prints it
            data = raw.recv(4096)
            assert data, got
            got += data
        sock.close()
    finally:
        c.remove(force=True)



def _read_until(raw: socket.socket, want: bytes) -> bytes:
    got = b""
    while want not in got:
        data = raw.recv(4096)
        assert data, got
        got += data
    return got


def _closed_by_server(raw: socket.socket) -> bool:
    try:
        while raw.recv(4096):
            pass  # the rest of the terminal's echo
    except TimeoutError:
        return False
    return True


def _type(raw: socket.socket, keys: bytes) -> None:
    for key in keys:  # one key at a time, as from a terminal
        raw.sendall(bytes([key]))
        time.sleep(0.1)


def test_detach_keys_end_an_attach(client: docker.DockerClient, busybox_image: str) -> None:
    """moby's server-side detach: ctrl-p ctrl-q (or the client's detachKeys), typed into a TTY
    attach, closes the connection and leaves the container running; keys that only start the
    sequence reach the container."""
    c = client.containers.run(busybox_image, ["cat"], detach=True, stdin_open=True, tty=True)
    try:
        sock = client.api.attach_socket(c.id, params={"stdin": 1, "stdout": 1, "stream": 1})
        raw: socket.socket = sock._sock
        raw.settimeout(10)
        _type(raw, b"\x10a\n")  # ctrl-p, then not ctrl-q: both go on
        assert b"^Pa" in _read_until(raw, b"^Pa")
        _type(raw, b"\x10\x11")
        assert _closed_by_server(raw)
        sock.close()
        c.reload()
        assert c.status == "running"

        params = {"stdin": 1, "stdout": 1, "stream": 1, "detachKeys": "ctrl-x,y"}
        sock = client.api.attach_socket(c.id, params=params)
        raw = sock._sock
        raw.settimeout(10)
        _type(raw, b"\x18y")
        assert _closed_by_server(raw)
        sock.close()
        c.reload()
        assert c.status == "running"

        with pytest.raises(docker.errors.APIError, match=r"Invalid detach keys \(ctrl-yes\)"):
            client.api.attach_socket(c.id, params={"stdin": 1, "detachKeys": "ctrl-yes"})
    finally:
        c.remove(force=True)


def test_detach_keys_end_an_exec_session(client: docker.DockerClient, busybox_image: str) -> None:
    c = client.containers.run(busybox_image, ["sleep", "120"], detach=True)
    try:
        exec_id = client.api.exec_create(
            c.id, ["sh", "-c", "cat; echo ended > /tmp/ended"], stdin=True, tty=True,
            detach_keys="ctrl-a,b",
        )["Id"]
        sock = client.api.exec_start(exec_id, tty=True, socket=True)
        raw: socket.socket = sock._sock
        raw.settimeout(10)
        _type(raw, b"\x01b")
        assert _closed_by_server(raw)
        sock.close()
        assert client.api.exec_inspect(exec_id)["Running"] is True  # the session runs on
        with pytest.raises(docker.errors.APIError, match=r"Invalid escape keys \(ctrl-\)"):
            client.api.exec_create(c.id, ["true"], detach_keys="ctrl-")
    finally:
        c.remove(force=True)

def test_pause_unpause(client: docker.DockerClient, busybox_image: str) -> None:
    c = client.containers.run(busybox_image, ["sleep", "120"], detach=True)
    try:
        c.pause()
        c.reload()
        assert c.status == "paused"
        c.unpause()
        c.reload()
        assert c.status == "running"
    finally:
        c.remove(force=True)
