"""The Engine API's /secrets and /configs (dockerd's answers and words): data kept in the
swarm's state and given to the tasks that name it as files (taskspec.file_refs, then the node's
engine: berth_engine.swarm.taskfiles). A secret's data is never shown; a config's is."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable

from berth_common.gotime import rfc3339nano
from berth_contracts import swarm as sw
from berth_contracts.base import Done
from berth_contracts.errors import Conflict, InvalidParameter, NotImplementedByBerth

from berth_orchestrator import ids, specdoc, taskspec
from berth_orchestrator.lookup import check_filters, labels_match, resolve, service_name
from berth_orchestrator.records import DataRecord, Document
from berth_orchestrator.store import Snapshot, SwarmStore

# swarmkit's limits (MaxSecretSize, MaxConfigSize) and name rule (validateAnnotations)
_MAX_SIZE = {"secret": 500 * 1024, "config": 1000 * 1024}
_NAME = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9._-]{0,62}[a-zA-Z0-9])?")


def data_name(record: DataRecord) -> str:
    return str(record.spec.get("Name") or "")


def _checked(kind: str, spec: Document) -> Document:
    driver: specdoc.Schema = {"Name": None, "Options": None}
    spec = specdoc.go_names(spec, {"Name": None, "Labels": None, "Data": None, "Driver": driver, "Templating": driver})
    storage = spec.get("Driver") or {}
    if not isinstance(storage, dict) or storage.get("Name"):
        raise NotImplementedByBerth(f"{kind} drivers (--driver) are not supported by berth: the data is kept in the swarm")
    templating = spec.get("Templating") or {}
    if not isinstance(templating, dict) or templating.get("Name") not in (None, "", "golang"):
        raise InvalidParameter(f"unrecognized template type {templating.get('Name')!r}: berth knows only golang")
    unknown = set(spec) - {"Name", "Labels", "Data", "Driver", "Templating"}
    if unknown:
        raise InvalidParameter(f"{kind.capitalize()}Spec.{sorted(unknown)[0]} is not supported by berth's swarm mode")
    name = spec.get("Name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidParameter(
            "rpc error: code = InvalidArgument desc = invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, "
            "and the start and end character must be [a-zA-Z0-9]"
        )
    try:
        data = base64.b64decode(str(spec.get("Data") or ""), validate=True)
    except binascii.Error:
        raise InvalidParameter(f"invalid {kind} data: not base64") from None
    if not 0 < len(data) < _MAX_SIZE[kind]:
        raise InvalidParameter(
            f"rpc error: code = InvalidArgument desc = {kind} data must be larger than 0 and less than "
            f"{_MAX_SIZE[kind] // 1024} KiB"
        )
    checked: Document = {"Name": name, "Labels": _labels(spec), "Data": base64.b64encode(data).decode()}
    if templating.get("Name"):  # expanded for each task (templating.py)
        checked["Templating"] = {"Name": "golang"}
    return checked


def _labels(spec: Document) -> dict[str, str]:
    labels = spec.get("Labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise InvalidParameter("Labels must be an object of strings")
    return labels


def data_doc(snap: Snapshot, record: DataRecord) -> Document:
    spec: Document = {"Name": data_name(record), "Labels": record.spec.get("Labels") or {}}
    if record.kind == "config":
        spec["Data"] = record.spec.get("Data") or ""
    if record.spec.get("Templating"):
        spec["Templating"] = record.spec["Templating"]
    return {
        "ID": record.id,
        "Version": {"Index": snap.revision(f"{record.kind}.{record.id}")},
        "CreatedAt": record.created_at,
        "UpdatedAt": record.updated_at,
        "Spec": spec,
    }


def check_references(snap: Snapshot, template: Document) -> None:
    """A service's secrets and configs exist (swarmkit's words otherwise)."""
    for kind in ("secret", "config"):
        missing = [ref.name for ref in taskspec.file_refs(template) if ref.kind == kind and (
            (record := snap.data.get(ref.object_id)) is None or record.kind != kind)]  # fmt: skip
        if missing:
            raise InvalidParameter(f"rpc error: code = InvalidArgument desc = {kind} not found: {', '.join(missing)}")


class DataApi:
    def __init__(self, store: SwarmStore, managed: Callable[[], Awaitable[Snapshot]]) -> None:
        self.store = store
        self._managed = managed  # the state, on a manager; dockerd's words elsewhere

    @staticmethod
    def _of(snap: Snapshot, kind: str) -> dict[str, DataRecord]:
        return {k: r for k, r in snap.data.items() if r.kind == kind}

    async def create(self, cmd: sw.DataCreate) -> sw.DataCreated:
        snap = await self._managed()
        spec = _checked(cmd.kind, dict(cmd.spec))
        if any(data_name(r) == spec["Name"] for r in self._of(snap, cmd.kind).values()):
            raise Conflict(f"rpc error: code = AlreadyExists desc = {cmd.kind} {spec['Name']} already exists")
        stamp = rfc3339nano()
        record = DataRecord(kind=cmd.kind, id=ids.new_id(), created_at=stamp, updated_at=stamp, spec=spec)
        await self.store.put(snap, record)
        return sw.DataCreated(id=record.id)

    async def list(self, cmd: sw.DataList) -> sw.DockerObjects:
        snap = await self._managed()
        f = cmd.filters
        check_filters(f, {"id", "label", "name", "names"})
        out = []
        for record in sorted(self._of(snap, cmd.kind).values(), key=lambda r: r.created_at):
            name = data_name(record)
            if f.get("id") and not any(record.id.startswith(v) for v in f["id"]):
                continue
            if f.get("name") and not any(name.startswith(v) for v in f["name"]):
                continue
            if f.get("names") and name not in f["names"]:
                continue
            if f.get("label") and not labels_match(record.spec.get("Labels") or {}, f["label"]):
                continue
            out.append(data_doc(snap, record))
        return sw.DockerObjects(items=out)

    async def inspect(self, cmd: sw.DataInspect) -> sw.DockerObject:
        snap = await self._managed()
        return sw.DockerObject(item=data_doc(snap, resolve(self._of(snap, cmd.kind), cmd.ref, cmd.kind, data_name)))

    async def update(self, cmd: sw.DataUpdate) -> Done:
        """swarmkit: only the labels change; the name and the data stay."""
        snap = await self._managed()
        record = resolve(self._of(snap, cmd.kind), cmd.ref, cmd.kind, data_name)
        if cmd.version != snap.revision(f"{cmd.kind}.{record.id}"):
            raise Conflict("rpc error: code = Unknown desc = update out of sequence")
        spec = specdoc.go_names(dict(cmd.spec), {"Name": None, "Labels": None, "Data": None})
        if spec.get("Name") not in (None, "", data_name(record)):
            raise InvalidParameter(f"rpc error: code = InvalidArgument desc = changing {cmd.kind} name is not allowed")
        if spec.get("Data") not in (None, "", record.spec.get("Data")):
            raise InvalidParameter("rpc error: code = InvalidArgument desc = only updates to Labels are allowed")
        record.spec = {**record.spec, "Labels": _labels(spec)}
        record.updated_at = rfc3339nano()
        await self.store.put(snap, record)
        return Done()

    async def remove(self, cmd: sw.DataRemove) -> Done:
        snap = await self._managed()
        record = resolve(self._of(snap, cmd.kind), cmd.ref, cmd.kind, data_name)
        users = sorted(
            service_name(svc) for svc in snap.services.values()
            if any(ref.object_id == record.id for ref in taskspec.file_refs(specdoc.template_of(svc.spec)))
        )  # fmt: skip
        if users:
            plural = "s" if len(users) > 1 else ""
            raise InvalidParameter(
                f"rpc error: code = InvalidArgument desc = {cmd.kind} '{data_name(record)}' is in use by the "
                f"following service{plural}: {', '.join(users)}"
            )
        await self.store.delete(snap, f"{cmd.kind}.{record.id}")
        return Done()
