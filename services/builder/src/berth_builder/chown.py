"""COPY/ADD --chown=user[:group] with names: moby's parseChownFlag, looked up in the step
container's own /etc/passwd and /etc/group (read through the archive API, never the host's)."""

from __future__ import annotations

from berth_builder.context import ContextError


def split_chown(chown: str) -> tuple[str, str]:
    """user[:group]; a lone user is also the group's name or id, as moby's parseChownFlag."""
    parts = chown.split(":")
    if len(parts) > 2:
        raise ContextError("invalid chown string format: " + chown)
    return parts[0], parts[-1]


def needs_lookup(chown: str) -> bool:
    return bool(chown) and not all(p.isdigit() for p in split_chown(chown))


def _lookup(name: str, table: str, what: str) -> int:
    """moby's lookupUser / lookupGroup: a number as it is, else the entry with that name."""
    if name.isdigit():
        return int(name)
    for line in table.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
            return int(fields[2])
    raise ContextError(
        f"can't find {'uid' if what == 'user' else 'gid'} for {what} {name}: no such {what}: {name}"
    )


def resolve_chown(chown: str, passwd: str, group: str) -> tuple[int, int]:
    user, grp = split_chown(chown)
    return _lookup(user, passwd, "user"), _lookup(grp, group, "group")
