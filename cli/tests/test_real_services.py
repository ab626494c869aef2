"""`berth up` with the real services (whichever exist in this checkout) and a real nats-server."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from berth_cli import procs
from berth_cli.config import SERVICES

pytestmark = pytest.mark.timeout(120)


def has_main(module: str) -> bool:
    try:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    except ImportError:
        return False


def test_real_services_status_and_down(roots: Any) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("BERTH_SUPERVISE", "OTEL_EXPORTER_OTLP_ENDPOINT")}
    proxy_port = _free_port()
    env["BERTH_REGISTRY_PROXY_LISTEN"] = f"127.0.0.1:{proxy_port}"  # bound by the supervisor
    # Foreground, so the test does not depend on the gateway answering /_ping.
    log_path = roots.base / "up.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [sys.executable, "-m", "berth_cli", "up", "-H", roots.sock, "--exec-root", str(roots.exec_root),
         "--data-root", str(roots.data_root), "--nats-port", "0"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        expected = {s.name for s in SERVICES if has_main(s.module)}
        deadline = time.monotonic() + 45
        report: dict[str, Any] = {}
        while time.monotonic() < deadline:
            res = roots.berth("status", "--json", "--exec-root", str(roots.exec_root), env=env, timeout=30)
            if res.stdout:
                report = json.loads(res.stdout)
                healthy = {s["name"] for s in report.get("services", []) if s["healthy"]}
                if report.get("running") and report["nats"]["reachable"] and expected <= healthy:
                    break
            time.sleep(0.5)
        assert report.get("running") is True, report
        assert report["nats"]["reachable"] is True
        assert report["nats"]["embedded"] is True
        assert [s["name"] for s in report["services"]] == [s.name for s in SERVICES]
        for s in report["services"]:
            assert set(s) >= {"name", "module", "pid", "alive", "healthy", "state", "restarts"}
            if s["name"] in expected:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
                assert s["healthy"], f"{s['name']} exists but is not healthy: {s}\n{tail}"
                assert s["answered_pid"] == s["pid"]
        if "berth-registry-proxy" in expected:
            assert _registry_proxy_answers(proxy_port)
        pids = [s["pid"] for s in report["services"] if s["pid"]] + [report["nats"]["pid"]]
        res = roots.berth("down", "--exec-root", str(roots.exec_root), env=env, timeout=60)
        assert res.returncode == 0, res.stderr
        assert proc.wait(timeout=10) == 0
        for pid in pids:
            assert not procs.alive(pid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()



def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _registry_proxy_answers(port: int) -> bool:
    """The proxy serves on the socket the supervisor bound and handed to it."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=10) as res:
            return bool(res.status == 200)
    except urllib.error.HTTPError as exc:
        return exc.code in (200, 401)
