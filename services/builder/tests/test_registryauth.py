"""X-Registry-Config: which of the client's credentials a FROM pull of a given image gets."""

from __future__ import annotations

import base64
import json

from berth_builder.registryauth import RegistryAuth

ALICE = {"username": "alice", "password": "s3cret", "serveraddress": "127.0.0.1:5000"}
HUB = {"username": "hubuser", "password": "hubpw", "serveraddress": "https://index.docker.io/v1/"}


def _header(configs: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(configs).encode()).decode()


def _decoded(value: str) -> object:
    return json.loads(base64.urlsafe_b64decode(value))


def test_the_registry_of_the_image_picks_the_credentials() -> None:
    auth = RegistryAuth.from_header(_header({"127.0.0.1:5000": ALICE, "https://index.docker.io/v1/": HUB}))
    assert _decoded(auth.header_for("127.0.0.1:5000/alice/app:1")) == ALICE
    assert _decoded(auth.header_for("busybox")) == HUB  # Docker Hub's key
    assert auth.header_for("127.0.0.1:6000/other/app") == ""


def test_legacy_keys_match_by_host_but_not_for_docker_hub() -> None:
    auth = RegistryAuth.from_header(_header({"https://127.0.0.1:5000/v1/": ALICE, "docker.io": HUB}))
    assert _decoded(auth.header_for("127.0.0.1:5000/alice/app")) == ALICE
    assert auth.header_for("library/busybox") == ""  # moby: Hub only under its own key


def test_a_header_that_does_not_decode_counts_as_none() -> None:
    for value in ("", "%%%not-base64", base64.urlsafe_b64encode(b"[1, 2]").decode()):
        assert RegistryAuth.from_header(value).header_for("127.0.0.1:5000/a/b") == ""


def test_no_secret_in_its_repr() -> None:
    auth = RegistryAuth.from_header(_header({"127.0.0.1:5000": ALICE}))
    assert "s3cret" not in repr(auth) and "alice" not in repr(auth)
