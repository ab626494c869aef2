"""GET /containers/json: which records to show, in Docker's order, with Docker's filters."""

from __future__ import annotations

from collections.abc import Callable

from berth_common.gotime import parse_ns
from berth_contracts.errors import InvalidParameter

from berth_engine.containers.records import Record

HEALTH_STATES = ("starting", "healthy", "unhealthy", "none")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
FILTERS = ("id", "name", "label", "status", "ancestor", "exited", "before", "since", "network",
           "volume", "health", "publish", "expose", "isolation", "is-task")  # fmt: skip


def label_matches(labels: dict[str, str], wanted: list[str]) -> bool:
    """Every `k` must be present and every `k=v` equal (Docker's filters.MatchKVList)."""
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _ancestor_matches(rec: Record, wanted: list[str], image_ids: Callable[[str], set[str]]) -> bool:
    for ref in wanted:
        if rec.image_name == ref or rec.image_id in image_ids(ref):
            return True
    return False


def select(
    records: list[Record],
    *,
    all_: bool,
    limit: int,
    filters: dict[str, list[str]],
    image_ids: Callable[[str], set[str]] = lambda _ref: set(),
    lookup: Callable[[str], Record] | None = None,
) -> list[Record]:
    for key in filters:
        if key not in FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
    for status in filters.get("status", []):
        if status not in STATUSES:
            raise InvalidParameter(f"invalid filter 'status={status}'")
    for health in filters.get("health", []):
        if health not in HEALTH_STATES:
            raise InvalidParameter(f"Unrecognised filter value for health: {health}")
    exited_codes: set[int] = set()
    for code in filters.get("exited", []):
        try:
            exited_codes.add(int(code))
        except ValueError:
            raise InvalidParameter(f"invalid filter 'exited={code}'") from None
    # Newest first, like moby's view sorted by creation time.
    ordered = sorted(records, key=lambda r: parse_ns(r.created), reverse=True)
    # before/since name containers; only those created strictly before/after them are shown.
    before_ns = since_ns = None
    if lookup is not None and filters.get("before"):
        before_ns = parse_ns(lookup(filters["before"][0]).created)
    if lookup is not None and filters.get("since"):
        since_ns = parse_ns(lookup(filters["since"][0]).created)
    # A status filter or `exited` implies all (moby: "all" is set when status is filtered).
    show_all = all_ or bool(filters.get("status")) or bool(exited_codes) or limit > 0
    result: list[Record] = []
    for rec in ordered:
        status = rec.state.status
        if not show_all and status not in ("running", "paused", "restarting"):
            continue
        if ids := filters.get("id"):
            if not any(rec.id.startswith(i) for i in ids):
                continue
        if names := filters.get("name"):
            if not any(n.lstrip("/") in rec.name or n in "/" + rec.name for n in names):
                continue
        if labels := filters.get("label"):
            if not label_matches(rec.config.labels or {}, labels):
                continue
        if statuses := filters.get("status"):
            if status not in statuses:
                continue
        if exited_codes and (status != "exited" or rec.state.exit_code not in exited_codes):
            continue
        if healths := filters.get("health"):
            if (rec.state.health.status if rec.state.health else "none") not in healths:
                continue
        if ancestors := filters.get("ancestor"):
            if not _ancestor_matches(rec, ancestors, image_ids):
                continue
        created = parse_ns(rec.created)
        if before_ns is not None and created >= before_ns:
            continue
        if since_ns is not None and created <= since_ns:
            continue
        result.append(rec)
        if limit > 0 and len(result) >= limit:
            break
    return result
