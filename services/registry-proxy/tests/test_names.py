"""Which upstream a path names."""

from __future__ import annotations

import pytest
from berth_registry_proxy.config import ProxyConfig
from berth_registry_proxy.errors import RegistryError
from berth_registry_proxy.names import split_name


def test_split_name() -> None:
    assert split_name("busybox") == ("docker.io", "library/busybox")
    assert split_name("user/app") == ("docker.io", "user/app")
    assert split_name("ghcr.io/org/app") == ("ghcr.io", "org/app")
    assert split_name("127.0.0.1:5000/library/busybox") == ("127.0.0.1:5000", "library/busybox")
    assert split_name("library/busybox", ns="127.0.0.1:5000") == ("127.0.0.1:5000", "library/busybox")
    assert split_name("busybox", ns="docker.io") == ("docker.io", "library/busybox")
    with pytest.raises(RegistryError):
        split_name("Bad/Name")
    # splitDockerDomain, as dockerd parses `docker pull Foo/bar`: an upper-case first part is a host.
    assert split_name("Foo/bar") == ("foo", "bar")


def test_plain_http_only_for_loopback_or_configured() -> None:
    cfg = ProxyConfig(insecure=frozenset({"reg.lan:5000"}), upstreams={"quay.io": "https://mirror.example"})
    assert cfg.base_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert cfg.base_url("localhost:5000") == "http://localhost:5000"
    assert cfg.base_url("[::1]:5000") == "http://[::1]:5000"  # ::1 is loopback too, as for dockerd
    assert cfg.base_url("127.0.0.1.nip.test:5000") == "https://127.0.0.1.nip.test:5000"
    assert cfg.base_url("reg.lan:5000") == "http://reg.lan:5000"
    assert cfg.base_url("ghcr.io") == "https://ghcr.io"
    assert cfg.base_url("quay.io") == "https://mirror.example"
    assert cfg.base_url("docker.io") == "https://registry-1.docker.io"


def test_hosts_are_checked_and_case_folded() -> None:
    cfg = ProxyConfig(upstreams={"registry.test": "http://127.0.0.1:1"}, allowed_hosts=frozenset({"ok.test"}))
    assert split_name("busybox", ns="Docker.IO", config=cfg) == ("docker.io", "library/busybox")
    assert split_name("x", ns="index.docker.io", config=cfg) == ("docker.io", "library/x")
    assert split_name("REGISTRY.TEST/a/b", config=cfg) == ("registry.test", "a/b")
    assert split_name("a", ns="[::1]:5000") == ("[::1]:5000", "a")
    for ns in ("127.0.0.1:5000/../..", "h/x", "u@h", "h:0", "h:65536", "[zz]", "a..b", "h\n", "x" * 256):
        with pytest.raises(RegistryError) as err:
            split_name("a", ns=ns, config=cfg)
        assert (err.value.code, err.value.status) == ("NAME_INVALID", 400), ns
    with pytest.raises(RegistryError) as err:
        split_name("a", ns="elsewhere.test", config=cfg)  # passes the grammar, not allowed here
    assert (err.value.code, err.value.status) == ("DENIED", 403)
    assert split_name("a", ns="ok.test", config=cfg) == ("ok.test", "a")


def test_references() -> None:
    from berth_registry_proxy.names import check_reference

    check_reference("1.0_rc-1")
    check_reference("sha256:" + "a" * 64)
    for ref, code in [("latest\n", "TAG_INVALID"), (".hidden", "TAG_INVALID"), ("t" * 129, "TAG_INVALID"),
                      ("\u00e4", "TAG_INVALID"), ("sha256:" + "A" * 64, "DIGEST_INVALID"),
                      ("sha512:" + "a" * 128, "DIGEST_INVALID"), ("sha256:..", "DIGEST_INVALID")]:
        with pytest.raises(RegistryError) as err:
            check_reference(ref)
        assert err.value.code == code and err.value.status == 400, ref
