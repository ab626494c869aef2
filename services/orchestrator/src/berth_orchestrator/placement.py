"""What placement asks of a node: does it match a constraint, which spread branch is it on, does
it fit an image's platforms (reconcile's scheduler uses these)."""

from __future__ import annotations

import platform

from berth_common.platforms import parse_platform, platform_matches

from berth_orchestrator import specs
from berth_orchestrator.records import NodeRecord


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
