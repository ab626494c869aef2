"""A client that hangs up mid-stream ends its handler and releases its NATS subscription."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from berth_kit.testing import free_port, nats_server_binary

STREAM_SUBJECT = "berth.events.v1.docker.>"


@pytest.fixture
def monitored_nats() -> Iterator[tuple[str, int]]:
    port, monitor = free_port(), free_port()
    proc = subprocess.Popen(
        [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{monitor}/healthz", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}", monitor
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _event_subscriptions(monitor: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/connz?subs=1", timeout=5) as r:
        connz = json.load(r)
    return sum(
        1
        for conn in connz.get("connections", [])
        for sub in conn.get("subscriptions_list") or []
        if sub == STREAM_SUBJECT
    )


def _wait_for(predicate: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_events_client_hanging_up_releases_the_subscription(
    monitored_nats: tuple[str, int], gateway_factory: Any
) -> None:
    url, monitor = monitored_nats
    with gateway_factory(nats=url) as gw:
        conn = gw.connection()
        conn.request("GET", "/v1.44/events")
        assert conn.getresponse().status == 200
        _wait_for(lambda: _event_subscriptions(monitor) == 1, "the events subscription")
        conn.close()  # the client goes away without a word
        _wait_for(lambda: _event_subscriptions(monitor) == 0, "the subscription to go")
        response, _ = gw.request("GET", "/_ping")  # and the gateway is fine
        assert response.status == 200
