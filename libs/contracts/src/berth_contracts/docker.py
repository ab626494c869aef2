"""Docker Engine API object shapes, as msgspec Structs with Docker's own JSON field names.

The api-gateway decodes request bodies straight into these (a known field of the wrong type is a
400) and encodes replies from them, so what the engine builds is exactly what clients read. Fields
berth does not model are absent from replies; unknown fields in requests are ignored, as dockerd
ignores them. Names follow Docker's (`rename="pascal"` plus explicit names where Docker's casing
is not plain Pascal case).
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import field

# Docker's strslice: a JSON string or a list of strings.
StrSlice = list[str] | str | None

ZERO_TIME = "0001-01-01T00:00:00Z"


class _Docker(msgspec.Struct, rename="pascal", omit_defaults=False):
    pass


class HealthConfig(_Docker):
    test: list[str] | None = None
    interval: int = 0
    timeout: int = 0
    retries: int = 0
    start_period: int = 0
    start_interval: int = 0


class ContainerConfig(_Docker):
    """Docker's container.Config; also the shape of an image's Config."""

    hostname: str = ""
    domainname: str = ""
    user: str = ""
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    exposed_ports: dict[str, dict[str, Any]] | None = None
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    env: list[str] | None = None
    cmd: StrSlice = None
    healthcheck: HealthConfig | None = None
    args_escaped: bool = False
    image: str = ""
    volumes: dict[str, dict[str, Any]] | None = None
    working_dir: str = ""
    entrypoint: StrSlice = None
    network_disabled: bool = False
    on_build: list[str] | None = field(default=None, name="OnBuild")
    labels: dict[str, str] | None = None
    stop_signal: str = ""
    stop_timeout: int | None = None
    shell: list[str] | None = None


class LogConfig(_Docker):
    type: str = ""
    config: dict[str, str] | None = None


class RestartPolicy(_Docker):
    name: str = ""
    maximum_retry_count: int = 0


class PortBinding(_Docker):
    host_ip: str = field(default="", name="HostIp")
    host_port: str = ""


class Ulimit(_Docker):
    name: str
    soft: int
    hard: int


class HostConfig(_Docker):
    binds: list[str] | None = None
    container_id_file: str = field(default="", name="ContainerIDFile")
    log_config: LogConfig = msgspec.field(default_factory=LogConfig)
    network_mode: str = ""
    port_bindings: dict[str, list[PortBinding] | None] | None = None
    restart_policy: RestartPolicy = msgspec.field(default_factory=RestartPolicy)
    auto_remove: bool = False
    volume_driver: str = ""
    volumes_from: list[str] | None = None
    console_size: list[int] | None = None
    annotations: dict[str, str] | None = None
    cap_add: list[str] | None = None
    cap_drop: list[str] | None = None
    cgroupns_mode: str = ""
    dns: list[str] | None = None
    dns_options: list[str] | None = None
    dns_search: list[str] | None = None
    extra_hosts: list[str] | None = None
    group_add: list[str] | None = None
    ipc_mode: str = ""
    cgroup: str = ""
    links: list[str] | None = None
    oom_score_adj: int = 0
    pid_mode: str = ""
    privileged: bool = False
    publish_all_ports: bool = False
    readonly_rootfs: bool = False
    security_opt: list[str] | None = None
    tmpfs: dict[str, str] | None = None
    uts_mode: str = field(default="", name="UTSMode")
    userns_mode: str = ""
    shm_size: int = 0
    sysctls: dict[str, str] | None = None
    runtime: str = ""
    isolation: str = ""
    cpu_shares: int = 0
    memory: int = 0
    nano_cpus: int = 0
    cgroup_parent: str = ""
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    devices: list[dict[str, Any]] | None = None
    device_cgroup_rules: list[str] | None = None
    memory_reservation: int = 0
    memory_swap: int = 0
    memory_swappiness: int | None = None
    oom_kill_disable: bool | None = None
    pids_limit: int | None = None
    ulimits: list[Ulimit] | None = None
    init: bool | None = None
    mounts: list[dict[str, Any]] | None = None
    masked_paths: list[str] | None = None
    readonly_paths: list[str] | None = None


class EndpointIPAMConfig(_Docker):
    ipv4_address: str = field(default="", name="IPv4Address")
    ipv6_address: str = field(default="", name="IPv6Address")
    link_local_ips: list[str] | None = field(default=None, name="LinkLocalIPs")


class EndpointSettings(_Docker):
    ipam_config: EndpointIPAMConfig | None = field(default=None, name="IPAMConfig")
    links: list[str] | None = None
    aliases: list[str] | None = None
    mac_address: str = ""
    driver_opts: dict[str, str] | None = None
    network_id: str = field(default="", name="NetworkID")
    endpoint_id: str = field(default="", name="EndpointID")
    gateway: str = ""
    ip_address: str = field(default="", name="IPAddress")
    ip_prefix_len: int = field(default=0, name="IPPrefixLen")
    ipv6_gateway: str = field(default="", name="IPv6Gateway")
    global_ipv6_address: str = field(default="", name="GlobalIPv6Address")
    global_ipv6_prefix_len: int = field(default=0, name="GlobalIPv6PrefixLen")
    dns_names: list[str] | None = field(default=None, name="DNSNames")


class NetworkingConfig(_Docker):
    endpoints_config: dict[str, EndpointSettings] | None = None


class CreateRequest(ContainerConfig):
    """Body of POST /containers/create: the Config fields at top level plus these."""

    host_config: HostConfig = msgspec.field(default_factory=HostConfig)
    networking_config: NetworkingConfig | None = None
    # Config.MacAddress (deprecated in API 1.44 for EndpointSettings.MacAddress); not shown back.
    mac_address: str = ""


class HealthLog(_Docker):
    start: str
    end: str
    exit_code: int
    output: str


class Health(_Docker):
    status: str = "none"
    failing_streak: int = 0
    log: list[HealthLog] = msgspec.field(default_factory=list)


class ContainerState(_Docker):
    status: str = "created"  # created|running|paused|restarting|removing|exited|dead
    running: bool = False
    paused: bool = False
    restarting: bool = False
    oom_killed: bool = field(default=False, name="OOMKilled")
    dead: bool = False
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    health: Health | None = None


class GraphDriver(_Docker):
    name: str = "overlay2"
    data: dict[str, str] | None = None


class MountPoint(_Docker):
    type: str = ""
    name: str = ""
    source: str = ""
    destination: str = ""
    driver: str = ""
    mode: str = ""
    rw: bool = field(default=True, name="RW")
    propagation: str = ""


class NetworkSettings(_Docker):
    bridge: str = ""
    sandbox_id: str = field(default="", name="SandboxID")
    sandbox_key: str = ""
    ports: dict[str, list[PortBinding] | None] = msgspec.field(default_factory=dict)
    hairpin_mode: bool = False
    link_local_ipv6_address: str = field(default="", name="LinkLocalIPv6Address")
    link_local_ipv6_prefix_len: int = field(default=0, name="LinkLocalIPv6PrefixLen")
    endpoint_id: str = field(default="", name="EndpointID")
    gateway: str = ""
    global_ipv6_address: str = field(default="", name="GlobalIPv6Address")
    global_ipv6_prefix_len: int = field(default=0, name="GlobalIPv6PrefixLen")
    ip_address: str = field(default="", name="IPAddress")
    ip_prefix_len: int = field(default=0, name="IPPrefixLen")
    ipv6_gateway: str = field(default="", name="IPv6Gateway")
    mac_address: str = ""
    networks: dict[str, EndpointSettings] = msgspec.field(default_factory=dict)


class ContainerInspect(_Docker):
    id: str
    created: str
    path: str
    args: list[str]
    state: ContainerState
    image: str  # sha256:<hex> image id
    resolv_conf_path: str = ""
    hostname_path: str = ""
    hosts_path: str = ""
    log_path: str = ""
    name: str = ""  # "/name"
    restart_count: int = 0
    driver: str = "overlay2"
    platform: str = "linux"
    mount_label: str = ""
    process_label: str = ""
    app_armor_profile: str = ""
    exec_ids: list[str] | None = field(default=None, name="ExecIDs")
    host_config: HostConfig = msgspec.field(default_factory=HostConfig)
    graph_driver: GraphDriver = msgspec.field(default_factory=GraphDriver)
    mounts: list[MountPoint] = msgspec.field(default_factory=list)
    config: ContainerConfig = msgspec.field(default_factory=ContainerConfig)
    network_settings: NetworkSettings = msgspec.field(default_factory=NetworkSettings)


class PortSummary(msgspec.Struct):
    PrivatePort: int
    Type: str
    IP: str | None = None
    PublicPort: int | None = None


class SummaryHostConfig(_Docker):
    network_mode: str = ""


class SummaryNetworkSettings(_Docker):
    networks: dict[str, EndpointSettings] = msgspec.field(default_factory=dict)


class ContainerSummary(_Docker):
    id: str
    names: list[str]
    image: str
    image_id: str = field(name="ImageID")
    command: str
    created: int
    state: str
    status: str
    ports: list[PortSummary] = msgspec.field(default_factory=list)
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    host_config: SummaryHostConfig = msgspec.field(default_factory=SummaryHostConfig)
    network_settings: SummaryNetworkSettings = msgspec.field(
        default_factory=SummaryNetworkSettings
    )
    mounts: list[MountPoint] = msgspec.field(default_factory=list)
    size_rw: int | None = None
    size_root_fs: int | None = None


class RootFS(_Docker):
    type: str = "layers"
    layers: list[str] = msgspec.field(default_factory=list)


class ImageMetadata(_Docker):
    last_tag_time: str = ZERO_TIME


class ImageInspect(_Docker):
    id: str
    repo_tags: list[str]
    repo_digests: list[str]
    created: str
    size: int
    config: ContainerConfig
    root_fs: RootFS = field(name="RootFS")
    parent: str = ""
    comment: str = ""
    docker_version: str = ""
    author: str = ""
    architecture: str = "amd64"
    variant: str = ""
    os: str = field(default="linux", name="Os")
    graph_driver: GraphDriver = msgspec.field(default_factory=GraphDriver)
    metadata: ImageMetadata = msgspec.field(default_factory=ImageMetadata)


class ImageSummary(_Docker):
    id: str
    parent_id: str
    repo_tags: list[str]
    repo_digests: list[str]
    created: int
    size: int
    shared_size: int = -1
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    containers: int = -1


class ImageDeleteItem(_Docker):
    untagged: str | None = None
    deleted: str | None = None


class EventActor(msgspec.Struct):
    ID: str
    Attributes: dict[str, str] = msgspec.field(default_factory=dict)


class Event(msgspec.Struct, omit_defaults=True):
    """One Docker event (GET /events), including the legacy status/id/from fields."""

    Type: str
    Action: str
    Actor: EventActor
    scope: str = "local"
    time: int = 0
    timeNano: int = 0
    status: str | None = None
    id: str | None = None
    # `from` is a Python keyword: the attribute is from_, the JSON name is "from".
    from_: str | None = field(default=None, name="from")


class WaitError(msgspec.Struct):
    Message: str


class WaitResponse(msgspec.Struct):
    StatusCode: int
    Error: WaitError | None = None
