"""The real gateway process on a unix socket, checked with the real docker CLI and raw HTTP.

No engine runs here: these are the answers the gateway gives on its own (protocol, versions,
validation, unsupported areas) and what it says when the engine is not there.
"""

from __future__ import annotations

import grp
import http.client
import json
import os
import shutil
import signal
import stat
import subprocess
import urllib.parse
from typing import TYPE_CHECKING, Any

import pytest
from berth_kit.testing import free_port

if TYPE_CHECKING:
    from conftest import Gateway

DOCKER = shutil.which("docker")


def _docker(gateway: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    assert DOCKER is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    return subprocess.run(
        [DOCKER, "-H", gateway.host, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def _message(body: bytes) -> str:
    decoded = json.loads(body)
    assert set(decoded) == {"message"}
    return str(decoded["message"])


def test_socket_mode(gateway: Gateway) -> None:
    mode = os.stat(gateway.socket_path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660
    try:
        docker_gid = grp.getgrnam("docker").gr_gid
    except KeyError:
        return
    assert os.stat(gateway.socket_path).st_gid == docker_gid  # as dockerd does


@pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")
def test_docker_version(gateway: Gateway) -> None:
    result = _docker(gateway, "version", "--format", "{{json .Server}}")
    assert result.returncode == 0, result.stderr
    server = json.loads(result.stdout)
    assert server["ApiVersion"] == "1.44"
    assert server["MinAPIVersion"] == "1.24"
    assert server["Platform"]["Name"] == "berth"
    assert server["Components"][0]["Name"] == "Engine"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_ping(gateway: Gateway, method: str) -> None:
    response, body = gateway.request(method, "/_ping")
    assert response.status == 200
    assert body == (b"OK" if method == "GET" else b"")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    if method == "HEAD":
        assert response.headers["Content-Length"] == "0"
    headers = response.headers
    assert headers["Api-Version"] == "1.44"
    assert headers["Ostype"] == "linux"
    assert headers["Docker-Experimental"] == "false"
    assert headers["Builder-Version"] == "1"
    assert headers["Swarm"] == "inactive"
    assert headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
    assert headers["Pragma"] == "no-cache"
    assert headers["Server"].startswith("Docker/")


def test_versioned_paths(gateway: Gateway) -> None:
    response, body = gateway.request("GET", "/v1.24/version")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(body)["ApiVersion"] == "1.44"
    response, _ = gateway.request("GET", "/v1.44/_ping")
    assert response.status == 200


def test_version_too_old_and_too_new(gateway: Gateway) -> None:
    response, body = gateway.request("GET", "/v1.23/version")
    assert response.status == 400
    assert response.headers["Content-Type"] == "application/json"
    assert _message(body) == (
        "client version 1.23 is too old. Minimum supported API version is 1.24, "
        "please upgrade your client to a newer version"
    )
    response, body = gateway.request("GET", "/v1.52/_ping")
    assert response.status == 400
    assert _message(body) == "client version 1.52 is too new. Maximum supported API version is 1.44"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nope"), ("GET", "/v1.44/nope"), ("PUT", "/version"), ("GET", "/session")],
)
def test_unknown_routes_are_json_404(gateway: Gateway, method: str, path: str) -> None:
    response, body = gateway.request(method, path)
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/json"
    assert _message(body) == "page not found"
    assert response.headers["Api-Version"] == "1.44"


def test_malformed_and_mistyped_create_bodies(gateway: Gateway) -> None:
    headers = {"Content-Type": "application/json"}
    response, body = gateway.request("POST", "/v1.44/containers/create", b"{bad", headers)
    assert response.status == 400
    assert response.headers["Content-Type"] == "application/json"
    assert _message(body).startswith("invalid JSON")
    response, body = gateway.request("POST", "/containers/create", b'{"Image": 5}', headers)
    assert response.status == 400
    assert "$.Image" in _message(body)
    response, body = gateway.request(
        "POST", "/containers/create", b'{"Image":"x","HostConfig":{"Memory":"lots"}}', headers
    )
    assert response.status == 400
    assert "Memory" in _message(body)
    response, body = gateway.request("POST", "/containers/create", b"", headers)
    assert response.status == 400


def test_bad_query_parameters(gateway: Gateway) -> None:
    response, body = gateway.request("GET", "/containers/json?filters=%7Bnope")
    assert response.status == 400
    assert "invalid filter" in _message(body)
    response, body = gateway.request("POST", "/containers/x/wait?condition=sometime")
    assert response.status == 400
    assert _message(body) == "invalid condition"
    response, body = gateway.request("GET", "/containers/x/logs")
    assert response.status == 400
    assert _message(body) == "Bad parameters: you must choose at least one stream"


def test_unsupported_areas(gateway: Gateway) -> None:
    for path in ("/images/search",):
        response, body = gateway.request("GET", path)
        assert response.status == 501, path
        assert response.headers["Content-Type"] == "application/json"
        assert "not supported by berth yet" in _message(body)
    # No orchestrator behind this gateway: swarm paths are 503, never a bare error page.
    response, body = gateway.request("GET", "/swarm")
    assert response.status == 503
    assert "no answer to SwarmInspect" in _message(body)
    response, body = gateway.request("POST", "/grpc")
    assert response.status == 404


def test_pull_error_before_streaming_is_http(gateway: Gateway) -> None:
    # No engine behind this gateway: the pull's RPC fails before any stream, as a plain error.
    response, body = gateway.request(
        "POST", "/v1.44/images/create?fromImage=docker.io/library/busybox&tag=latest"
    )
    assert response.status == 503
    assert response.headers["Content-Type"] == "application/json"
    assert _message(body)


def test_plugin_probe_is_404(gateway: Gateway) -> None:
    response, body = gateway.request("GET", "/v1.44/plugins/foo/json")
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/json"


def test_without_engine_the_answer_is_503(gateway: Gateway) -> None:
    # No engine listens on this NATS: the RPC client gives up and says so in Docker's shape.
    response, body = gateway.request("GET", "/v1.44/containers/json")
    assert response.status == 503
    assert response.headers["Content-Type"] == "application/json"
    assert "berth.engine.v1.rpc" in _message(body)


def test_tcp_listener_and_clean_shutdown(gateway_factory: Any) -> None:
    port = free_port()
    with gateway_factory({"BERTH_HOSTS": f"tcp://127.0.0.1:{port}"}) as gw:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/v1.44/version")
            response = conn.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["ApiVersion"] == "1.44"
        finally:
            conn.close()
        socket_path = gw.socket_path
        gw.proc.send_signal(signal.SIGTERM)
        assert gw.proc.wait(timeout=15) == 0
    assert not os.path.exists(socket_path)  # the socket goes away with the daemon


def test_long_query_strings_and_headers(gateway: Gateway) -> None:
    labels = {f"com.example.label-{i}=value-{i}": True for i in range(600)}
    query = urllib.parse.urlencode({"filters": json.dumps({"label": labels})})
    assert len(query) > 20000
    response, body = gateway.request(
        "GET", f"/v1.44/version?{query}", headers={"X-Registry-Auth": "e30" * 5000}
    )
    assert response.status == 200, body
