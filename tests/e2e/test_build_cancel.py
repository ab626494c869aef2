"""POST /build/cancel?id=: a build started with `buildid` stops (its step's container removed, the
stream ends with dockerd's "context canceled"); dockerd 20.10's answers otherwise (500 without an
id, 200 for an id no build runs under)."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time

import pytest
from berth_cli.apiprobe import connection
from harness import Berth, unique_name, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def _context(dockerfile: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_cancel_needs_an_id_and_an_unknown_one_is_no_error(berth: Berth) -> None:
    missing = berth.http("POST", "/v1.41/build/cancel")
    assert (missing.status, missing.json()) == (500, {"message": "build ID not provided"})
    unknown = berth.http("POST", "/v1.41/build/cancel?id=nothing-runs-under-this")
    assert (unknown.status, unknown.body) == (200, b"")


def test_cancel_stops_the_running_build(berth: Berth, busybox_image: str) -> None:
    build_id = unique_name("build")
    tag = f"{build_id}:never"
    lines: list[dict[str, object]] = []

    def run_build() -> None:
        conn = connection(berth.docker_host, 120)
        try:
            conn.request(
                "POST", f"/v1.41/build?buildid={build_id}&t={tag}&rm=1",
                body=_context("FROM busybox\nRUN echo started && sleep 120\n"),
                headers={"Content-Type": "application/x-tar"},
            )  # fmt: skip
            response = conn.getresponse()
            for raw in response.read().splitlines():
                if raw.strip():
                    lines.append(json.loads(raw))
        finally:
            conn.close()

    builder = threading.Thread(target=run_build)
    builder.start()
    # The RUN step's container is running once its output comes back on the stream; the
    # stream is only read at the end, so wait for the container instead.
    wait_until(
        lambda: berth.docker_ok("ps", "-q", "--filter", f"ancestor={busybox_image}").strip(),
        60, "the RUN step's container",
    )  # fmt: skip
    started = time.monotonic()
    assert berth.http("POST", f"/v1.41/build/cancel?id={build_id}").status == 200
    builder.join(timeout=60)
    assert not builder.is_alive(), "the build stream did not end after the cancel"
    assert time.monotonic() - started < 30
    assert lines[-1] == {"errorDetail": {"message": "context canceled"}, "error": "context canceled"}
    assert berth.docker("image", "inspect", tag).returncode != 0
    leftovers = berth.docker_ok("ps", "-aq", "--filter", f"ancestor={busybox_image}").strip()
    assert leftovers == "", "the cancelled step's container was kept"
