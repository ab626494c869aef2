"""The running berth an e2e session talks to, and the ways tests drive it."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from berth_cli.apiprobe import connection
from otlp_receiver import OtlpReceiver

T = TypeVar("T")

BERTH = [sys.executable, "-m", "berth_cli"]


def wait_until(pred: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll pred until truthy; fail the test with `what` (and the last value) on timeout."""
    deadline = time.monotonic() + timeout
    last: T = pred()
    while not last:
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)
        last = pred()
    return last


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
    receiver: OtlpReceiver
    env: dict[str, str]
    docker_config: Path
    log: list[str] = field(default_factory=list)

    @property
    def docker_host(self) -> str:
        return f"unix://{self.exec_root}/docker.sock"

    # --- the berth command ------------------------------------------------------------------
    def berth(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*BERTH, *args], env=self.env, capture_output=True, text=True, timeout=timeout
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
    def docker(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "DOCKER_HOST": self.docker_host,
            # A private config dir: no contexts, credential helpers or aliases from the host.
            "DOCKER_CONFIG": str(self.docker_config),
        }
        try:
            return subprocess.run(
                ["docker", *args],
                env=env,
                input=input,
                capture_output=True,
                text=True,
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
