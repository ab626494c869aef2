"""`docker build --cache-from` with the real docker CLI: an image that came from elsewhere (saved,
removed and loaded again: no parent chain here) serves as the cache of its own steps, as with
dockerd 20.10's classic builder (moby's image/cache)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from harness import Berth, unique_name

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DOCKERFILE = """\
FROM busybox
RUN echo one > /one
ENV STEP=two
RUN echo "$STEP" > /two
CMD ["cat", "/two"]
"""


def _built_id(output: str) -> str:
    found = re.findall(r"Successfully built ([0-9a-f]{12})", output)
    assert found, output
    return found[-1]


def test_a_loaded_image_is_the_cache_of_its_own_steps(
    berth: Berth, busybox_image: str, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    src = f"{unique_name('cachefrom')}:src"
    archive = tmp_path / "src.tar"
    try:
        first = berth.docker_ok("build", "-t", src, str(ctx), timeout=240)
        src_id = _built_id(first)
        berth.docker_ok("save", "-o", str(archive), src)
        berth.docker_ok("rmi", src)  # its untagged parents (the step images) go with it
        berth.docker_ok("load", "-i", str(archive))
        assert berth.docker_ok("inspect", "-f", "{{.Id}}", src).strip()[7:19] == src_id

        # Every step matched from the loaded image's history; the result is that very image.
        cached = berth.docker_ok("build", "--cache-from", src, "-t", src, str(ctx), timeout=240)
        assert cached.count("Using cache") == 4, cached
        assert "Running in" not in cached
        assert _built_id(cached) == src_id
        # The run config of the result is the source's: the cache did not change the image.
        assert berth.docker_ok("run", "--rm", src).strip() == "two"

        # A source that does not exist is skipped (dockerd logs a warning), and the build runs.
        other = berth.docker_ok(
            "build", "--cache-from", "no-such-image:1", "-t", f"{src}-other", str(ctx), timeout=240
        )
        assert "Running in" in other and "Using cache" not in other

        # A changed step: cache up to it, then it and every later step run (the classic builder
        # commits metadata steps through a container too).
        (ctx / "Dockerfile").write_text(DOCKERFILE.replace("ENV STEP=two", "ENV STEP=three"))
        changed = berth.docker_ok("build", "--cache-from", src, str(ctx), timeout=240)
        assert changed.count("Using cache") == 1, changed
        assert changed.count("Running in") == 3, changed
    finally:
        berth.docker("rmi", "-f", src, f"{src}-other")
