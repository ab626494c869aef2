import pytest
from berth_contracts.docker import (
    ContainerConfig,
    CreateRequest,
    HostConfig,
    RestartPolicy,
)
from berth_contracts.errors import InvalidParameter, NotImplementedByBerth
from berth_engine.containers.merge import (
    check_supported,
    final_command,
    merge_config,
    merge_env,
    normalise_host_config,
)

CID = "0123456789ab" + "f" * 52
IMAGE = ContainerConfig(
    env=["PATH=/bin", "LANG=C"],
    cmd=["sh"],
    working_dir="/srv",
    user="nobody",
    labels={"a": "image", "b": "image"},
    stop_signal="SIGQUIT",
)


def test_env_container_overrides_image_by_key() -> None:
    assert merge_env(["PATH=/bin", "LANG=C"], ["LANG=de", "X=1"]) == ["LANG=de", "X=1", "PATH=/bin"]
    assert merge_env(["PATH=/bin"], None) == ["PATH=/bin"]
    assert merge_env(None, ["A=1"]) == ["A=1"]


def test_image_defaults_fill_what_the_request_left_out() -> None:
    cfg = merge_config(CreateRequest(image="busybox"), IMAGE, CID, "busybox")
    assert cfg.cmd == ["sh"]
    assert cfg.entrypoint is None
    assert cfg.working_dir == "/srv"
    assert cfg.user == "nobody"
    assert cfg.hostname == CID[:12]
    assert cfg.image == "busybox"
    assert cfg.stop_signal == "SIGQUIT"
    assert cfg.env == ["PATH=/bin", "LANG=C"]
    assert final_command(cfg) == ["sh"]


def test_request_wins() -> None:
    req = CreateRequest(
        image="busybox:1",
        cmd="echo hi",  # Docker's strslice accepts a plain string
        working_dir="/tmp",
        user="0:0",
        hostname="box",
        labels={"b": "mine", "c": "mine"},
        stop_signal="SIGINT",
        stop_timeout=3,
    )
    cfg = merge_config(req, IMAGE, CID, "busybox:1")
    assert cfg.cmd == ["echo hi"]
    assert (cfg.working_dir, cfg.user, cfg.hostname) == ("/tmp", "0:0", "box")
    assert cfg.labels == {"a": "image", "b": "mine", "c": "mine"}
    assert (cfg.stop_signal, cfg.stop_timeout) == ("SIGINT", 3)


def test_entrypoint_rules() -> None:
    image = ContainerConfig(entrypoint=["/entry"], cmd=["default"])
    # No entrypoint in the request: image entrypoint, request cmd (else image cmd).
    assert final_command(merge_config(CreateRequest(), image, CID, "x")) == ["/entry", "default"]
    got = merge_config(CreateRequest(cmd=["other"]), image, CID, "x")
    assert final_command(got) == ["/entry", "other"]
    # An entrypoint in the request drops the image's cmd.
    got = merge_config(CreateRequest(entrypoint=["/bin/sh", "-c"]), image, CID, "x")
    assert final_command(got) == ["/bin/sh", "-c"]
    got = merge_config(CreateRequest(entrypoint="/bin/echo", cmd=["a"]), image, CID, "x")
    assert final_command(got) == ["/bin/echo", "a"]
    # `--entrypoint ""` clears it; the request's cmd is the command.
    got = merge_config(CreateRequest(entrypoint=[""], cmd=["ls"]), image, CID, "x")
    assert got.entrypoint is None
    assert final_command(got) == ["ls"]


def test_no_command() -> None:
    cfg = merge_config(CreateRequest(), ContainerConfig(), CID, "scratch")
    with pytest.raises(InvalidParameter) as err:
        final_command(cfg)
    assert err.value.message == "no command specified"


def test_host_config_normalised_like_dockerd() -> None:
    hc = normalise_host_config(HostConfig(network_mode="default"))
    assert hc.network_mode == "bridge"
    assert hc.log_config.type == "json-file"
    assert normalise_host_config(HostConfig()).network_mode == "bridge"
    assert normalise_host_config(HostConfig(network_mode="host")).network_mode == "host"


@pytest.mark.parametrize(
    "hc",
    [
        HostConfig(runtime="crun"),
    ],
)
def test_unsupported_features_are_refused(hc: HostConfig) -> None:
    with pytest.raises(NotImplementedByBerth) as err:
        check_supported(CreateRequest(image="busybox", host_config=hc))
    assert "berth does not support" in err.value.message


def test_what_the_cli_sends_by_default_is_accepted() -> None:
    check_supported(
        CreateRequest(
            image="busybox",
            host_config=HostConfig(
                network_mode="default",
                port_bindings={},
                restart_policy=RestartPolicy(name="no"),
                binds=None,
            ),
        )
    )
    check_supported(
        CreateRequest(image="x", host_config=HostConfig(port_bindings={"80/tcp": None}))
    )


def test_daemon_defaults_are_stored() -> None:
    hc = normalise_host_config(HostConfig(pids_limit=0, memory_swappiness=-1))
    assert (hc.ipc_mode, hc.runtime, hc.shm_size) == ("private", "runc", 64 * 1024 * 1024)
    assert hc.cgroupns_mode in ("host", "private")
    assert hc.pids_limit is None and hc.memory_swappiness is None
    assert hc.masked_paths and "/proc/kcore" in hc.masked_paths
    assert hc.readonly_paths == [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ]
    privileged = normalise_host_config(HostConfig(privileged=True, pids_limit=100))
    assert privileged.masked_paths is None and privileged.readonly_paths is None
    assert privileged.pids_limit == 100


@pytest.mark.parametrize(
    "hc", [HostConfig(shm_size=1 << 30), HostConfig(runtime="crun")]
)
def test_more_unsupported(hc: HostConfig) -> None:
    with pytest.raises(NotImplementedByBerth):
        check_supported(CreateRequest(image="busybox", host_config=hc))
