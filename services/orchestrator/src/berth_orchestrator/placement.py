"""What placement asks of a node: is it ready, does it match a constraint, which spread branch
is it on, does it fit an image's platforms; and swarmkit's words for why a task found no node
(reconcile's scheduler uses these)."""

from __future__ import annotations

import platform
from collections import Counter

from berth_common.platforms import parse_platform, platform_matches
from berth_kit.node import parse_generic_resources

from berth_orchestrator import specdoc, specs, taskspec
from berth_orchestrator.records import Document, NodeRecord, node_ready

# swarmkit's scheduler filters, in its pipeline's order (manager/scheduler/filter.go).
FILTERS = ("ready", "resources", "constraints", "platform", "host port", "max replicas")


def node_failure(node: NodeRecord, template: Document, now: float) -> str | None:
    """The first of the node's own filters that the task template fails on it, or None."""
    if node.availability != "active" or not node_ready(node, now):
        return "ready"
    cpus, memory = taskspec.reservations_of(template)
    if (cpus and node.nano_cpus and cpus > node.nano_cpus) or (memory and node.memory_bytes and memory > node.memory_bytes):
        return "resources"
    if not all(matches(node, c) for c in specs.constraints(template)):
        return "constraints"
    platforms = (specdoc.obj(template, "Placement")).get("Platforms") or []
    if platforms and not any(platform_fits(p) for p in platforms):
        return "platform"
    return None


def explain(failures: Counter[str], on_its_node: bool = False) -> str:
    """swarmkit's Pipeline.Explain in its task's error: each filter's failures, most first,
    within "no suitable node (...)" unless the task was made for its node (a global
    service's: swarmkit's taskFitNode gives Explain alone)."""

    def words(name: str, count: int) -> str:
        nodes = "1 node" if count == 1 else f"{count} nodes"
        return {
            "ready": f"{nodes} not available for new tasks", "resources": f"insufficient resources on {nodes}",
            "constraints": f"scheduling constraints not satisfied on {nodes}",
            "platform": f"unsupported platform on {nodes}", "host port": f"host-mode port already in use on {nodes}",
            "max replicas": "max replicas per node limit exceed",
        }[name]  # fmt: skip

    failed = sorted((f for f in FILTERS if failures[f]), key=lambda f: -failures[f])  # ties: pipeline order
    explanation = "; ".join(words(f, failures[f]) for f in failed)
    if on_its_node:
        return explanation
    return f"no suitable node ({explanation})" if explanation else "no suitable node"


def matches(node: NodeRecord, constraint: specs.Constraint) -> bool:
    key = constraint.key
    if key == "node.id":
        actual: str | None = node.id
    elif key == "node.hostname":
        actual = node.hostname
    elif key == "node.role":
        actual = node.role
    elif key == "node.platform.os":
        actual = "linux"
    elif key == "node.platform.arch":
        actual = platform.machine()
    elif key.startswith("node.labels."):
        actual = node.labels.get(key[len("node.labels.") :])
    elif key.startswith("engine.labels."):  # the node's `berth up --label`s
        actual = node.engine_labels.get(key[len("engine.labels.") :])
    else:
        actual = None
    if constraint.equal:
        return actual is not None and actual.lower() == constraint.value.lower()
    return actual is None or actual.lower() != constraint.value.lower()


def spread_branch(node: NodeRecord, labels: list[str]) -> tuple[str, ...]:
    """The node's values of these spread labels ("" where it has none)."""
    return tuple(
        node.labels.get(key[len("node.labels.") :], "") if key.startswith("node.labels.")
        else node.engine_labels.get(key[len("engine.labels.") :], "") if key.startswith("engine.labels.")
        else ""
        for key in labels
    )  # fmt: skip


def platform_fits(wanted: dict[str, str]) -> bool:
    """A Placement.Platforms entry (the image's platforms, which the CLI records): berth's nodes
    are linux on this machine's architecture."""
    arch = platform.machine()
    text = "/".join(p for p in (wanted.get("OS") or "linux", wanted.get("Architecture") or "") if p)
    _, here, _ = parse_platform(f"linux/{arch}")
    return platform_matches(text, "linux", here, "")


# --- generic resources (dockerd's --node-generic-resource, swarmkit's genericresource) ----------
def claim(offered: list[str], taken: list[str], wanted: list[tuple[str, int]]) -> list[str] | None:
    """What a task reserving `wanted` (kind, count) is given on a node that offers `offered`
    and whose live tasks hold `taken` (KIND=NAME per named unit, KIND=COUNT); None when the
    node has not enough left (swarmkit's HasEnough, then Claim)."""
    try:
        offer = parse_generic_resources(offered)
    except ValueError:  # checked by `berth up`: an older or foreign engine's, offering nothing
        offer = {}
    used_count: Counter[str] = Counter()
    used_names: set[str] = set()
    for term in taken:
        kind, _, value = term.partition("=")
        if value.isdigit():
            used_count[kind] += int(value)
        else:
            used_names.add(term)
    given: list[str] = []
    for kind, count in wanted:
        have = offer.get(kind)
        if isinstance(have, int):
            if have - used_count[kind] < count:
                return None
            used_count[kind] += count
            given.append(f"{kind}={count}")
        else:
            free = [f"{kind}={name}" for name in have or [] if f"{kind}={name}" not in used_names]
            if len(free) < count:
                return None
            used_names.update(free[:count])
            given += free[:count]
    return given


def generic_docs(terms: list[str]) -> list[dict[str, dict[str, str | int]]]:
    """Docker's JSON for generic resources (a node's, or those a task holds)."""
    docs: list[dict[str, dict[str, str | int]]] = []
    for term in terms:
        kind, _, value = term.partition("=")
        if value.isdigit():
            docs.append({"DiscreteResourceSpec": {"Kind": kind, "Value": int(value)}})
        else:
            docs.append({"NamedResourceSpec": {"Kind": kind, "Value": value}})
    return docs


def resource_env(assigned: list[str]) -> list[str]:
    """swarmkit's EnvFormat: DOCKER_RESOURCE_<KIND>=the named units given, or the count."""
    by_kind: dict[str, list[str]] = {}
    for term in assigned:
        kind, _, value = term.partition("=")
        by_kind.setdefault(kind.upper(), []).append(value)
    return [f"DOCKER_RESOURCE_{kind}={','.join(values)}" for kind, values in sorted(by_kind.items())]
