"""Process trees and their memory, from /proc: what bench.py's memory items read."""

from __future__ import annotations

import os
import struct
from collections import defaultdict


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = defaultdict(list)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids[ppid].append(int(d))
    return kids


def tree(pid: int) -> list[int]:
    kids, out, todo = children_map(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def pss(pid: int, field: str = "Pss:") -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(pid: int) -> int:
    return sum(pss(p, "Rss:") for p in tree(pid))


def tree_exclusive(pid: int) -> int:
    """Bytes of the resident pages that no process outside this tree maps: what stopping the
    engine would free, whatever else runs on the host. PSS instead charges the tree a share of
    pages other processes map too (libpython, a colleague's dockerd binary), so it moves with
    the neighbours. Counts each page once: its mappings within the tree (/proc/PID/pagemap)
    against its mappings in total (/proc/kpagecount). Needs root."""
    page = os.sysconf("SC_PAGE_SIZE")
    inside: dict[int, int] = {}
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/maps") as maps, open(f"/proc/{p}/pagemap", "rb") as pagemap:
                for line in maps:
                    start, end = (int(x, 16) for x in line.split()[0].split("-"))
                    if line.rstrip().endswith("[vsyscall]"):
                        continue
                    pagemap.seek(start // page * 8)
                    data = pagemap.read((end - start) // page * 8)
                    for (entry,) in struct.iter_unpack("<Q", data):
                        if entry >> 63:  # present in RAM; bits 0-54 are the frame number
                            pfn = entry & ((1 << 55) - 1)
                            inside[pfn] = inside.get(pfn, 0) + 1
        except OSError:
            continue
    exclusive = 0
    with open("/proc/kpagecount", "rb") as counts:
        for pfn, n in inside.items():
            counts.seek(pfn * 8)
            (total,) = struct.unpack("<Q", counts.read(8))
            if total <= n:
                exclusive += 1
    return exclusive * page


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def label(pid: int) -> str:
    """A berth service forked by the forkserver by its title, `python -m MODULE` as MODULE,
    other programs by their base name."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
    except OSError:
        comm = ""
    if comm.startswith("berth-"):
        return comm
    argv = cmdline(pid).split()
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1]
    return os.path.basename(argv[0]) if argv else str(pid)


def tree_pss(pid: int) -> tuple[int, list[tuple[str, int]]]:
    parts = [(label(p), pss(p)) for p in tree(pid)]
    return sum(v for _, v in parts), parts
