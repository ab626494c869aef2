"""The node's name and labels, stdlib only: the supervisor needs them without loading NATS and
OpenTelemetry."""

from __future__ import annotations

import os
import socket


def default_node() -> str:
    return os.environ.get("BERTH_NODE") or socket.gethostname().split(".")[0].replace(".", "-")


ENGINE_LABELS_ENV = "BERTH_ENGINE_LABELS"  # `berth up --label KEY=VALUE`s, one per line
# `berth up --node-generic-resource KIND=VALUE`s (dockerd's), one per line
NODE_RESOURCES_ENV = "BERTH_NODE_GENERIC_RESOURCES"


def engine_labels() -> list[str]:
    """This engine's labels as dockerd lists them in `docker info` (KEY=VALUE, in order)."""
    return [line for line in os.environ.get(ENGINE_LABELS_ENV, "").splitlines() if "=" in line]


def engine_label_map() -> dict[str, str]:
    """The same as a map (a swarm node's Description.Engine.Labels): the last of a key wins."""
    return dict(label.split("=", 1) for label in engine_labels())


def node_generic_resources() -> list[str]:
    """The resources this node offers to swarm tasks (dockerd's --node-generic-resource): KIND=N
    (a count) or KIND=NAME (one named unit, repeatable), as given."""
    return [line for line in os.environ.get(NODE_RESOURCES_ENV, "").splitlines() if "=" in line]


def parse_generic_resources(terms: list[str]) -> dict[str, int | list[str]]:
    """swarmkit's genericresource.Parse: per kind, a count (one integer) or named units (none
    an integer); ValueError in its words."""
    values: dict[str, list[str]] = {}
    for term in terms:
        parts = term.split("=")
        if len(parts) != 2:
            raise ValueError(f"could not parse GenericResource: incorrect term {term}, missing '=' or malformed expression")
        values.setdefault(parts[0].strip(), []).append(parts[1].strip())
    out: dict[str, int | list[str]] = {}
    for kind, given in values.items():
        counts = [int(v) for v in given if v.lstrip("+-").isdigit()]
        if len(given) == 1 and counts:
            if counts[0] < 0:
                raise ValueError(f"could not parse GenericResource: cannot ask for negative resource {kind}")
            out[kind] = counts[0]
        elif not counts:
            out[kind] = given
        else:
            raise ValueError(f"could not parse GenericResource: mixed discrete and named resources in expression '{kind}={given}'")
    return out
