"""GET /containers/{id}/top, POST /containers/{id}/update, GET /containers/{id}/stats.

Stats follow moby: a sample a second (each with the previous one as precpu_stats); without
`stream`, the second sample (so that CPU percentages can be computed) unless `one-shot`; a
container that is not running answers one empty sample.
"""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
from aiohttp import web
from berth_contracts.agentops import TaskStatsSample, TaskTopResult
from berth_contracts.containerops import (
    ContainerStats,
    ContainerTop,
    ContainerUpdate,
    ContainerUpdated,
    UpdateConfig,
)
from berth_contracts.docker import ZERO_TIME
from berth_contracts.engine import ContainerRef, ContainerResolve
from berth_contracts.errors import Conflict, NotFound

from berth_gateway.backend import Backend, backend
from berth_gateway.bodies import read_json
from berth_gateway.params import qbool
from berth_gateway.responses import JSON, json_line, json_response

INTERVAL = 1.0


async def top(request: web.Request) -> web.Response:
    reply = await backend(request).call(
        ContainerTop(ref=request.match_info["id"], ps_args=request.query.get("ps_args", "-ef")),
        TaskTopResult,
    )
    return json_response({"Titles": reply.titles, "Processes": reply.processes})


async def update(request: web.Request) -> web.Response:
    config = await read_json(request, UpdateConfig)
    assert config is not None
    reply = await backend(request).call(
        ContainerUpdate(ref=request.match_info["id"], config=config), ContainerUpdated
    )
    return json_response({"Warnings": reply.warnings or None})


def _cpu(sample: TaskStatsSample | None) -> dict[str, Any]:
    if sample is None:
        return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}  # fmt: skip
    return {
        "cpu_usage": {
            "total_usage": sample.cpu_total,
            "percpu_usage": sample.cpu_percpu,
            "usage_in_kernelmode": sample.cpu_kernel,
            "usage_in_usermode": sample.cpu_user,
        },
        "system_cpu_usage": sample.system_cpu,
        "online_cpus": sample.online_cpus,
        "throttling_data": {
            "periods": sample.throttling.get("nr_periods", 0),
            "throttled_periods": sample.throttling.get("nr_throttled", 0),
            "throttled_time": sample.throttling.get("throttled_time", 0),
        },
    }


def stats_json(
    ref: ContainerRef, sample: TaskStatsSample | None, previous: TaskStatsSample | None
) -> dict[str, Any]:
    """Docker's StatsJSON (cgroup v1 field names)."""
    out: dict[str, Any] = {
        "read": sample.read if sample else ZERO_TIME,
        "preread": previous.read if previous else ZERO_TIME,
        "pids_stats": {},
        "blkio_stats": {key: None for key in _BLKIO_KEYS},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu(sample),
        "precpu_stats": _cpu(previous),
        "memory_stats": {},
        "name": "/" + ref.name,
        "id": ref.id,
    }
    if sample is None:
        return out
    out["pids_stats"] = {"current": sample.pids_current}
    if sample.pids_limit:
        out["pids_stats"]["limit"] = sample.pids_limit
    out["blkio_stats"]["io_service_bytes_recursive"] = [
        {"major": ma, "minor": mi, "op": op, "value": v} for ma, mi, op, v in sample.blkio
    ]
    out["memory_stats"] = {
        "usage": sample.mem_usage,
        "max_usage": sample.mem_max_usage,
        "stats": sample.mem_stats,
        "failcnt": sample.mem_failcnt,
        "limit": sample.mem_limit,
    }
    out["networks"] = sample.networks
    return out


_BLKIO_KEYS = (
    "io_service_bytes_recursive",
    "io_serviced_recursive",
    "io_queue_recursive",
    "io_service_time_recursive",
    "io_wait_time_recursive",
    "io_merged_recursive",
    "io_time_recursive",
    "sectors_recursive",
)


async def _sample(be: Backend, ref: ContainerRef) -> TaskStatsSample | None:
    """A reading; None once the container is not running (or gone)."""
    try:
        return await be.call(ContainerStats(ref=ref.id), TaskStatsSample)
    except (Conflict, NotFound):
        return None


async def stats(request: web.Request) -> web.StreamResponse:
    be = backend(request)
    ref = await be.call(ContainerResolve(ref=request.match_info["id"]), ContainerRef)
    stream = qbool(request, "stream", True)
    one_shot = qbool(request, "one-shot")
    first = await _sample(be, ref)
    if not stream:
        primer = None
        if first is not None and not one_shot:
            await anyio.sleep(INTERVAL)  # two readings: CPU use is a difference
            primer, first = first, await _sample(be, ref)
        return json_response(stats_json(ref, first, primer if first else None))
    response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
    response.enable_chunked_encoding()
    await response.prepare(request)
    previous: TaskStatsSample | None = None
    sample = first
    with contextlib.suppress(ConnectionError):
        while True:
            await response.write(json_line(stats_json(ref, sample, previous)))
            if sample is None:
                break  # stopped: moby ends the stream too
            await anyio.sleep(INTERVAL)
            previous, sample = sample, await _sample(be, ref)
        await response.write_eof()
    return response
