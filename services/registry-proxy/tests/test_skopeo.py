"""skopeo, a real client of the proxy: inspect and copy through it."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from proxy_harness import ProxyRun

pytestmark = pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo not installed (make install)")


def skopeo(*args: str) -> str:
    out = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_skopeo_inspect_and_copy(proxy: ProxyRun) -> None:
    hostport = proxy.url.removeprefix("http://")
    # "registry.test" is an upstream alias configured in the fixture (→ the Front).
    ref = f"docker://{hostport}/registry.test/library/multiarch:1"
    doc = json.loads(skopeo("inspect", "--tls-verify=false", ref))
    assert doc["Digest"] == proxy.seeded.multiarch_index
    assert doc["Labels"] == {"arch": "amd64"}
    raw = skopeo("inspect", "--raw", "--tls-verify=false", ref)
    assert len(json.loads(raw)["manifests"]) == 2
    with tempfile.TemporaryDirectory() as tmp:
        skopeo("copy", "--src-tls-verify=false", f"docker://{hostport}/library/multilayer:1", f"oci:{tmp}:x")
        index = json.loads((Path(tmp) / "index.json").read_text())
        assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "x"
    for d in proxy.seeded.multilayer.layer_digests:
        assert proxy.front.blob_gets(d) == 1
