"""docker events: history for --since/--until, filters, Docker's event shapes."""

from __future__ import annotations

import json
import time

import pytest
from harness import Berth

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def _events(berth: Berth, since: float, *filters: str) -> list[dict[str, object]]:
    until = time.time() + 1
    out = berth.docker_ok(
        "events", "--since", f"{since:.3f}", "--until", f"{until:.3f}",
        "--format", "{{json .}}", *filters,
    )
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_container_lifecycle_in_order(berth: Berth, busybox_image: str) -> None:
    since = time.time() - 1
    cid = berth.docker_ok(
        "run", "-d", "--label", "team=blue", "--name", "evented", busybox_image, "sh", "-c", "exit 3"
    ).strip()
    assert berth.docker_ok("wait", cid).strip() == "3"
    berth.docker_ok("rm", cid)
    events = _events(berth, since, "--filter", f"container={cid}")
    actions = [e["Action"] for e in events]
    assert actions == ["create", "start", "die", "destroy"], actions
    die = events[2]
    assert die["Actor"]["Attributes"]["exitCode"] == "3"  # type: ignore[index]
    assert die["Actor"]["Attributes"]["team"] == "blue"  # type: ignore[index]
    assert die["status"] == "die" and die["id"] == cid and die["from"] == busybox_image
    # label and event filters narrow the same history
    labelled = _events(berth, since, "--filter", "label=team=blue", "--filter", "event=die")
    assert [e["id"] for e in labelled] == [cid]


def test_exec_and_image_events(berth: Berth, busybox_image: str) -> None:
    since = time.time() - 1
    cid = berth.docker_ok("run", "-d", busybox_image, "sleep", "60").strip()
    try:
        berth.docker_ok("exec", cid, "true")
        berth.docker_ok("tag", busybox_image, "evented:tagged")
        berth.docker_ok("rmi", "evented:tagged")
        execs = [e["Action"] for e in _events(berth, since, "--filter", f"container={cid}")]
        assert [a for a in execs if str(a).startswith("exec_")] == [
            "exec_create: true", "exec_start: true", "exec_die"
        ], execs
        images = [e["Action"] for e in _events(berth, since, "--filter", "type=image")]
        assert "tag" in images and "untag" in images, images
    finally:
        berth.docker("rm", "-f", cid)
