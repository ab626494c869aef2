"""Docker's event filters (type, container, image, event, label, ...) applied to one Event."""

from __future__ import annotations

from berth_contracts.docker import Event


def _label_matches(wanted: list[str], attributes: dict[str, str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in attributes:
            return False
        if sep and attributes[key] != value:
            return False
    return True


def _names(event: Event) -> set[str]:
    attrs = event.Actor.Attributes
    names = {event.Actor.ID}
    if "name" in attrs:
        names.add(attrs["name"])
    return names


def matches(event: Event, filters: dict[str, list[str]]) -> bool:
    """True if the event passes every filter; values of one filter are alternatives (OR)."""
    attrs = event.Actor.Attributes
    for key, wanted in filters.items():
        if not wanted:
            continue
        if key == "type":
            if event.Type not in wanted:
                return False
        elif key == "event":
            # "exec_start: sh -c ..." and "health_status: healthy" match their action word too.
            action = event.Action
            if action not in wanted and action.split(":", 1)[0] not in wanted:
                return False
        elif key == "label":
            if not _label_matches(wanted, attrs):
                return False
        elif key in (
            "container",
            "image",
            "network",
            "volume",
            "plugin",
            "daemon",
            "config",
            "secret",
            "service",
            "node",
        ):
            if not _object_matches(event, key, wanted):
                return False
        elif key == "scope":
            if event.scope not in wanted:
                return False
    return True


def _object_matches(event: Event, key: str, wanted: list[str]) -> bool:
    attrs = event.Actor.Attributes
    if key == "image":
        candidates = {attrs.get("image", ""), event.from_ or ""}
        if event.Type == "image":
            candidates |= _names(event)
        return any(_id_or_name_matches(w, candidates) for w in wanted)
    if event.Type != key:
        return False
    return any(_id_or_name_matches(w, _names(event)) for w in wanted)


def _id_or_name_matches(wanted: str, candidates: set[str]) -> bool:
    for candidate in candidates:
        if not candidate:
            continue
        if candidate == wanted or candidate.startswith(wanted) and len(wanted) >= 12:
            return True
        # image references may be asked for without their default tag
        if candidate == f"{wanted}:latest" or candidate.removesuffix(":latest") == wanted:
            return True
    return False
