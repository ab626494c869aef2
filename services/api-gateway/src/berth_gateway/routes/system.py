"""System endpoints: _ping, version, info, the plugin probe of `docker inspect`."""

from __future__ import annotations

import os
import platform

from aiohttp import web
from berth_common.gotime import rfc3339nano
from berth_contracts.engine import EngineInfo, SystemInfo
from berth_contracts.errors import NotFound
from berth_kit.node import engine_labels

from berth_gateway import versions
from berth_gateway.backend import backend
from berth_gateway.responses import json_response
from berth_gateway.routes.swarm import local_swarm_info

_PING_HEADERS = {
    "Builder-Version": "1",  # no BuildKit (/session, /grpc): clients use the classic builder
    "Swarm": "inactive",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
}


async def ping(request: web.Request) -> web.Response:
    body = b"" if request.method == "HEAD" else b"OK"
    response = web.Response(body=body, headers=_PING_HEADERS)
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    if request.method == "HEAD":
        response.headers["Content-Length"] = "0"
    return response


def version_body() -> dict[str, object]:
    kernel = platform.release()
    details = {
        "ApiVersion": versions.API_VERSION,
        "Arch": versions.go_arch(),
        "BuildTime": "",
        "Experimental": "false",
        "GitCommit": versions.GIT_COMMIT,
        "GoVersion": versions.RUNTIME_VERSION,
        "KernelVersion": kernel,
        "MinAPIVersion": versions.MIN_API_VERSION,
        "Os": "linux",
    }
    return {
        "Platform": {"Name": "berth"},
        "Components": [{"Name": "Engine", "Version": versions.ENGINE_VERSION, "Details": details}],
        "Version": versions.ENGINE_VERSION,
        "ApiVersion": versions.API_VERSION,
        "MinAPIVersion": versions.MIN_API_VERSION,
        "GitCommit": versions.GIT_COMMIT,
        "GoVersion": versions.RUNTIME_VERSION,
        "Os": "linux",
        "Arch": versions.go_arch(),
        "KernelVersion": kernel,
        "BuildTime": "",
    }


async def version(request: web.Request) -> web.Response:
    return json_response(version_body())


def info_body(info: EngineInfo) -> dict[str, object]:
    return {
        "ID": info.id,
        "Name": info.name,
        "Containers": info.containers,
        "ContainersRunning": info.running,
        "ContainersPaused": info.paused,
        "ContainersStopped": info.stopped,
        "Images": info.images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "overlayfs"]],
        "Plugins": {
            "Volume": [],
            "Network": [],
            "Authorization": None,
            "Log": ["json-file", "local"],  # and none, which dockerd does not list
        },
        "MemoryLimit": True,
        "SwapLimit": True,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "CPUSet": True,
        "PidsLimit": True,
        "IPv4Forwarding": False,
        "Debug": False,
        "NFd": _open_fds(),
        "OomKillDisable": False,
        "NGoroutines": 0,
        "SystemTime": rfc3339nano(),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": info.cgroup_version,
        "NEventsListener": 0,
        "KernelVersion": info.kernel_version,
        "OperatingSystem": info.operating_system,
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "IndexConfigs": {},
            "InsecureRegistryCIDRs": ["::1/128", "127.0.0.0/8"],
            "Mirrors": [],
        },
        "NCPU": info.ncpu,
        "MemTotal": info.mem_total,
        "GenericResources": None,
        "DockerRootDir": info.data_root,
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Labels": engine_labels(),
        "ExperimentalBuild": False,
        "ServerVersion": versions.ENGINE_VERSION,
        "Runtimes": {"runc": {"path": "runc"}},
        "DefaultRuntime": "runc",
        "Swarm": {},  # info() asks the orchestrator
        "LiveRestoreEnabled": True,  # containers outlive the daemons (shims are not children)
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": info.runtime_version},
        "InitCommit": {"ID": ""},
        # The agent applies this profile unless told otherwise, and refuses to run a container
        # unconfined when the profile file is missing (berth_agent.seccomp).
        "SecurityOptions": ["name=seccomp,profile=default"],
        "Warnings": [],
    }


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


# dockerd's warnings about TCP hosts without TLS (apitls.api_warnings), set by server.py.
API_WARNINGS_KEY = web.AppKey("api_warnings", tuple[str, ...])


async def info(request: web.Request) -> web.Response:
    reply = await backend(request).call(SystemInfo(), EngineInfo)
    body = info_body(reply)
    body["Swarm"] = await local_swarm_info(request)
    warnings: tuple[str, ...] = request.app.get(API_WARNINGS_KEY, ())
    body["Warnings"] = list(warnings)
    return json_response(body)


async def plugin_inspect(request: web.Request) -> web.Response:
    # `docker inspect X` probes plugins last; a 404 lets it report "No such object".
    raise NotFound(f'plugin "{request.match_info["name"]}" not found')
