"""`docker build` with the real docker CLI 28 (the classic builder: no buildx here, /session is
404), compared with what dockerd 20.10's classic builder answers for the same contexts."""

from __future__ import annotations

import functools
import http.server
import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from berth_kit.otlpreceiver import OtlpReceiver, SpanRecord
from harness import Berth, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DOCKERFILE = """\
FROM busybox
ARG GREETING=hi
ENV A=b
LABEL x.y=z
RUN echo "$GREETING" > /greeting && echo err >&2
COPY f.txt /app/
COPY d /data
WORKDIR /app
ENTRYPOINT ["cat"]
CMD ["f.txt"]
"""
# dockerd 20.10's `docker history --no-trunc` for this context, newest first (checked on a
# scratch dockerd with the same files, --build-arg GREETING=hey --label l=1).
DOCKERD_HISTORY = [
    "/bin/sh -c #(nop)  LABEL l=1",
    '/bin/sh -c #(nop)  CMD ["f.txt"]',
    '/bin/sh -c #(nop)  ENTRYPOINT ["cat"]',
    "/bin/sh -c #(nop) WORKDIR /app",
    "/bin/sh -c #(nop) COPY dir:e25da9844fa99268fc8370ed0a1b3f18dadc0cac46e8a8db59a84e06970c2490 in /data ",
    "/bin/sh -c #(nop) COPY file:99dab1a7a2dd5d9f985450ffe99777fca12ef0bdae5ec5e071c7846d31930e6d in /app/ ",
    '|1 GREETING=hey /bin/sh -c echo "$GREETING" > /greeting && echo err >&2',
    "/bin/sh -c #(nop)  LABEL x.y=z",
    "/bin/sh -c #(nop)  ENV A=b",
    "/bin/sh -c #(nop)  ARG GREETING=hi",
]
MTIME = 1700000000


def make_context(root: Path, dockerfile: str = DOCKERFILE) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    (root / "f.txt").write_text("hello\n")
    (root / "d" / "sub").mkdir(parents=True, exist_ok=True)
    (root / "d" / "sub" / "y").write_text("x\n")
    for path in (root / "f.txt", root / "d" / "sub" / "y"):
        path.chmod(0o644)
    for path in (root / "f.txt", root / "d" / "sub" / "y", root / "d" / "sub", root / "d"):
        os.utime(path, (MTIME, MTIME))
    return root


def _ids(berth: Berth, *args: str) -> list[str]:
    return berth.docker_ok(*args).split()


def test_build_runs_every_step_like_dockerd(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx")
    before = set(_ids(berth, "ps", "-aq"))
    images_before = set(_ids(berth, "images", "-aq"))
    res = berth.docker("build", "--build-arg", "GREETING=hey", "--label", "l=1",
                       "-t", "built:1", "-t", "built:2", str(ctx), timeout=240)  # fmt: skip
    try:
        assert res.returncode == 0, res.stderr + res.stdout
        out = res.stdout
        assert "Step 1/11 : FROM busybox\n ---> " in out
        assert "Step 5/11 : RUN echo \"$GREETING\" > /greeting && echo err >&2\n ---> Running in " in out
        assert "\x1b[91merr\n\x1b[0m" in out  # stderr of a RUN, coloured as dockerd does
        assert "Removing intermediate container " in out
        assert "Step 6/11 : COPY f.txt /app/\n ---> " in out
        assert "Successfully tagged built:1\nSuccessfully tagged built:2\n" in out
        built = out.split("Successfully built ")[1].split()[0]
        assert berth.docker_ok("image", "inspect", "-f", "{{.Id}}", "built:2").strip().startswith(
            "sha256:" + built
        )
        # The steps' containers are gone (--rm is the default).
        assert set(_ids(berth, "ps", "-aq")) == before
        assert berth.docker_ok("run", "--rm", "built:1") == "hello\n"
        shown = berth.docker_ok(
            "run", "--rm", "--entrypoint", "sh", "built:1", "-c",
            "cat /greeting; echo $A; pwd; stat -c '%n %a %u:%g %Y' /app/f.txt /data/sub /data/sub/y",
        )  # fmt: skip
        assert shown.splitlines() == [
            "hey", "b", "/app", f"/app/f.txt 644 0:0 {MTIME}", f"/data/sub 755 0:0 {MTIME}",
            f"/data/sub/y 644 0:0 {MTIME}",
        ]  # fmt: skip
        config = json.loads(berth.docker_ok("image", "inspect", "-f", "{{json .Config}}", "built:1"))
        assert config["Entrypoint"] == ["cat"] and config["Cmd"] == ["f.txt"]
        assert config["WorkingDir"] == "/app" and config["Labels"] == {"l": "1", "x.y": "z"}
        assert "A=b" in config["Env"]
        history = berth.docker_ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", "built:1")
        assert history.splitlines()[:-1] == DOCKERD_HISTORY
        # Intermediate images are listed with -a only, as dockerd.
        listed = berth.docker_ok("images", "--format", "{{.Repository}}:{{.Tag}}")
        assert "<none>:<none>" not in listed
        assert berth.docker_ok("images", "-a", "-q").count("\n") >= 10
        # rmi of the last name deletes the image and its untagged steps, as dockerd does.
        berth.docker_ok("rmi", "built:1")
        removed = berth.docker_ok("rmi", "built:2")
        assert removed.count("Deleted: ") >= 10
        assert set(_ids(berth, "images", "-aq")) == images_before
    finally:
        berth.docker("rmi", "built:1", "built:2")


def test_dockerignore_leaves_the_build_files_out_of_copy(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    """The CLI sends the Dockerfile and .dockerignore even when .dockerignore names them (so the
    daemon can read them); the daemon leaves them out of the context, as dockerd does."""
    ctx = make_context(tmp_path / "ctx", "FROM busybox\nCOPY . /c/\n")
    (ctx / ".dockerignore").write_text("Dockerfile\n.dockerignore\n*.key\n")
    (ctx / "secret.key").write_text("k\n")
    try:
        berth.docker_ok("build", "-t", "ignored:1", str(ctx), timeout=240)
        listed = berth.docker_ok("run", "--rm", "ignored:1", "ls", "-a", "/c")
        assert listed.split() == [".", "..", "d", "f.txt"]
    finally:
        berth.docker("rmi", "ignored:1")


def test_cache_hits_misses_and_survives_restarts(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", "FROM busybox\nENV K=v\nRUN date +%s%N > /stamp\nCOPY f.txt /f\nRUN cat /f\n")
    try:
        first = berth.docker_ok("build", "-t", "cached:1", str(ctx), timeout=240)
        assert "Using cache" not in first
        second = berth.docker_ok("build", "-t", "cached:1", str(ctx), timeout=240)
        assert second.count(" ---> Using cache\n") == 4
        assert "Running in" not in second
        stamp = berth.docker_ok("run", "--rm", "cached:1", "cat", "/stamp")
        # A restart of every service: the cache is the images' records, it is still there.
        for name in ("berth-lifecycle", "berth-engine", "berth-builder", "berth-api-gateway"):
            old = berth.service(name)["pid"]
            os.kill(old, signal.SIGKILL)
            berth.wait_restarted(name, old)
        third = berth.docker_ok("build", "-t", "cached:1", str(ctx), timeout=240)
        assert third.count(" ---> Using cache\n") == 4
        # A changed file misses from its COPY on; the RUN before it still hits.
        (ctx / "f.txt").write_text("changed\n")
        fourth = berth.docker_ok("build", "-t", "cached:2", str(ctx), timeout=240)
        assert fourth.count(" ---> Using cache\n") == 2
        assert fourth.split("Step 4/5 : COPY f.txt /f\n")[1].startswith(" ---> ") and "changed\n" in fourth
        assert berth.docker_ok("run", "--rm", "cached:2", "cat", "/stamp") == stamp
        # --no-cache runs everything again.
        fifth = berth.docker_ok("build", "--no-cache", "-t", "cached:3", str(ctx), timeout=240)
        assert "Using cache" not in fifth
        assert berth.docker_ok("run", "--rm", "cached:3", "cat", "/stamp") != stamp
    finally:
        berth.docker("rmi", "cached:1", "cached:2", "cached:3")


def test_a_failing_run_tags_nothing(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", "FROM busybox\nRUN echo before\nRUN exit 7\n")
    before = set(_ids(berth, "ps", "-aq"))
    res = berth.docker("build", "-t", "failed:1", str(ctx), timeout=240)
    assert res.returncode == 7  # dockerd 20.10: the CLI exits with the RUN's code
    assert "The command '/bin/sh -c exit 7' returned a non-zero code: 7" in res.stderr
    assert "Successfully" not in res.stdout
    assert berth.docker("image", "inspect", "failed:1").returncode == 1
    # As dockerd 20.10: --rm keeps the failed step's container, --force-rm removes it too.
    left = set(_ids(berth, "ps", "-aq")) - before
    assert len(left) == 1
    [cid] = left
    assert berth.docker_ok("inspect", "-f", "{{.State.ExitCode}}", cid).strip() == "7"
    berth.docker_ok("rm", cid)
    res = berth.docker("build", "--force-rm", "-t", "failed:1", str(ctx), timeout=240)
    assert res.returncode == 7 and " ---> Using cache" in res.stdout
    assert set(_ids(berth, "ps", "-aq")) == before


def test_multi_stage_target_and_copy_from(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    dockerfile = (
        "FROM busybox AS build\nRUN mkdir -p /out/sub && echo built > /out/sub/result && echo one > /one\n"
        "FROM busybox AS other\nRUN echo other > /other\n"
        "FROM build\nCOPY --from=build /out /copied\nCOPY --from=0 /one /one-again\n"
        "COPY --from=busybox /bin/busybox /bb\nRUN cat /copied/sub/result /one-again /one\n"
    )
    ctx = make_context(tmp_path / "ctx", dockerfile)
    try:
        out = berth.docker_ok("build", "-t", "multi:1", str(ctx), timeout=240)
        assert "Step 9/9 : RUN cat /copied/sub/result /one-again /one\n" in out
        assert "built\none\none\n" in out
        assert berth.docker_ok("run", "--rm", "multi:1", "cat", "/copied/sub/result") == "built\n"
        assert berth.docker_ok("run", "--rm", "multi:1", "cmp", "/bb", "/bin/busybox") == ""
        assert berth.docker("run", "--rm", "multi:1", "test", "-e", "/other").returncode == 1
        target = berth.docker_ok("build", "--target", "other", "-t", "multi:other", str(ctx), timeout=240)
        assert "Step 4/4 : RUN echo other > /other" in target
        assert berth.docker_ok("run", "--rm", "multi:other", "cat", "/other") == "other\n"
        bad = berth.docker("build", "--target", "nosuch", str(ctx), timeout=60)
        assert bad.returncode == 1 and "failed to reach build target nosuch in Dockerfile" in bad.stderr
    finally:
        berth.docker("rmi", "multi:1", "multi:other")


def test_copy_from_with_wildcards_and_the_whole_root(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    """moby's classic builder matches `COPY --from` wildcards in the stage's filesystem and
    copies `/` whole."""
    dockerfile = (
        "FROM busybox AS build\nRUN mkdir -p /out && echo a > /out/a.txt && echo b > /out/b.txt && echo c > /out/c.md\n"
        "FROM busybox\nCOPY --from=build /out/*.txt /txt/\nCOPY --from=build / /all/\n"
        "COPY --from=build /out/*.none* /nothing/\n"
    )
    ctx = make_context(tmp_path / "ctx", dockerfile.replace("COPY --from=build /out/*.none* /nothing/\n", ""))
    try:
        berth.docker_ok("build", "-t", "wild:1", str(ctx), timeout=240)
        assert berth.docker_ok("run", "--rm", "wild:1", "ls", "/txt") == "a.txt\nb.txt\n"
        assert berth.docker_ok("run", "--rm", "wild:1", "cat", "/all/out/c.md") == "c\n"
        assert berth.docker_ok("run", "--rm", "wild:1", "cmp", "/all/bin/busybox", "/bin/busybox") == ""
        none = berth.docker("build", str(make_context(tmp_path / "none", dockerfile)), timeout=240)
        assert none.returncode == 1 and "COPY failed: no source files were specified" in none.stderr
    finally:
        berth.docker("rmi", "wild:1")


def test_copy_from_history_sums_are_dockerds(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    """The same Dockerfile built on a scratch dockerd 20.10 gave these COPY history lines (moby's
    lazySource sums: the image path, Go's mode bits, the host's user names, the content)."""
    dockerfile = (
        "FROM busybox AS build\nRUN mkdir -p /out/d && echo a > /out/a.txt && echo b > /out/d/b.txt "
        "&& ln -s a.txt /out/l\n"
        "FROM busybox\nCOPY --from=build /out/a.txt /one\nCOPY --from=build /out /dir/\n"
    )
    ctx = make_context(tmp_path / "ctx", dockerfile)
    try:
        berth.docker_ok("build", "-q", "-t", "fromsums:1", str(ctx), timeout=240)
        history = berth.docker_ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", "fromsums:1")
        assert history.splitlines()[:2] == [
            "/bin/sh -c #(nop) COPY dir:e3a2c3297a5b9c3c932b44aede0e9a603b892183829fd49e601196b82fcc772a in /dir/ ",
            "/bin/sh -c #(nop) COPY file:66ebdbfce3ff1e41254bf305244f2562c5cd24832b02a9dd91fbc1a9733e8b73 in /one ",
        ]
    finally:
        berth.docker("rmi", "fromsums:1")


def test_platforms_of_from(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    """`--platform` (the build's or FROM's) takes a local image only of that platform, as
    dockerd 20.10; another platform is pulled for it. The image is named after a registry on a
    closed loopback port, so that pull fails at once and nothing leaves the host."""
    local = "127.0.0.1:1/plat/busybox:1"
    berth.docker_ok("tag", busybox_image, local)
    ctx = make_context(tmp_path / "ctx", f"FROM --platform=linux/amd64 {local}\nRUN echo host\n")
    other = make_context(tmp_path / "other", f"FROM --platform=linux/arm64 {local}\nRUN echo never\n")
    try:
        assert "host\n" in berth.docker_ok("build", "-t", "plat:1", str(ctx), timeout=240)
        assert "host\n" in berth.docker_ok("build", "--platform", "linux/amd64", "-t", "plat:1", str(ctx), timeout=240)
        res = berth.docker("build", str(other), timeout=240)
        assert res.returncode != 0 and "never" not in res.stdout
        assert "127.0.0.1:1" in res.stderr, res.stderr  # it tried to pull the arm64 one
        bad = berth.docker("build", "--platform", "linux//", str(ctx), timeout=60)
        assert bad.returncode != 0 and "unknown operating system or architecture" in bad.stderr
    finally:
        berth.docker("rmi", "plat:1", local)


def test_dockerfile_from_stdin_file_option_and_quiet(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    try:
        res = berth.docker("build", "-q", "-t", "stdin:1", "-", input="FROM busybox\nRUN echo from-stdin > /s\n")
        assert res.returncode == 0, res.stderr
        image_id = res.stdout.strip()
        assert image_id.startswith("sha256:") and len(image_id) == 71
        assert berth.docker_ok("image", "inspect", "-f", "{{.Id}}", "stdin:1").strip() == image_id
        assert berth.docker_ok("run", "--rm", "stdin:1", "cat", "/s") == "from-stdin\n"
        ctx = make_context(tmp_path / "ctx", "FROM nosuch\n")
        (ctx / "other.Dockerfile").write_text(
            "FROM busybox\nCOPY f.txt /\nCOPY --chown=user f.txt /u\nCOPY --chown=nobody:1000 d /n/\nCMD [\"cat\", \"/f.txt\"]\n"
        )
        berth.docker_ok("build", "-f", str(ctx / "other.Dockerfile"), "-t", "file:1", str(ctx), timeout=240)
        assert berth.docker_ok("run", "--rm", "file:1") == "hello\n"
        # --chown names from the image's own /etc/passwd and /etc/group; a directory COPY makes
        # is owned like the files (dockerd 20.10 shows the same owners).
        owners = berth.docker_ok("run", "--rm", "file:1", "stat", "-c", "%n %u:%g", "/u", "/n", "/n/sub", "/n/sub/y")
        assert owners.splitlines() == ["/u 1000:1000", "/n 65534:1000", "/n/sub 65534:1000", "/n/sub/y 65534:1000"]
        assert berth.docker_ok("builder", "prune", "-f").strip().endswith("Total reclaimed space: 0B")
        missing = berth.docker("build", "-", input="FROM busybox\nCOPY f.txt /\n")
        assert missing.returncode == 1
        assert ("COPY failed: file not found in build context or excluded by .dockerignore: "
                "stat f.txt: file does not exist") in missing.stderr  # fmt: skip
    finally:
        berth.docker("rmi", "stdin:1", "file:1")


def test_a_client_that_goes_away_cancels_the_step(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", "FROM busybox\nRUN echo started && sleep 300\n")
    before = set(_ids(berth, "ps", "-aq"))
    env = {**os.environ, "DOCKER_HOST": berth.docker_host, "DOCKER_CONFIG": str(berth.docker_config)}
    log = tmp_path / "out"
    with log.open("wb") as out:
        proc = subprocess.Popen(["docker", "build", "--no-cache", str(ctx)], env=env, stdout=out, stderr=out)
    try:
        wait_until(lambda: b"\nstarted\n" in log.read_bytes() or None, timeout=120, what="the RUN step")
        assert len(set(_ids(berth, "ps", "-q")) - before) == 1
    finally:
        proc.kill()
        proc.wait(timeout=30)
    wait_until(lambda: set(_ids(berth, "ps", "-aq")) == before or None, timeout=60, what="the step's removal")


def test_scratch_add_of_a_tar_and_onbuild(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", "FROM scratch\nENV A=b\nCOPY f.txt /f\nWORKDIR /w\nCMD [\"/f\"]\n")
    src = tmp_path / "src" / "d"
    src.mkdir(parents=True)
    (src / "x").write_text("in\n")
    subprocess.run(["tar", "-czf", str(ctx / "a.tar.gz"), "-C", str(src.parent), "d"], check=True)
    (ctx / "Dockerfile.onbuild").write_text(
        "FROM busybox\nADD a.tar.gz /opt/\nONBUILD RUN echo triggered > /t\nONBUILD COPY a.tar.gz /copied.tgz\n"
    )
    (ctx / "Dockerfile.child").write_text("FROM onb:1\nRUN cat /t /opt/d/x && ls /copied.tgz\n")
    try:
        out = berth.docker_ok("build", "-t", "scratch:1", str(ctx), timeout=240)
        assert "Step 1/5 : FROM scratch\n ---> \nStep 2/5 : ENV A=b\n ---> Running in " in out
        meta = json.loads(berth.docker_ok("image", "inspect", "scratch:1"))[0]
        assert meta["Parent"].startswith("sha256:")  # the step before: an intermediate image
        assert len(meta["RootFS"]["Layers"]) == 2 and meta["Config"]["WorkingDir"] == "/w"
        berth.docker_ok("create", "--name", "scratch-c", "scratch:1")
        exported = subprocess.run(
            ["docker", "export", "scratch-c"], env={**os.environ, "DOCKER_HOST": berth.docker_host},
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        listed = subprocess.run(["tar", "-t"], input=exported, capture_output=True, check=True).stdout.split()
        assert b"f" in listed and b"w/" in listed and b"bin/" not in listed
        berth.docker_ok("build", "-f", str(ctx / "Dockerfile.onbuild"), "-t", "onb:1", str(ctx), timeout=240)
        assert berth.docker_ok("run", "--rm", "onb:1", "cat", "/opt/d/x") == "in\n"  # ADD extracted it
        child = berth.docker_ok("build", "-f", str(ctx / "Dockerfile.child"), "-t", "onb:2", str(ctx), timeout=240)
        assert "Step 1/2 : FROM onb:1\n# Executing 2 build triggers\n ---> Running in " in child
        assert "triggered\nin\n/copied.tgz\n" in child
    finally:
        berth.docker("rm", "scratch-c")
        berth.docker("rmi", "scratch:1", "onb:2", "onb:1")


def test_a_build_is_one_trace_with_a_span_per_step(
    berth: Berth, busybox_image: str, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    ctx = make_context(tmp_path / "ctx", "FROM busybox\nENV T=1\nRUN echo traced\n")
    before = {s.span_id for s in receiver.spans}
    berth.docker_ok("build", "--no-cache", str(ctx), timeout=240)

    wanted = ["step 2/3: ENV", "step 3/3: RUN"]

    def build_span(spans: list[SpanRecord]) -> SpanRecord | None:
        """This build's root: spans of earlier tests' builds may still be arriving (batched), so
        the root is the new one whose trace holds exactly this build's steps."""
        for root in (s for s in spans if s.span_id not in before and s.name == "docker build"):
            steps = sorted(s.name for s in receiver.trace(root.trace_id) if s.name.startswith("step "))
            if steps == wanted:
                return root
        return None

    root = receiver.wait_for(build_span, timeout=30)
    assert isinstance(root, SpanRecord), "no `docker build` trace with a span per step arrived"
    assert root.service == "berth-builder"
    # The gateway's request span is the build's parent: the client's request starts the trace.
    services = {s.service for s in receiver.trace(root.trace_id)}
    assert {"berth-api-gateway", "berth-builder", "berth-engine"} <= services
    # The context's upload and index, beside the build's span (its sibling: they overlap).
    context_spans = [s for s in receiver.trace(root.trace_id) if s.name == "build context"]
    assert [s.parent_span_id for s in context_spans] == [root.parent_span_id]


def test_add_of_a_url(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    """Fetched by the builder as dockerd's builder does: 0600, Last-Modified as mtime, the same
    sum in the history as dockerd 20.10 wrote for this file, clear errors when unreachable."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "x.txt").write_text("remote\n")
    os.utime(www / "x.txt", (1690000000, 1690000000))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        dockerfile = (f"FROM busybox\nADD {base}/x.txt /d/\nADD {base}/x.txt /named\n"
                      "RUN stat -c '%n %a %u:%g %Y' /d/x.txt /named\n")  # fmt: skip
        out = berth.docker_ok("build", "-t", "added:1", "-", input=dockerfile, timeout=240)
        assert "/d/x.txt 600 0:0 1690000000\n/named 600 0:0 1690000000\n" in out
        history = berth.docker_ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", "added:1").splitlines()
        assert history[1] == (
            "/bin/sh -c #(nop) ADD ea173ddfce4e922bd41ce29e6f059c0aa476586664a4f8b1d1ad7dad6c83f28a in /named "
        )
        again = berth.docker_ok("build", "-t", "added:1", "-", input=dockerfile, timeout=240)
        assert again.count(" ---> Using cache\n") == 3
        missing = berth.docker("build", "-", input=f"FROM busybox\nADD {base}/nope /\n")
        assert missing.returncode == 1
        assert f"ADD failed: failed to GET {base}/nope with status 404 File not found: " in missing.stderr
    finally:
        server.shutdown()
        server.server_close()
        berth.docker("rmi", "added:1")
    refused = berth.docker("build", "-", input=f"FROM busybox\nADD {base}/y /\n")
    port = server.server_address[1]
    assert f'ADD failed: Get "{base}/y": dial tcp 127.0.0.1:{port}: connect: connection refused' in refused.stderr


def test_image_prune_keeps_the_steps_of_a_tagged_build(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", "FROM busybox\nENV P=1\nRUN echo p > /p\n")
    try:
        berth.docker_ok("build", "-t", "pruned:1", str(ctx), timeout=240)
        berth.docker_ok("image", "prune", "-f")
        # The steps are parents of a named image: dockerd keeps them, so the cache still hits.
        again = berth.docker_ok("build", "-t", "pruned:1", str(ctx), timeout=240)
        assert again.count(" ---> Using cache\n") == 2
        history = berth.docker_ok("history", "-q", "pruned:1").split()
        assert "<missing>" not in history[:3]
        # rmi --no-prune leaves the steps: the last one is now a dangling head, and prune takes
        # it with the whole untagged chain under it, as dockerd.
        before = set(_ids(berth, "images", "-aq"))
        berth.docker_ok("rmi", "--no-prune", "pruned:1")
        dangling = _ids(berth, "images", "-q", "--filter", "dangling=true")
        assert len(dangling) == 1
        berth.docker_ok("image", "prune", "-f")
        assert _ids(berth, "images", "-q", "--filter", "dangling=true") == []
        assert len(before - set(_ids(berth, "images", "-aq"))) == 2  # the image and its ENV step
    finally:
        berth.docker("rmi", "pruned:1")
