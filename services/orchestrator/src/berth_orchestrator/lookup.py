"""Finding swarm objects as swarmkit's API does (ID, name, ID prefix), and the list filters."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from berth_contracts.errors import InvalidParameter, NotFound

from berth_orchestrator.records import DataRecord, NodeRecord, ServiceRecord, TaskRecord

T = TypeVar("T", NodeRecord, ServiceRecord, TaskRecord, DataRecord)


def resolve(objects: dict[str, T], ref: str, kind: str, name_of: Callable[[T], str]) -> T:
    """By full ID, then by name, then by a unique ID prefix (swarmkit's lookup order)."""
    if ref in objects:
        return objects[ref]
    named = [o for o in objects.values() if name_of(o) == ref]
    if len(named) == 1:
        return named[0]
    prefixed = [o for o in objects.values() if o.id.startswith(ref)] if ref else []
    if len(prefixed) == 1:
        return prefixed[0]
    if len(prefixed) > 1 or len(named) > 1:
        raise NotFound(f"{kind} {ref} is ambiguous ({len(prefixed) or len(named)} matches found)")
    raise NotFound(f"{kind} {ref} not found")


def service_name(svc: ServiceRecord) -> str:
    return str(svc.spec.get("Name") or "")


def node_name(node: NodeRecord) -> str:
    return node.name or node.hostname


def labels_match(labels: dict[str, str], wanted: Iterable[str]) -> bool:
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def check_filters(filters: dict[str, list[str]], allowed: set[str]) -> None:
    for key in filters:
        if key not in allowed:
            raise InvalidParameter(f"invalid filter '{key}'")
