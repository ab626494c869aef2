"""Pure parts of save / push / login: credentials decoding, registry addresses, the manifest
layout dockerd writes, reading stored layers whatever their compression."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pytest
import zstandard
from berth_contracts.errors import InvalidParameter
from berth_lifecycle.push import DOCKER_CONFIG, DOCKER_GZIP, _Blob, manifest_bytes
from berth_lifecycle.regauth import decode_registry_auth, registry_base
from berth_lifecycle.save import layer_size, open_layer
from berth_lifecycle.sharing import login_host
from berth_testsupport.images import busybox_rootfs_tar


def _b64url(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def test_registry_auth_header_forms() -> None:
    creds = decode_registry_auth(_b64url({"username": "u", "password": "secret-pw", "serveraddress": "h:5000"}))
    assert (creds.username, creds.password, creds.server, creds.present) == ("u", "secret-pw", "h:5000", True)
    assert "secret-pw" not in repr(creds)  # a traceback or log line never shows it
    legacy = decode_registry_auth(_b64url({"auth": base64.b64encode(b"u:p:w").decode()}))
    assert (legacy.username, legacy.password) == ("u", "p:w")
    token = decode_registry_auth(_b64url({"identitytoken": "tok"}))
    assert token.present and "tok" not in repr(token)
    # The CLI sends an empty AuthConfig when it has nothing: no credentials, like garbage.
    for header in ("", "e30", "e30=", "!!!", _b64url([1, 2])):
        assert not decode_registry_auth(header).present


def test_login_host() -> None:
    assert login_host("https://index.docker.io/v1/") == "docker.io"
    assert login_host("") == "docker.io"
    assert login_host("127.0.0.1:5000") == "127.0.0.1:5000"
    assert login_host("http://Registry.Test:443/v2/") == "registry.test:443"
    for bad in ("user@host", "a b", "host:port:x"):
        with pytest.raises(InvalidParameter):
            login_host(bad)


def test_registry_base() -> None:
    assert registry_base("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert registry_base("localhost:5000") == "http://localhost:5000"
    assert registry_base("[::1]:5000") == "http://[::1]:5000"
    assert registry_base("registry.test") == "https://registry.test"


def test_manifest_layout_is_dockerds() -> None:
    config = _Blob("sha256:" + "a" * 64, 1469, DOCKER_CONFIG, "")
    layer = _Blob("sha256:" + "b" * 64, 2479, DOCKER_GZIP, "sha256:" + "c" * 64)
    body = manifest_bytes(config, [layer], oci=False)
    # Go's MarshalIndent with three spaces, distribution's field order.
    assert body.startswith(b'{\n   "schemaVersion": 2,\n   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",\n   "config": {\n      "mediaType"')
    assert list(json.loads(body)["layers"][0]) == ["mediaType", "size", "digest"]


def test_layers_read_back_uncompressed(tmp_path: Path) -> None:
    tar = busybox_rootfs_tar()
    for name, data in (("plain", tar), ("gz", gzip.compress(tar)), ("zst", zstandard.ZstdCompressor().compress(tar))):
        path = tmp_path / name
        path.write_bytes(data)
        assert layer_size(path) == len(tar)
        with open_layer(path) as f:
            assert f.read() == tar
