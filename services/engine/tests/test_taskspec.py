from collections.abc import Callable

from berth_contracts.docker import CreateRequest, HostConfig
from berth_engine.containers.records import Record
from berth_engine.containers.taskspec import exit_code_for_start_error, task_spec


def test_task_spec_from_record(make_record: Callable[..., Record]) -> None:
    req = CreateRequest(
        image="busybox",
        cmd=["sleep", "5"],
        env=["FOO=bar", "PATH=/custom"],
        working_dir="/tmp",
        user="1000",
        labels={"l": "v"},
        host_config=HostConfig(memory=64 << 20, pids_limit=-1, cap_add=["NET_ADMIN"],
                               privileged=True, readonly_rootfs=True, nano_cpus=500_000_000),
    )  # fmt: skip
    rec = make_record("web", req)
    spec = task_spec(rec)
    assert spec.args == ["sleep", "5"]
    # moby's daemon environment: PATH and HOSTNAME first, replaced by the container's own.
    assert spec.env[0] == "PATH=/custom"
    assert spec.env[1] == f"HOSTNAME={rec.id[:12]}"
    assert "FOO=bar" in spec.env
    assert "TERM=xterm" not in spec.env
    assert (spec.cwd, spec.user, spec.hostname) == ("/tmp", "1000", rec.id[:12])
    assert spec.network_mode == "bridge"  # the agent makes the namespace, netavark attaches it
    assert spec.memory == 64 << 20 and spec.pids_limit == 0 and spec.nano_cpus == 500_000_000
    assert spec.cap_add == ["NET_ADMIN"] and spec.privileged and spec.readonly_rootfs
    assert spec.labels == {"l": "v"}
    host = make_record("h", CreateRequest(image="busybox", cmd=["true"], tty=True,
                                          host_config=HostConfig(network_mode="host")))  # fmt: skip
    hspec = task_spec(host)
    assert hspec.network_mode == "host"
    assert "TERM=xterm" in hspec.env
    assert hspec.cwd == "/"




def test_exit_code_for_start_error_is_mobys() -> None:
    assert exit_code_for_start_error('exec: "nope": executable file not found in $PATH') == 127
    assert exit_code_for_start_error("stat /x: no such file or directory") == 127
    assert exit_code_for_start_error("permission denied") == 126
    assert exit_code_for_start_error("runc create failed: cgroup trouble") == 128
