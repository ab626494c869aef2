"""Docker's copy-up: an empty volume mounted over a directory of the image starts with a copy
of that directory (contents, owners, modes), unless the mount says nocopy."""

from __future__ import annotations

import logging
import os
import shutil

from berth_contracts.lifecycle import Mount

from berth_agent.securejoin import secure_join

log = logging.getLogger(__name__)


def _copy_tree(src: str, dst: str) -> None:
    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True, copy_function=shutil.copy2)
    # copytree keeps modes but not owners: the image's files belong to the image's users.
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        for name in [*dirnames, *filenames]:
            s = os.path.join(dirpath, name)
            st = os.lstat(s)
            os.lchown(os.path.normpath(os.path.join(dst, rel, name)), st.st_uid, st.st_gid)
    st = os.stat(src)
    os.chown(dst, st.st_uid, st.st_gid)
    os.chmod(dst, st.st_mode & 0o7777)


def copy_up(rootfs: str, targets: list[str], mounts: list[Mount]) -> None:
    by_target = {m.target: m for m in mounts}
    for target in targets:
        mount = by_target.get(target)
        if mount is None or not os.path.isdir(mount.source) or os.listdir(mount.source):
            continue
        src = secure_join(rootfs, target)  # an image symlink cannot point it at host files
        if not os.path.isdir(src) or os.path.islink(src):
            continue
        try:
            _copy_tree(src, mount.source)
        except OSError as exc:
            log.warning("copying %s of the image into its volume: %s", target, exc)
