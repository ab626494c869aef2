"""ADD <url>: the file fetched by the builder, as dockerd's builder fetches it (remote.go's
download): saved 0600 under the URL path's base name, its mtime from Last-Modified (else the
epoch), never extracted; its sum is tarsum v1 of the saved file as moby's lazySource computes
it (owner names looked up: root), written without the `file:` prefix in the history text."""

from __future__ import annotations

import email.utils
import hashlib
import os
import posixpath
import tarfile
from urllib.parse import urlsplit

import aiohttp
from anyio import to_thread

from berth_builder.context import ContextError, tarsum_header, write_all
from berth_builder.copysources import CopySource

_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=600)
MAX_ERROR_BODY = 64 << 10


def is_url(src: str) -> bool:
    return src.startswith(("http://", "https://"))


def _go_dial_error(url: str, exc: aiohttp.ClientConnectorError) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if isinstance(exc.os_error, ConnectionRefusedError):
        return f'Get "{url}": dial tcp {parts.hostname}:{port}: connect: connection refused'
    return f'Get "{url}": {exc}'


def _mtime(last_modified: str | None) -> int:
    if last_modified:
        try:
            return int(email.utils.parsedate_to_datetime(last_modified).timestamp())
        except (TypeError, ValueError):
            pass
    return 0


def _sum(path: str, name: str) -> str:
    st = os.stat(path)
    info = tarfile.TarInfo(name)
    info.size, info.mode = st.st_size, 0o100000 | (st.st_mode & 0o7777)  # Go's file type bits
    digest = hashlib.sha256(tarsum_header(info, ("root", "root")))
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def download(url: str, staging: str, index: int) -> CopySource:
    """Fetch `url` into staging/<index>/<name>; a CopySource relative to `staging`."""
    name = posixpath.basename(urlsplit(url).path.rstrip("/"))
    if name in ("", ".", ".."):
        raise ContextError(f"cannot determine filename for source {url}")
    directory = os.path.join(staging, str(index))
    os.mkdir(directory, 0o700)
    path = os.path.join(directory, name)
    try:
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as session, session.get(url) as resp:
            if resp.status >= 400:
                body = (await resp.content.read(MAX_ERROR_BODY)).decode(errors="replace")
                raise ContextError(
                    f"failed to GET {url} with status {resp.status} {resp.reason}: {body}"
                )
            fd = await to_thread.run_sync(
                lambda: os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            )
            try:
                async for chunk in resp.content.iter_chunked(1 << 20):
                    await to_thread.run_sync(write_all, fd, chunk)
            finally:
                os.close(fd)
            mtime = _mtime(resp.headers.get("Last-Modified"))
    except aiohttp.ClientConnectorError as exc:
        raise ContextError(_go_dial_error(url, exc)) from None
    except aiohttp.ClientError as exc:
        raise ContextError(f'Get "{url}": {exc}') from None
    os.chmod(path, 0o600)
    os.utime(path, (mtime, mtime))
    return CopySource(f"{index}/{name}", await to_thread.run_sync(_sum, path, name))
