"""The gateway in a whole real berth (`berth up -d`): engine, lifecycle, runtime agent, NATS.

Raw HTTP where the exact protocol matters (hijack, header timing, chunking), and the docker CLI
and docker-py where what matters is that real clients are satisfied.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from berth_gateway.stdcopy import MULTIPLEXED_STREAM, parse_frames
from berth_kit.testing import free_port
from berth_testsupport.rawhttp import read_all, read_head

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="berth needs root (overlayfs, runc)"),
    pytest.mark.skipif(shutil.which("docker") is None, reason="docker CLI not installed"),
    pytest.mark.timeout(120),
]

IMAGE = "gwtest/img:v1"


@dataclass
class Berth:
    base: Path
    socket_path: str
    nats_url: str

    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.base),
            "DOCKER_HOST": f"unix://{self.socket_path}",
            "DOCKER_CONFIG": str(self.base / "dc"),
        }
        return subprocess.run(
            ["docker", *args], env=env, capture_output=True, text=True, timeout=timeout
        )

    def docker_ok(self, *args: str) -> str:
        res = self.docker(*args)
        assert res.returncode == 0, f"docker {args}: {res.stderr}"
        return res.stdout

    def connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(15)
        sock.connect(self.socket_path)
        return sock

    def http(
        self, method: str, path: str, body: dict[str, object] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        with self.connect() as sock:
            payload = json.dumps(body).encode() if body is not None else b""
            head = f"{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n"
            if body is not None:
                head += "Content-Type: application/json\r\n"
            head += f"Content-Length: {len(payload)}\r\n\r\n"
            sock.sendall(head.encode() + payload)
            data = read_all(sock)
        return _parse_response(data)


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += body[:size]
        body = body[size + 2 :]
    return out


def _attach(sock: socket.socket, cid: str, query: str, headers: str = "") -> tuple[list[str], bytes]:
    """POST /containers/{cid}/attach?{query} with the upgrade headers the docker CLI sends; the
    response head, and what came after it."""
    sock.sendall(
        f"POST /v1.44/containers/{cid}/attach?{query} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        f"{headers}\r\n".encode()
    )
    return read_head(sock)


def _read_chunked(sock: socket.socket, rest: bytes) -> bytes:
    """The rest of a chunked body (its start already read with the head), de-chunked."""
    body = rest
    while b"\r\n0\r\n\r\n" not in body:
        more = sock.recv(4096)
        if not more:
            break
        body += more
    return _dechunk(body)


def _parse_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        headers[name.lower()] = value
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    return status, headers, body


@pytest.fixture(scope="module")
def berth() -> Iterator[Berth]:
    base = Path(tempfile.mkdtemp(prefix="bgw-", dir="/tmp"))
    (base / "dc").mkdir()
    sock = str(base / "d.sock")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DOCKER_"))}
    cmd = [sys.executable, "-m", "berth_cli"]
    up = subprocess.run(
        [*cmd, "up", "-d", "-H", f"unix://{sock}", "--exec-root", str(base / "x"),
         "--data-root", str(base / "d"), "--nats-port", str(port), "--ready-timeout", "60"],
        env=env, capture_output=True, text=True, timeout=100,
    )  # fmt: skip
    try:
        if up.returncode != 0:
            pytest.skip(f"berth up failed, cannot run whole-berth tests:\n{up.stderr}")
        b = Berth(base=base, socket_path=sock, nats_url=f"nats://127.0.0.1:{port}")
        from berth_testsupport import images as testimages

        archive = testimages.docker_save_archive([IMAGE]).write(base / "img.tar")
        b.docker_ok("load", "-i", str(archive))
        yield b
    finally:
        subprocess.run(
            [*cmd, "down", "--exec-root", str(base / "x")], env=env, capture_output=True, timeout=60
        )
        subprocess.run(["umount", "-R", "-l", str(base / "d")], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _create(berth: Berth, **config: object) -> str:
    status, headers, body = berth.http(
        "POST", "/v1.44/containers/create", {"Image": IMAGE, "Cmd": ["cat"], **config}
    )
    assert status == 201, body
    assert headers["content-type"] == "application/json"
    created = json.loads(body)
    assert created["Warnings"] == []
    return str(created["Id"])


def test_container_crud_over_http(berth: Berth) -> None:
    name = "gw-crud"
    status, _, body = berth.http(
        "POST", f"/v1.44/containers/create?name={name}",
        {"Image": IMAGE, "Cmd": ["true"], "Labels": {"gw.test": "yes"}},
    )  # fmt: skip
    assert status == 201, body
    cid = json.loads(body)["Id"]
    filters = urllib.parse.quote(json.dumps({"label": {"gw.test=yes": True}}))
    status, _, body = berth.http("GET", f"/v1.44/containers/json?all=1&filters={filters}")
    assert status == 200
    assert [c["Id"] for c in json.loads(body)] == [cid]
    filters = urllib.parse.quote(json.dumps({"label": ["gw.test=yes"]}))  # docker-py's form
    status, _, body = berth.http("GET", f"/containers/json?all=True&filters={filters}")
    assert [c["Names"] for c in json.loads(body)] == [[f"/{name}"]]
    status, _, body = berth.http("GET", f"/v1.44/containers/{name}/json")
    assert status == 200
    assert json.loads(body)["Name"] == f"/{name}"
    status, _, body = berth.http("POST", f"/v1.44/containers/{name}/stop")
    assert status == 304 and body == b""
    status, _, body = berth.http("DELETE", f"/v1.44/containers/{name}?force=1&v=False")
    assert status == 204
    status, headers, body = berth.http("GET", f"/v1.44/containers/{cid}/json")
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["message"] == f"No such container: {cid}"


def test_wait_not_running_answers_at_once(berth: Berth) -> None:
    cid = _create(berth)
    status, headers, body = berth.http("POST", f"/v1.44/containers/{cid}/wait")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"StatusCode": 0, "Error": None}
    berth.http("DELETE", f"/containers/{cid}")


def test_wait_removed_sends_headers_first_and_ends_on_removal(berth: Berth) -> None:
    cid = _create(berth)
    with berth.connect() as sock:
        sock.sendall(
            f"POST /v1.44/containers/{cid}/wait?condition=removed HTTP/1.1\r\n"
            "Host: docker\r\nContent-Length: 0\r\n\r\n".encode()
        )
        lines, rest = read_head(sock)  # arrives while the container still exists
        assert lines[0] == "HTTP/1.1 200 OK"
        assert "Content-Type: application/json" in lines
        status, _, _ = berth.http("DELETE", f"/containers/{cid}")
        assert status == 204
        body = _read_chunked(sock, rest)
    assert json.loads(body) == {"StatusCode": 0, "Error": None}


def test_wait_for_a_missing_container_is_404(berth: Berth) -> None:
    status, headers, body = berth.http("POST", "/v1.44/containers/nope-nope/wait")
    assert status == 404
    assert json.loads(body)["message"] == "No such container: nope-nope"


def test_logs_of_a_container_that_never_ran(berth: Berth) -> None:
    cid = _create(berth)
    status, headers, body = berth.http("GET", f"/v1.44/containers/{cid}/logs?stdout=1&stderr=1")
    assert status == 200
    assert headers["content-type"] == MULTIPLEXED_STREAM
    assert body == b""
    berth.http("DELETE", f"/containers/{cid}")


def _frames_by_stream(body: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for stream, data in parse_frames(body):
        out[stream] = out.get(stream, b"") + data
    return out


def test_attach_before_start_then_stdin_with_half_close(berth: Berth) -> None:
    """What `echo ... | docker run -i` does: attach, start, send input, half-close, read all."""
    cid = _create(
        berth,
        Cmd=["sh", "-c", "cat; echo to-stderr >&2; exit 4"],
        OpenStdin=True,
        StdinOnce=True,
        AttachStdin=True,
    )
    payload = os.urandom(300 * 1024).hex().encode()  # 600 KiB of input, more than any buffer
    with berth.connect() as sock:
        lines, rest = _attach(
            sock, cid, "stream=1&stdin=1&stdout=1&stderr=1", "Content-Type: text/plain\r\n"
        )
        assert lines[0] == "HTTP/1.1 101 UPGRADED"
        assert f"Content-Type: {MULTIPLEXED_STREAM}" in lines
        # Input sent before the container runs is held by the gateway, not lost.
        sock.sendall(payload[:1000])
        status, _, body = berth.http("POST", f"/v1.44/containers/{cid}/start")
        assert status == 204, body
        sock.sendall(payload[1000:])
        sock.shutdown(socket.SHUT_WR)  # stdin ends; output must keep flowing
        body = rest + read_all(sock)
    streams = _frames_by_stream(body)
    assert streams[1] == payload
    assert streams[2] == b"to-stderr\n"
    status, _, body = berth.http("POST", f"/v1.44/containers/{cid}/wait")
    assert json.loads(body) == {"StatusCode": 4, "Error": None}
    berth.http("DELETE", f"/containers/{cid}")


def test_half_close_keeps_stdin_open_without_stdin_once(berth: Berth) -> None:
    cid = _create(berth, Cmd=["cat"], OpenStdin=True, StdinOnce=False, AttachStdin=True)
    status, _, _ = berth.http("POST", f"/v1.44/containers/{cid}/start")
    assert status == 204
    with berth.connect() as sock:
        _, rest = _attach(sock, cid, "stream=1&stdin=1&stdout=1")
        sock.sendall(b"abc\n")
        sock.shutdown(socket.SHUT_WR)
        body = rest
        while len(body) < 12:  # one frame: 8-byte header + b"abc\n"
            body += sock.recv(4096)
        assert parse_frames(body) == [(1, b"abc\n")]
        # cat still runs: this client's EOF did not close the container's stdin.
        status, _, inspect = berth.http("GET", f"/v1.44/containers/{cid}/json")
        assert json.loads(inspect)["State"]["Running"] is True
        status, _, _ = berth.http("POST", f"/v1.44/containers/{cid}/kill")
        assert status == 204
        assert read_all(sock) == b""  # the stream ends when the container does
    berth.http("DELETE", f"/containers/{cid}?force=1")


def test_tty_attach_is_raw_and_resize_reaches_the_terminal(berth: Berth) -> None:
    cid = _create(
        berth,
        Cmd=["sh", "-c", "read x; stty size"],
        Tty=True,
        OpenStdin=True,
        StdinOnce=True,
        AttachStdin=True,
    )
    status, _, body = berth.http("POST", f"/v1.44/containers/{cid}/resize?h=40&w=100")
    assert status == 409, body  # not running yet
    status, _, body = berth.http("POST", f"/v1.44/containers/{cid}/resize?h=x&w=100")
    assert status == 400 and json.loads(body)["message"] == "invalid resize height"
    with berth.connect() as sock:
        lines, rest = _attach(sock, cid, "stream=1&stdin=1&stdout=1&stderr=1")
        assert lines[0] == "HTTP/1.1 101 UPGRADED"
        assert "Content-Type: application/vnd.docker.raw-stream" in lines
        status, _, body = berth.http("POST", f"/v1.44/containers/{cid}/start")
        assert status == 204, body
        status, _, body = berth.http("POST", f"/v1.44/containers/{cid}/resize?h=40&w=100")
        assert status == 200, body
        sock.sendall(b"go\n")
        body = rest + read_all(sock)
    assert b"40 100" in body  # raw terminal output, no stdcopy frames
    assert not body.startswith(b"\x01\x00\x00\x00")
    berth.http("DELETE", f"/containers/{cid}?force=1")


def test_wait_next_exit_and_logs_with_timestamps(berth: Berth) -> None:
    cid = _create(berth, Cmd=["sh", "-c", "echo one; echo two >&2; exit 3"])
    with berth.connect() as sock:
        sock.sendall(
            f"POST /v1.44/containers/{cid}/wait?condition=next-exit HTTP/1.1\r\n"
            "Host: docker\r\nContent-Length: 0\r\n\r\n".encode()
        )
        lines, rest = read_head(sock)  # headers before the container even starts
        assert lines[0] == "HTTP/1.1 200 OK"
        status, _, _ = berth.http("POST", f"/v1.44/containers/{cid}/start")
        assert status == 204
        body = _read_chunked(sock, rest)
    assert json.loads(body) == {"StatusCode": 3, "Error": None}
    status, headers, body = berth.http(
        "GET", f"/v1.44/containers/{cid}/logs?stdout=1&stderr=1&timestamps=1"
    )
    assert status == 200
    streams = _frames_by_stream(body)
    stamp, _, text = streams[1].partition(b" ")
    assert text == b"one\n"
    assert stamp.endswith(b"Z") and b"T" in stamp
    assert streams[2].split(b" ", 1)[1] == b"two\n"
    status, _, body = berth.http("GET", f"/v1.44/containers/{cid}/logs?stdout=1")
    assert parse_frames(body) == [(1, b"one\n")]
    berth.http("DELETE", f"/containers/{cid}")


def test_docker_cli_and_docker_py(berth: Berth) -> None:
    cid = berth.docker_ok("create", "--name", "gw-cli", "--label", "k=v", IMAGE, "true").strip()
    assert berth.docker_ok("ps", "-aq", "--no-trunc", "--filter", "label=k=v").split() == [cid]
    assert berth.docker_ok("wait", "gw-cli").strip() == "0"
    assert berth.docker_ok("inspect", "--format", "{{.Name}}", "gw-cli").strip() == "/gw-cli"
    missing = berth.docker("inspect", "no-such-thing")
    assert missing.returncode != 0 and "No such object: no-such-thing" in missing.stderr
    top = berth.docker("top", "gw-cli")
    assert top.returncode != 0 and f"Container {cid} is not running" in top.stderr
    top = berth.docker("top", "no-such-box")
    assert top.returncode != 0 and "No such container: no-such-box" in top.stderr
    berth.docker_ok("rm", "gw-cli")
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=f"unix://{berth.socket_path}", version="auto")
    try:
        assert client.ping() is True
        assert client.version()["ApiVersion"] == "1.44"
        assert client.info()["Swarm"]["LocalNodeState"] == "inactive"
        assert IMAGE in [t for image in client.images.list() for t in image.tags]
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get("gwtest/missing:v9")
        with pytest.raises(docker.errors.NotFound):
            client.containers.get("no-such-container")
    finally:
        client.close()


def test_events_show_what_the_engine_does(berth: Berth) -> None:
    since = time.time()
    with berth.connect() as sock:
        filters = urllib.parse.quote(json.dumps({"type": ["container"], "event": ["create"]}))
        sock.sendall(
            f"GET /v1.44/events?filters={filters} HTTP/1.1\r\nHost: docker\r\n\r\n".encode()
        )
        lines, rest = read_head(sock)
        assert lines[0] == "HTTP/1.1 200 OK"
        cid = _create(berth, Labels={"ev": "1"})
        data = rest
        while b"\n" not in _dechunk_partial(data):
            data += sock.recv(4096)
    event = json.loads(_dechunk_partial(data).split(b"\n")[0])
    assert event["Action"] == "create" and event["Actor"]["ID"] == cid
    assert event["Actor"]["Attributes"]["ev"] == "1"
    assert event["time"] >= int(since)
    berth.http("DELETE", f"/containers/{cid}")


def _dechunk_partial(body: bytes) -> bytes:
    out = b""
    while b"\r\n" in body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0 or len(rest) < size + 2:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


def _busybox_rootfs_tar() -> bytes:
    from berth_testsupport import images as testimages

    return testimages.busybox_rootfs_tar()


def test_import_streams_a_chunked_body_and_relays_progress(berth: Berth) -> None:
    rootfs = _busybox_rootfs_tar()
    query = urllib.parse.urlencode(
        [
            ("fromSrc", "-"),
            ("repo", "gwtest/imported"),
            ("tag", "v2"),
            ("message", "from the gateway test"),
            ("changes", 'CMD ["echo", "imported"]'),
            ("changes", "ENV GW=1"),
        ]
    )
    with berth.connect() as sock:
        head = (
            f"POST /v1.44/images/create?{query} HTTP/1.1\r\nHost: docker\r\n"
            "Content-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n"
            "Connection: close\r\n\r\n"
        )
        sock.sendall(head.encode())
        for start in range(0, len(rootfs), 100_000):
            piece = rootfs[start : start + 100_000]
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        status, headers, body = _parse_response(read_all(sock))
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    assert headers["transfer-encoding"] == "chunked"
    image_id = json.loads(body.splitlines()[-1])["status"]
    assert image_id.startswith("sha256:")
    out = berth.docker_ok(
        "inspect", "--format", "{{.Id}} {{json .Config.Cmd}} {{.Comment}}", "gwtest/imported:v2"
    )
    assert out.strip() == f'{image_id} ["echo","imported"] from the gateway test'
    assert berth.docker_ok("run", "--rm", "gwtest/imported:v2") == "imported\n"
    berth.docker_ok("rmi", "gwtest/imported:v2")


def test_load_of_a_broken_archive_is_an_error_clients_see(berth: Berth) -> None:
    with berth.connect() as sock:
        payload = b"this is not a tar archive" * 100
        sock.sendall(
            b"POST /v1.44/images/load?quiet=1 HTTP/1.1\r\nHost: docker\r\n"
            b"Content-Type: application/x-tar\r\nConnection: close\r\n"
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        status, headers, body = _parse_response(read_all(sock))
    # Before any progress it may be a plain HTTP error, after it an in-band errorDetail.
    assert headers["content-type"] == "application/json"
    if status == 200:
        assert json.loads(body.splitlines()[-1])["errorDetail"]["message"]
    else:
        assert status == 400 and json.loads(body)["message"]
    garbage = berth.base / "garbage.tar"
    garbage.write_bytes(payload)
    res = berth.docker("load", "-i", str(garbage))
    assert res.returncode != 0 and "invalid archive" in res.stderr


def test_rename_and_prune(berth: Berth) -> None:
    cid = berth.docker_ok(
        "create", "--name", "gw-old", "--label", "prune=me", IMAGE, "true"
    ).strip()
    berth.docker_ok("rename", "gw-old", "gw-new")
    assert berth.docker_ok("inspect", "--format", "{{.Name}}", cid).strip() == "/gw-new"
    filters = urllib.parse.quote(json.dumps({"label": ["prune=nobody"]}))
    status, headers, body = berth.http("POST", f"/v1.44/containers/prune?filters={filters}")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"ContainersDeleted": None, "SpaceReclaimed": 0}
    out = berth.docker_ok("container", "prune", "-f", "--filter", "label=prune=me")
    assert cid in out
    status, _, _ = berth.http("GET", f"/v1.44/containers/{cid}/json")
    assert status == 404


def test_start_attached_twice_streams_each_run(berth: Berth) -> None:
    berth.docker_ok("create", "--name", "gw-twice", IMAGE, "sh", "-c", "echo run-output; exit 5")
    for _ in range(2):  # the second attach finds the container stopped: it waits for the start
        res = berth.docker("start", "-a", "gw-twice")
        assert (res.returncode, res.stdout) == (5, "run-output\n"), res.stderr
    berth.docker_ok("rm", "gw-twice")


def test_attach_to_a_stopped_container_replays_logs_and_ends(berth: Berth) -> None:
    cid = _create(berth, Cmd=["sh", "-c", "echo before"])
    berth.http("POST", f"/v1.44/containers/{cid}/start")
    status, _, body = berth.http("POST", f"/v1.44/containers/{cid}/wait")
    assert json.loads(body)["StatusCode"] == 0
    with berth.connect() as sock:
        lines, rest = _attach(sock, cid, "logs=1&stream=1&stdout=1&stderr=1")
        assert lines[0] == "HTTP/1.1 101 UPGRADED"
        body = rest + read_all(sock)  # ends by itself: no new run is coming
    assert parse_frames(body) == [(1, b"before\n")]
    berth.http("DELETE", f"/containers/{cid}")
