"""dockerd's TLS rules as the gateway applies them (BERTH_TLS* environment)."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from berth_gateway.apitls import (
    TLSConfigError,
    TLSSettings,
    api_warnings,
    check_plain_tcp,
    server_context,
    settings_from_env,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_dockerds_flag_semantics() -> None:
    # Nothing said: no TLS, and not explicit (plain TCP off loopback is refused).
    none = settings_from_env({})
    assert (none.enabled, none.verifies_clients, none.explicit) == (False, False, False)
    # --tls alone verifies clients (dockerd: TLSVerify defaults to TLS).
    tls = settings_from_env({"BERTH_TLS": "1"})
    assert (tls.enabled, tls.verifies_clients) == (True, True)
    # --tlsverify=false still turns TLS on, without client verification.
    no_verify = settings_from_env({"BERTH_TLSVERIFY": "0"})
    assert (no_verify.enabled, no_verify.verifies_clients, no_verify.explicit) == (
        True,
        False,
        True,
    )
    # --tls=false: explicitly plain.
    off = settings_from_env({"BERTH_TLS": "0"})
    assert (off.enabled, off.explicit) == (False, True)


def test_plain_tcp_refusal() -> None:
    with pytest.raises(TLSConfigError, match="--tls=false' or '--tlsverify=false'"):
        check_plain_tcp([("tcp://0.0.0.0:2375", "0.0.0.0")], TLSSettings())
    with pytest.raises(TLSConfigError, match="refusing to serve the API on tcp://10.0.0.1:2375"):
        check_plain_tcp([("tcp://10.0.0.1:2375", "10.0.0.1")], TLSSettings())
    check_plain_tcp([("tcp://127.0.0.1:2375", "127.0.0.1")], TLSSettings())
    check_plain_tcp([("tcp://0.0.0.0:2375", "0.0.0.0")], TLSSettings(tls=False))


def test_missing_files_are_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(TLSConfigError, match="could not load X509 key pair"):
        server_context(TLSSettings(tls=True, cert=str(tmp_path / "c"), key=str(tmp_path / "k")))
    assert server_context(TLSSettings()) is None


def test_info_warnings_are_dockerds() -> None:
    [plain] = api_warnings(["0.0.0.0:2375"], TLSSettings(tls=False))
    assert plain.startswith(
        "[DEPRECATION NOTICE]: API is accessible on http://0.0.0.0:2375 without encryption."
    )
    assert plain.endswith("Learn more at: https://docs.docker.com/go/api-security/")
    [unverified] = api_warnings(["127.0.0.1:2376"], TLSSettings(verify=False))
    assert "https://127.0.0.1:2376 without TLS client verification." in unverified
    assert api_warnings(["127.0.0.1:2376"], TLSSettings(verify=True)) == ()


def test_gateway_refuses_plain_tcp_off_loopback_on_its_own(nats_url: str) -> None:
    """Started directly (the compose deployment), the gateway applies the rule too."""
    env = {
        "BERTH_NATS_URL": nats_url,
        "BERTH_HOSTS": "tcp://0.0.0.0:0",
        "BERTH_NODE": "gwtest",
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "berth_gateway"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "binding to IP address without --tlsverify is insecure" in proc.stderr
