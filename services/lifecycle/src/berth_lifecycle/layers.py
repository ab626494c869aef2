"""Parent side of layer application: run the confined child (layer_child) on one blob.

The child is a fresh interpreter (not a fork of this multi-threaded process), so nothing of the
service - threads, locks, the NATS socket - is shared with code that handles hostile input.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import anyio
from berth_contracts.errors import InvalidParameter

from berth_lifecycle.tarlimits import TarLimits

APPLY_TIMEOUT = 3600.0  # a multi-GB layer on a slow disk; a hung child is killed after this


def chain_ids(diff_ids: list[str]) -> list[str]:
    """chainID(L0) = diffID0; chainID(Ln) = sha256(chainID(Ln-1) + " " + diffIDn)."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


@dataclass(frozen=True)
class Applied:
    diff_id: str  # sha256 of the uncompressed tar
    size: int  # bytes of regular files written


class LayerApplyError(InvalidParameter):
    pass


async def apply_layer(blob: Path, target: Path, limits: TarLimits | None = None) -> Applied:
    """Apply the (maybe compressed) tar at `blob` into the empty directory `target`, within
    `limits` (by default those of the environment, BERTH_TAR_MAX_*)."""
    limits = limits or TarLimits.from_env()
    fd = os.open(blob, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with anyio.fail_after(APPLY_TIMEOUT):
            result = await anyio.run_process(
                # -I: no current directory on sys.path and no PYTHON* variables, so nothing
                # but the installed interpreter and packages runs next to the hostile input.
                [sys.executable, "-I", "-m", "berth_lifecycle.layer_child", str(target), str(fd), *limits.to_args()],
                pass_fds=[fd],
                cwd="/",
                check=False,
            )
    finally:
        os.close(fd)
    if result.returncode != 0:
        msg = result.stderr.decode(errors="replace").strip().splitlines()
        raise LayerApplyError(f"failed to apply layer: {msg[-1] if msg else f'exit status {result.returncode}'}")
    data = json.loads(result.stdout)
    return Applied(diff_id=str(data["diff_id"]), size=int(data["size"]))
