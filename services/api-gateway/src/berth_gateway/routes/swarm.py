"""/swarm, /nodes, /services, /tasks, /secrets and /configs: the orchestrator's objects (swarm mode).

Bodies are Docker's specs, passed on as JSON objects; the orchestrator checks them (a field
berth does not act on is refused by name) and answers dockerd's documents.
"""

from __future__ import annotations

import json
import socket
from typing import Any, TypeVar

import msgspec
from aiohttp import web
from berth_contracts import subjects
from berth_contracts import swarm as sw
from berth_contracts.base import Command, Done, Reply
from berth_contracts.distribution import REGISTRY_AUTH_HEADER
from berth_contracts.errors import BerthError, InvalidParameter
from berth_kit.node import default_node

from berth_gateway.backend import backend
from berth_gateway.params import qbool, qfilters, qtime
from berth_gateway.responses import json_response
from berth_gateway.routes.logs import stream_log
from berth_gateway.routes.table import Route

R = TypeVar("R", bound=Reply)
# Swarm answers come from the swarm's store: a few KV reads, a write fsynced by JetStream.
_TIMEOUT = 30.0
MAX_REGISTRY_AUTH = 16384  # a base64url AuthConfig; the header is smaller in practice


async def _call(request: web.Request, command: Command, reply: type[R]) -> R:
    return await backend(request).rpc.request(subjects.ORCHESTRATOR_RPC, command, reply, timeout=_TIMEOUT)


async def _body(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """A spec as the client sent it: a JSON object whose nulls stay nulls (the orchestrator
    reads a null as an absent field, as Go's decoding into swarm's types does)."""
    data = await request.read()
    if not data.strip():
        if allow_empty:
            return {}
        raise InvalidParameter("invalid JSON: got EOF while reading request body")
    try:
        body = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidParameter(f"invalid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: expected an object")
    return body


def _version(request: web.Request) -> int:
    raw = request.query.get("version", "")
    try:
        return int(raw)
    except ValueError:
        raise InvalidParameter(f"invalid swarm version '{raw}': strconv.ParseUint: parsing {raw!r}: invalid syntax") from None


T = TypeVar("T")


def _init_field(body: dict[str, Any], key: str, kind: type[T], default: T) -> T:
    """An InitRequest field, or Go's words for one of another type."""
    value = body.get(key)
    if value is None:
        return default
    try:
        out = msgspec.convert(value, kind)
    except msgspec.ValidationError:
        raise InvalidParameter(f"json: cannot unmarshal {json.dumps(value)} into Go struct field InitRequest.{key}") from None
    if isinstance(out, int) and not 0 <= out < 2**32:
        raise InvalidParameter(f"json: cannot unmarshal number {value} into Go struct field InitRequest.{key} of type uint32")
    return out


def _ok() -> web.Response:
    return web.Response(status=200)


# --- /swarm ---------------------------------------------------------------------------------------
async def swarm_init(request: web.Request) -> web.Response:
    body = await _body(request)
    reply = await _call(
        request,
        sw.SwarmInit(
            node=default_node(),
            hostname=socket.gethostname(),
            advertise_addr=str(body.get("AdvertiseAddr") or ""),
            listen_addr=str(body.get("ListenAddr") or "0.0.0.0:2377"),
            spec=body.get("Spec") or {},
            force_new_cluster=bool(body.get("ForceNewCluster")),
            default_addr_pool=_init_field(body, "DefaultAddrPool", list[str], []),
            subnet_size=_init_field(body, "SubnetSize", int, 0),
            data_path_port=_init_field(body, "DataPathPort", int, 0),
        ),
        sw.SwarmInitialised,
    )
    return json_response(reply.node_id)


async def swarm_join(request: web.Request) -> web.Response:
    body = await _body(request)
    await _call(
        request,
        sw.SwarmJoin(
            node=default_node(),
            remote_addrs=[str(a) for a in body.get("RemoteAddrs") or []],
            join_token=str(body.get("JoinToken") or ""),
            hostname=socket.gethostname(),
            advertise_addr=str(body.get("AdvertiseAddr") or ""),
            listen_addr=str(body.get("ListenAddr") or "0.0.0.0:2377"),
        ),
        Done,
    )
    return _ok()


async def swarm_inspect(request: web.Request) -> web.Response:
    return json_response((await _call(request, sw.SwarmInspect(), sw.DockerObject)).item)


async def swarm_update(request: web.Request) -> web.Response:
    spec = await _body(request)
    await _call(
        request,
        sw.SwarmUpdate(
            version=_version(request),
            spec=spec,
            rotate_worker_token=qbool(request, "rotateWorkerToken"),
            rotate_manager_token=qbool(request, "rotateManagerToken"),
            rotate_manager_unlock_key=qbool(request, "rotateManagerUnlockKey"),
        ),
        Done,
    )
    return _ok()


async def swarm_leave(request: web.Request) -> web.Response:
    await _call(request, sw.SwarmLeave(node=default_node(), force=qbool(request, "force")), Done)
    return _ok()


async def swarm_unlock_key(request: web.Request) -> web.Response:
    """{"UnlockKey": ""} without autolock, as dockerd answers (the CLI says "no unlock key is set")."""
    reply = await _call(request, sw.SwarmUnlockKey(), sw.UnlockKey)
    return json_response({"UnlockKey": reply.unlock_key})


async def swarm_unlock(request: web.Request) -> web.Response:
    body = await _body(request)
    key = body.get("UnlockKey")
    await _call(request, sw.SwarmUnlock(unlock_key=key if isinstance(key, str) else ""), Done)
    return _ok()


async def local_swarm_info(request: web.Request) -> dict[str, Any]:
    """`docker info`'s Swarm section; inactive when no orchestrator answers (berth started
    without one), as a daemon outside any swarm."""
    try:
        reply = await backend(request).rpc.request(
            subjects.ORCHESTRATOR_RPC, sw.LocalNodeInfo(node=default_node()), sw.NodeSwarmState,
            timeout=3.0, attempts=1,
        )  # fmt: skip
    except BerthError:
        return {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                "Error": "", "RemoteManagers": None}  # fmt: skip
    return reply.info


# --- /nodes ---------------------------------------------------------------------------------------
async def node_list(request: web.Request) -> web.Response:
    return json_response((await _call(request, sw.NodeList(filters=qfilters(request)), sw.DockerObjects)).items)


async def node_inspect(request: web.Request) -> web.Response:
    return json_response((await _call(request, sw.NodeInspect(ref=request.match_info["id"]), sw.DockerObject)).item)


async def node_update(request: web.Request) -> web.Response:
    spec = await _body(request)
    await _call(request, sw.NodeUpdate(ref=request.match_info["id"], version=_version(request), spec=spec), Done)
    return _ok()


async def node_remove(request: web.Request) -> web.Response:
    await _call(request, sw.NodeRemove(ref=request.match_info["id"], force=qbool(request, "force")), Done)
    return _ok()


# --- /services ------------------------------------------------------------------------------------
async def service_list(request: web.Request) -> web.Response:
    cmd = sw.ServiceList(filters=qfilters(request), status=qbool(request, "status"))
    return json_response((await _call(request, cmd, sw.DockerObjects)).items)


async def service_create(request: web.Request) -> web.Response:
    cmd = sw.ServiceCreate(spec=await _body(request), registry_auth=_registry_auth(request))
    reply = await _call(request, cmd, sw.ServiceCreated)
    answer: dict[str, Any] = {"ID": reply.id}
    if reply.warnings:
        answer["Warnings"] = reply.warnings
    return json_response(answer, status=201)


async def service_inspect(request: web.Request) -> web.Response:
    cmd = sw.ServiceInspect(ref=request.match_info["id"], insert_defaults=qbool(request, "insertDefaults"))
    reply = await _call(request, cmd, sw.DockerObject)
    return json_response(reply.item)


async def service_update(request: web.Request) -> web.Response:
    rollback = request.query.get("rollback", "")
    if rollback not in ("", "previous"):
        raise InvalidParameter(f"unrecognized rollback option {rollback}")
    auth_from = request.query.get("registryAuthFrom") or "spec"
    if auth_from not in ("spec", "previous-spec"):
        raise InvalidParameter("unsupported registryAuthFrom value")
    spec = await _body(request)
    cmd = sw.ServiceUpdate(
        ref=request.match_info["id"], version=_version(request), spec=spec,
        rollback="previous" if rollback else "", registry_auth=_registry_auth(request),
        registry_auth_from="previous-spec" if auth_from == "previous-spec" else "spec",
    )  # fmt: skip
    await _call(request, cmd, Done)
    return json_response({"Warnings": None})  # dockerd 20.10's ServiceUpdateResponse


async def service_remove(request: web.Request) -> web.Response:
    await _call(request, sw.ServiceRemove(ref=request.match_info["id"]), Done)
    return _ok()


def _registry_auth(request: web.Request) -> str:
    """`--with-registry-auth`: the client's credentials, passed on as sent (the node's pull
    decodes them, as a `docker pull` with credentials does)."""
    auth = request.headers.get(REGISTRY_AUTH_HEADER, "").strip()
    if len(auth) > MAX_REGISTRY_AUTH:
        raise InvalidParameter("X-Registry-Auth: too large")
    return auth


def _swarm_tail(raw: str) -> int:
    """dockerd's reading of a service log's `tail` (stricter than a container's)."""
    if raw in ("", "all"):
        return -1
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter('tail value must be a positive integer or "all"') from None
    if value < 0:
        raise InvalidParameter("negative tail values not supported")
    return value


async def _swarm_logs(request: web.Request, task: bool) -> web.StreamResponse:
    """A service's (or task's) tasks' logs, read on their nodes: each line's details name its
    node, service and task, which the docker CLI shows as `name@node |`."""
    stdout, stderr = qbool(request, "stdout"), qbool(request, "stderr")
    if not (stdout or stderr):
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    command = sw.ServiceLogs(
        ref=request.match_info["id"],
        stream_subject="",
        task=task,
        stdout=stdout,
        stderr=stderr,
        follow=qbool(request, "follow"),
        tail=_swarm_tail(request.query.get("tail", "")),
        since=qtime(request, "since"),
    )
    return await stream_log(request, command, error_prefix="Error grabbing logs: ")


async def service_logs(request: web.Request) -> web.StreamResponse:
    return await _swarm_logs(request, task=False)


# --- /tasks ---------------------------------------------------------------------------------------
async def task_list(request: web.Request) -> web.Response:
    return json_response((await _call(request, sw.TaskList(filters=qfilters(request)), sw.DockerObjects)).items)


async def task_inspect(request: web.Request) -> web.Response:
    return json_response((await _call(request, sw.TaskInspect(ref=request.match_info["id"]), sw.DockerObject)).item)


async def task_logs(request: web.Request) -> web.StreamResponse:
    return await _swarm_logs(request, task=True)


# --- /secrets and /configs: the same five routes for each kind -------------------------------------
def _data_routes(kind: sw.DataKind) -> list[Route]:
    base = f"/{kind}s"

    async def create(request: web.Request) -> web.Response:
        reply = await _call(request, sw.DataCreate(kind=kind, spec=await _body(request)), sw.DataCreated)
        return json_response({"ID": reply.id}, status=201)

    async def listing(request: web.Request) -> web.Response:
        reply = await _call(request, sw.DataList(kind=kind, filters=qfilters(request)), sw.DockerObjects)
        return json_response(reply.items)

    async def inspect(request: web.Request) -> web.Response:
        reply = await _call(request, sw.DataInspect(kind=kind, ref=request.match_info["id"]), sw.DockerObject)
        return json_response(reply.item)

    async def update(request: web.Request) -> web.Response:
        cmd = sw.DataUpdate(kind=kind, ref=request.match_info["id"], version=_version(request), spec=await _body(request))
        await _call(request, cmd, Done)
        return _ok()

    async def remove(request: web.Request) -> web.Response:
        await _call(request, sw.DataRemove(kind=kind, ref=request.match_info["id"]), Done)
        return web.Response(status=204)

    return [
        Route("GET", base, listing),
        Route("POST", f"{base}/create", create),
        Route("GET", f"{base}/{{id}}", inspect),
        Route("POST", f"{base}/{{id}}/update", update),
        Route("DELETE", f"{base}/{{id}}", remove),
    ]


ROUTES: list[Route] = [
    Route("GET", "/swarm", swarm_inspect),
    Route("POST", "/swarm/init", swarm_init),
    Route("POST", "/swarm/join", swarm_join),
    Route("POST", "/swarm/leave", swarm_leave),
    Route("POST", "/swarm/update", swarm_update),
    Route("GET", "/swarm/unlockkey", swarm_unlock_key),
    Route("POST", "/swarm/unlock", swarm_unlock),
    Route("GET", "/nodes", node_list),
    Route("GET", "/nodes/{id}", node_inspect),
    Route("POST", "/nodes/{id}/update", node_update),
    Route("DELETE", "/nodes/{id}", node_remove),
    Route("GET", "/services", service_list),
    Route("POST", "/services/create", service_create),
    Route("GET", "/services/{id}", service_inspect),
    Route("POST", "/services/{id}/update", service_update),
    Route("DELETE", "/services/{id}", service_remove),
    Route("GET", "/services/{id}/logs", service_logs),
    Route("GET", "/tasks", task_list),
    Route("GET", "/tasks/{id}", task_inspect),
    Route("GET", "/tasks/{id}/logs", task_logs),
    *_data_routes("secret"),
    *_data_routes("config"),
]
