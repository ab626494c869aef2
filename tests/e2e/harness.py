"""The running berth an e2e session talks to, and the ways tests drive it."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from berth_cli.apiprobe import connection
from berth_kit.otlpreceiver import OtlpReceiver
from berth_kit.testing import free_port
from berth_testsupport.netbed import NetBed
from cleanup import cleanup_roots

T = TypeVar("T")

BERTH = [sys.executable, "-m", "berth_cli"]


def unique_name(prefix: str) -> str:
    """A container, network or volume name no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def httpd(body: str) -> tuple[str, ...]:
    """A busybox command serving `body` at / on port 80, in the foreground."""
    return ("sh", "-c", f"mkdir -p /www && echo {body} > /www/index.html && httpd -f -p 80 -h /www")


def wait_until(
    pred: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2
) -> T:
    """Poll pred until truthy; fail the test with `what` (and the last value) on timeout."""
    deadline = time.monotonic() + timeout
    last = pred()
    while not last:
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)
        last = pred()
    return last  # type: ignore[return-value] # truthy here, so not None


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Berth:
    base: Path
    exec_root: Path
    data_root: Path
    receiver: OtlpReceiver | None
    env: dict[str, str]
    docker_config: Path
    extra_hosts: tuple[str, ...] = ()
    nats_port: int = field(default_factory=free_port)
    # A command prefix for the berth command (NetBed.enter: another host's network).
    prefix: tuple[str, ...] = ()
    node_name: str = ""  # BERTH_NODE, when several berths must tell themselves apart
    up_extra: tuple[str, ...] = ()  # more `berth up` flags (`--label zone=b`)

    @classmethod
    def create(cls, receiver: OtlpReceiver | None, extra_hosts: tuple[str, ...] = ()) -> Berth:
        """Temp roots and environment for one berth (not started yet)."""
        # Short paths: the API socket lives in the exec root and sun_path holds 108 bytes.
        base = Path(tempfile.mkdtemp(prefix="b-", dir="/tmp"))
        docker_config = base / "dc"
        docker_config.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "BERTH_"))}
        if receiver is not None:
            env.update(
                OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                OTEL_BSP_SCHEDULE_DELAY="200",
            )
        return cls(base, base / "x", base / "d", receiver, env, docker_config, extra_hosts)

    @property
    def docker_host(self) -> str:
        return f"unix://{self.exec_root}/docker.sock"

    def up_args(self) -> list[str]:
        args = ["up", "-H", self.docker_host]
        for host in self.extra_hosts:
            args += ["-H", host]
        args += ["--exec-root", str(self.exec_root), "--data-root", str(self.data_root)]
        return args + ["--nats-port", str(self.nats_port), *self.up_extra]

    def up_detached(self, ready_timeout: float = 60.0) -> None:
        res = self.berth(
            *self.up_args(), "-d", "--ready-timeout", str(ready_timeout), timeout=ready_timeout + 45
        )
        if res.returncode != 0:
            pytest.fail(f"`berth up -d` failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")

    def teardown(self) -> None:
        """`berth down`, then remove whatever is left (containers, shims, mounts, temp dirs)."""
        # Nested finally: even a pytest-timeout firing inside `berth down` must not skip the
        # cleanup (pytest's outcome exceptions are BaseExceptions).
        try:
            res = self.berth("down", "--exec-root", str(self.exec_root), timeout=60)
            if res.returncode != 0:
                print(f"berth down failed: {res.stderr}", file=sys.stderr)
        finally:
            # BERTH_E2E_KEEP=1 keeps the temp dirs (logs, databases) for a post-mortem.
            keep = bool(os.environ.get("BERTH_E2E_KEEP"))
            report = self.clean_up(remove=not keep)
            if keep:
                print(f"BERTH_E2E_KEEP: left {self.base}", file=sys.stderr)
            if any(report.values()):
                print(f"e2e cleanup of {self.base}: {report}", file=sys.stderr)

    def clean_up(self, remove: bool) -> dict[str, Any]:
        """Every process, container, mount and network of this berth gone (cleanup.py); in its
        own network namespace when it runs in one (a bridge or keeper of the same name on the
        machine's own network belongs to another berth)."""
        roots = [self.exec_root, self.data_root, self.base]
        if not self.prefix:
            return cleanup_roots(roots, remove=remove)
        code = (
            f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r});"
            "from pathlib import Path; from cleanup import cleanup_roots;"
            f"print(json.dumps(cleanup_roots([Path(r) for r in {[str(r) for r in roots]!r}], remove={remove!r})))"
        )
        res = subprocess.run([*self.prefix, sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        if res.returncode != 0:
            print(f"clean-up in {self.prefix} failed: {res.stderr}", file=sys.stderr)
            return {}
        return dict(json.loads(res.stdout.strip().splitlines()[-1]))

    def import_busybox(self, ref: str = "busybox:latest") -> str:
        from berth_testsupport import images as testimages

        tar = self.base / "busybox-rootfs.tar"
        if not tar.exists():
            tar.write_bytes(testimages.busybox_rootfs_tar())
        res = self.docker("import", str(tar), ref, timeout=120)
        if res.returncode != 0:
            pytest.fail(f"`docker import` failed ({res.returncode}): {res.stderr}")
        return ref

    # --- the berth command ------------------------------------------------------------------
    def berth(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "BERTH_NODE": self.node_name} if self.node_name else self.env
        return subprocess.run(
            [*self.prefix, *BERTH, *args], env=env, capture_output=True, text=True, timeout=timeout
        )

    def status(self) -> dict[str, Any]:
        res = self.berth("status", "--json", "--exec-root", str(self.exec_root), timeout=30)
        return json.loads(res.stdout)

    def service(self, name: str) -> dict[str, Any]:
        for s in self.status()["services"]:
            if s["name"] == name:
                return s
        raise KeyError(name)

    def wait_restarted(self, name: str, old_pid: int, timeout: float = 30) -> dict[str, Any]:
        """Wait until the supervisor has restarted `name` under a new pid and it answers Ping."""

        def ready() -> dict[str, Any] | None:
            s = self.service(name)
            return s if s["healthy"] and s["pid"] and s["pid"] != old_pid else None

        return wait_until(ready, timeout, f"{name} to be restarted and healthy")

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = (self.exec_root / "berth.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # --- the docker CLI ---------------------------------------------------------------------
    def client_env(self) -> dict[str, str]:
        """The environment of a client process (docker, docker-compose) aimed at this berth."""
        return {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "DOCKER_HOST": self.docker_host,
            # A private config dir: no contexts, credential helpers or aliases from the host.
            "DOCKER_CONFIG": str(self.docker_config),
        }

    def docker(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = 60,
        host: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return self._docker(args, input, timeout, text=True, host=host, extra_env=extra_env)

    def docker_bytes(
        self, *args: str, stdin: bytes | None = None, timeout: float = 240
    ) -> subprocess.CompletedProcess[bytes]:
        """The docker CLI with binary stdin, stdout and stderr (docker() decodes text)."""
        return self._docker(args, stdin, timeout, text=False)

    def _docker(
        self,
        args: tuple[str, ...],
        input: Any,
        timeout: float,
        *,
        text: bool,
        host: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Any:
        env = {
            **self.client_env(),
            "DOCKER_HOST": host or self.docker_host,
            **(extra_env or {}),  # e.g. DOCKER_TLS_VERIFY, DOCKER_CERT_PATH
        }
        try:
            return subprocess.run(
                ["docker", *args],
                env=env,
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                capture_output=True,
                text=text,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"`docker {' '.join(args)}` did not finish within {timeout:.0f}s;"
                f" stdout={exc.stdout!r} stderr={exc.stderr!r}"
            )

    def docker_ok(self, *args: str, input: str | None = None, timeout: float = 60) -> str:
        """Run docker and fail the test unless it exits 0; returns stdout."""
        res = self.docker(*args, input=input, timeout=timeout)
        assert res.returncode == 0, (
            f"`docker {' '.join(args)}` exited {res.returncode}\nstdout: {res.stdout}\nstderr: {res.stderr}"
        )
        return res.stdout

    # --- raw HTTP on the API socket ---------------------------------------------------------
    def http(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 15,
    ) -> HttpResult:
        conn = connection(self.docker_host, timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return HttpResult(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        except (OSError, http.client.HTTPException) as exc:
            pytest.fail(f"{method} {path} on {self.docker_host} failed: {exc!r}")
        finally:
            conn.close()


def nats_port_info(bed: NetBed, i: int, host: str, port: int) -> dict[str, Any]:
    """The INFO line a NATS port (a swarm port, a route port) opens with, read from host i."""
    code = (
        "import json, socket\n"
        f"with socket.create_connection(({host!r}, {port}), timeout=5) as s:\n"
        "    print(json.dumps(json.loads(s.makefile('rb').readline()[5:])))\n"
    )
    res = subprocess.run([*bed.enter(i), sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return dict(json.loads(res.stdout))


def tls_handshake(bed: NetBed, i: int, host: str, port: int, tls_dir: Path | None = None) -> str:
    """From host i, a TLS handshake at once, presenting the certificate and key in tls_dir
    (berth_kit.swarmbus' files) or none: what the server sent then ("" when it closed), or the
    error."""
    cert = f"c.load_cert_chain({str(tls_dir / 'node.pem')!r}, {str(tls_dir / 'node-key.pem')!r})\n" if tls_dir else ""
    code = (
        "import socket, ssl\n"
        "c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE\n"
        f"{cert}s = c.wrap_socket(socket.create_connection(({host!r}, {port}), timeout=5))\n"
        "try:\n"
        "    print(s.recv(100).decode(errors='replace'))\n"
        "except (ssl.SSLError, OSError) as e:\n"
        "    print(e)\n"
    )
    res = subprocess.run([*bed.enter(i), sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return res.stdout + res.stderr


@contextlib.contextmanager
def berths_on_hosts(bed: NetBed, up_extra: dict[int, tuple[str, ...]] | None = None) -> Iterator[list[Berth]]:
    """One berth per host of a NetBed (`host0`, `host1`, ...), each with busybox imported; all
    torn down at the end, each inside its own network namespace. up_extra: more `berth up`
    flags, by host."""
    nodes: list[Berth] = []
    try:
        for i in range(bed.nodes):
            node = Berth.create(None)
            node.prefix, node.node_name = tuple(bed.enter(i)), f"host{i}"
            node.up_extra = (up_extra or {}).get(i, ())
            node.up_detached()
            node.import_busybox()
            nodes.append(node)
        yield nodes
    finally:
        for node in nodes:
            node.teardown()
