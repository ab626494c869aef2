"""berth up's --tls/--tlsverify/--tlscacert/--tlscert/--tlskey (dockerd's rules) and
--api-allow-origin: parsing, the refusal of plain TCP, and what reaches the gateway."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from berth_cli.apiprobe import use_hint
from berth_cli.config import UpConfig, UsageError, build_parser, up_config
from berth_cli.daemon import supervisor_argv
from berth_cli.supervisor import service_env
from berth_gateway.apitls import TLSSettings, is_loopback, settings_from_env


def parse_up(*args: str) -> UpConfig:
    return up_config(build_parser().parse_args(["up", *args]))


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a self-signed ca.pem, cert.pem and key.pem (the server's files)."""
    d = tmp_path_factory.mktemp("pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", str(d / "key.pem"),
         "-out", str(d / "cert.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    (d / "ca.pem").write_bytes((d / "cert.pem").read_bytes())
    return d


def tls_files(d: Path) -> list[str]:
    return [
        f"--tlscacert={d / 'ca.pem'}",
        f"--tlscert={d / 'cert.pem'}",
        f"--tlskey={d / 'key.pem'}",
    ]


def test_plain_tcp_on_a_non_loopback_address_is_refused_in_dockerds_words() -> None:
    with pytest.raises(UsageError) as err:
        parse_up("-H", "tcp://0.0.0.0:2375")
    assert str(err.value) == (
        "refusing to serve the API on tcp://0.0.0.0:2375: binding to IP address without"
        " --tlsverify is insecure and gives root access on this machine to everyone who has"
        " access to your network.\n"
        "Please consider generating tls certificates with client validation to prevent exposing"
        " unauthenticated root access to your network.\n"
        "You can override this by explicitly specifying '--tls=false' or '--tlsverify=false'"
    )
    # Loopback needs no TLS, as with dockerd.
    for host in ("tcp://127.0.0.1:2375", "tcp://localhost:2375", "tcp://[::1]:2375"):
        assert parse_up("-H", host).tls.mode == ""


def test_explicit_override_is_accepted(pem: Path) -> None:
    cfg = parse_up("-H", "tcp://0.0.0.0:2375", "--tls=false")
    assert (cfg.tls.tls, cfg.tls.mode) == (False, "")
    cfg = parse_up("-H", "tcp://0.0.0.0:2376", "--tlsverify=false", *tls_files(pem))
    assert (cfg.tls.verify, cfg.tls.mode) == (False, "tls")  # encrypted, clients not checked


def test_tls_flags_follow_dockerd(pem: Path) -> None:
    # --tlsverify turns TLS on; --tls alone verifies clients too (TLSVerify defaults to TLS).
    assert parse_up("-H", "tcp://0.0.0.0:2376", "--tlsverify", *tls_files(pem)).tls.mode == "verify"
    assert parse_up("-H", "tcp://0.0.0.0:2376", "--tls", *tls_files(pem)).tls.mode == "verify"
    assert (
        parse_up("-H", "tcp://0.0.0.0:2376", "--tls", "--tlsverify=0", *tls_files(pem)).tls.mode
        == "tls"
    )
    # With TLS and no -H, dockerd's default host is tcp://localhost:2376.
    assert parse_up("--tlsverify", *tls_files(pem)).hosts == ("tcp://localhost:2376",)
    with pytest.raises(SystemExit):
        parse_up("--tls=maybe")


def test_default_files_are_dockerds(monkeypatch: pytest.MonkeyPatch, pem: Path) -> None:
    monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.setenv("HOME", "/nonexistent-home")
    cfg = parse_up()
    assert (cfg.tls.cacert, cfg.tls.cert, cfg.tls.key) == (
        "/nonexistent-home/.docker/ca.pem",
        "/nonexistent-home/.docker/cert.pem",
        "/nonexistent-home/.docker/key.pem",
    )
    monkeypatch.setenv("DOCKER_CERT_PATH", str(pem))
    cfg = parse_up("-H", "tcp://0.0.0.0:2376", "--tlsverify")
    assert cfg.tls.cert == str(pem / "cert.pem")


def test_unusable_files_are_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="invalid TLS configuration: could not load X509 key pair"):
        parse_up("-H", "tcp://127.0.0.1:2376", "--tlsverify", f"--tlscert={tmp_path}/no.pem")
    # TLS flags without any tcp:// host: nothing to serve with them, nothing to check.
    assert parse_up("-H", "unix:///tmp/x.sock", "--tlsverify").tls.mode == "verify"


def test_settings_reach_the_gateway_and_the_background_supervisor(pem: Path) -> None:
    args = ["-H", "tcp://127.0.0.1:2376", "--tlsverify", *tls_files(pem)]
    cfg = parse_up(*args, "--api-allow-origin=https://ok.example")
    env, listening = service_env(cfg, "nats://127.0.0.1:4222")
    for sock in listening.values():
        sock.close()
    assert settings_from_env(env) == TLSSettings(
        tls=None,
        verify=True,
        cacert=str(pem / "ca.pem"),
        cert=str(pem / "cert.pem"),
        key=str(pem / "key.pem"),
    )
    assert env["BERTH_API_ALLOW_ORIGINS"] == "https://ok.example"
    again = parse_up(*supervisor_argv(cfg)[4:])  # after "python -m berth_cli up"
    assert (again.tls, again.allow_origins) == (cfg.tls, cfg.allow_origins)
    assert "export DOCKER_TLS_VERIFY=1" in use_hint(cfg)


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.1.2.3")
