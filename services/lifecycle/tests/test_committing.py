"""`docker commit`'s config rules: dockerd's commit instructions and words, moby's merge."""

from __future__ import annotations

import pytest
from berth_contracts.docker import ContainerConfig
from berth_contracts.errors import InvalidParameter
from berth_lifecycle.committing import merge_config
from berth_lifecycle.imageconfig import apply_changes
from berth_lifecycle.imageusage import unix_seconds


def test_changes_apply_on_the_containers_config() -> None:
    base = ContainerConfig(env=["PATH=/bin", "A=0"], cmd=["sh"], working_dir="/srv",
                           labels={"x": "1"})  # fmt: skip
    cfg = apply_changes(["ENV A=1", "WORKDIR sub", "LABEL y=2", "EXPOSE 80", "VOLUME /v"], base, commit=True)
    assert cfg.env == ["PATH=/bin", "A=1"] and cfg.working_dir == "/srv/sub"
    assert cfg.labels == {"x": "1", "y": "2"} and cfg.exposed_ports == {"80/tcp": {}}
    assert cfg.volumes == {"/v": {}} and cfg.cmd == ["sh"]
    assert base.labels == {"x": "1"}  # the base is copied, never changed


@pytest.mark.parametrize("change", ["STOPSIGNAL 9", "RUN x", "FROM x", "COPY a b", "FOO bar"])
def test_commit_refuses_what_dockerd_refuses(change: str) -> None:
    word = change.split()[0].lower()
    with pytest.raises(InvalidParameter, match=f"^{word} is not a valid change command$"):
        apply_changes([change], ContainerConfig(), commit=True)


def test_merge_fills_what_the_new_config_leaves_empty() -> None:
    image = ContainerConfig(user="u", env=["A=1", "B=2"], cmd=["sh"], working_dir="/w",
                            labels={"a": "1"}, stop_signal="SIGINT", volumes={"/d": {}})  # fmt: skip
    merged = merge_config(ContainerConfig(env=["B=3"], labels={"b": "2"}), image)
    assert merged.user == "u" and merged.env == ["B=3", "A=1"] and merged.cmd == ["sh"]
    assert merged.labels == {"a": "1", "b": "2"} and merged.working_dir == "/w"
    assert merged.stop_signal == "SIGINT" and merged.volumes == {"/d": {}}
    # An entrypoint of its own keeps the image's Cmd out (moby's rule).
    assert merge_config(ContainerConfig(entrypoint=["/e"]), image).cmd is None


def test_unix_seconds() -> None:
    assert unix_seconds("2023-11-14T22:13:20Z") == 1_700_000_000
    assert unix_seconds("2023-11-14T22:13:20.123456789Z") == 1_700_000_000
    assert unix_seconds("") == 0
