"""`docker import --change` parsing and image config conversion."""

from __future__ import annotations

import json

import pytest
from berth_contracts.errors import InvalidParameter
from berth_lifecycle.imageconfig import apply_changes, container_config


def test_exec_and_shell_forms() -> None:
    assert apply_changes(['CMD ["a", "b c"]']).cmd == ["a", "b c"]
    assert apply_changes(["CMD echo $HOME"]).cmd == ["/bin/sh", "-c", "echo $HOME"]
    assert apply_changes(["CMD [not json"]).cmd == ["/bin/sh", "-c", "[not json"]
    assert apply_changes(['entrypoint ["/init"]']).entrypoint == ["/init"]


def test_misc_instructions() -> None:
    c = apply_changes(
        [
            "EXPOSE 8000-8002/udp 9000",
            "VOLUME /a /b",
            "ONBUILD RUN make",
            "ENV A=1",
            "ENV A=2",
            "HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/",
        ]
    )
    assert c.exposed_ports == {"8000/udp": {}, "8001/udp": {}, "8002/udp": {}, "9000/tcp": {}}
    assert c.volumes == {"/a": {}, "/b": {}}
    assert c.on_build == ["RUN make"]
    assert c.env == ["A=2"]
    assert c.healthcheck is not None
    assert c.healthcheck.test == ["CMD-SHELL", "curl -f http://localhost/"]
    assert c.healthcheck.interval == 5_000_000_000 and c.healthcheck.retries == 3
    assert apply_changes(["HEALTHCHECK NONE"]).healthcheck.test == ["NONE"]  # type: ignore[union-attr]


@pytest.mark.parametrize("change", ["FROM busybox", "RUN true", "ADD . /", "COPY a b"])
def test_invalid_changes(change: str) -> None:
    word = change.split()[0]
    with pytest.raises(InvalidParameter, match=f"^{word} is not a valid change command$"):
        apply_changes([change])


def test_config_conversion_is_lenient() -> None:
    doc = json.loads(
        '{"config": {"Env": ["A=1"], "Cmd": "sh", "ExposedPorts": {"80/tcp": {}},'
        ' "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000}, "StopTimeout": "bogus"}}'
    )
    c = container_config(doc)
    assert c.env == ["A=1"] and c.cmd == "sh" and c.exposed_ports == {"80/tcp": {}}
    assert c.healthcheck is not None and c.healthcheck.interval == 1000
    assert c.stop_timeout is None  # the one bad field is dropped, the rest kept
