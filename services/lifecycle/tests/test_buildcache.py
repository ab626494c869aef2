"""The classic build cache's comparison (moby's image/cache/compare.go)."""

from __future__ import annotations

import msgspec
from berth_contracts.docker import ContainerConfig
from berth_lifecycle.buildcache import configs_match

BASE = ContainerConfig(
    cmd=["/bin/sh", "-c", "#(nop) ", "ENV A=b"], env=["PATH=/bin", "A=b"], labels={"k": "v"},
    exposed_ports={"80/tcp": {}}, volumes={"/v": {}}, working_dir="/w", user="1",
)  # fmt: skip


def test_what_moby_compares() -> None:
    assert configs_match(BASE, msgspec.structs.replace(BASE))
    # WorkingDir, Hostname and Image are not compared (moby's compare leaves them out).
    assert configs_match(BASE, msgspec.structs.replace(BASE, working_dir="/x", hostname="h", image="i"))
    for change in (
        {"cmd": ["/bin/sh", "-c", "#(nop) ", "ENV A=c"]}, {"env": ["PATH=/bin"]}, {"labels": {}},
        {"exposed_ports": None}, {"volumes": {"/w": {}}}, {"user": "2"}, {"entrypoint": ["x"]},
        {"tty": True}, {"attach_stdout": True},
    ):  # fmt: skip
        assert not configs_match(BASE, msgspec.structs.replace(BASE, **change)), change
    stdin = msgspec.structs.replace(BASE, open_stdin=True)
    assert not configs_match(stdin, stdin)
    assert not configs_match(None, BASE)
