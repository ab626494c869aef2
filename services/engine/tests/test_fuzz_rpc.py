"""Every RPC handler of the engine, lifecycle and runtime-agent, fuzzed (issue 15).

The three services run for real (subprocesses, one nats-server, temp roots, as the other service
tests start them). For every member of EngineRequest, LifecycleRequest and AgentRequest,
hypothesis sends requests that follow the contract and requests that break it (wrong types,
unknown fields, bytes that are not msgpack), and checks after each one:

- the reply is a typed ErrorReply (a known kind) or a success, never silence;
- no handler failed with an unexpected exception (the kit logs "handler for X failed" then);
- nothing was written beside the roots (a canary directory next to them, which the requests'
  strings aim at, is untouched);
- every service still answers Ping.

Nothing here can reach the host: the services own only their temp roots; an agent TaskCreate
gets an empty read-only rootfs, no networks, ports, copy-up, devices, sysctls or cgroup parent
(a process there has nothing to run); network hot-plug gets no attachments; pulls go to a closed loopback port.

Bounded for `make test` (BERTH_FUZZ_EXAMPLES examples of each kind per request type, default 6);
a long run: `BERTH_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest services/engine/tests/test_fuzz_rpc.py`.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from berth_contracts import subjects
from berth_contracts.agent import AgentRequest
from berth_contracts.engine import EngineRequest
from berth_contracts.errors import HTTP_STATUS
from berth_contracts.lifecycle import LifecycleRequest
from berth_kit.fuzzing import (
    DERANDOMIZE,
    EXAMPLES,
    invalid_requests,
    members,
    raw_garbage,
    valid_requests,
)
from berth_kit.nats_conn import connect
from berth_kit.testing import nats_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NATS

sys.path.insert(0, str(Path(__file__).parent))
from engine_harness import NODE, Services  # noqa: E402

pytestmark = pytest.mark.timeout(900)

SERVICES = ("berth-engine", "berth-lifecycle", "berth-runtime-agent")
REQUEST_TIMEOUT = 30.0
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=DERANDOMIZE,
    deadline=None,
    database=None,  # nothing written into the checkout
    suppress_health_check=list(HealthCheck),
)


class Fuzzer:
    def __init__(self, svc: Services, portal: BlockingPortal, nc: NATS, root: Path) -> None:
        self.svc = svc
        self.portal = portal
        self.nc = nc
        self.root = root
        self.outside = root / "outside"
        self.empty_rootfs = root / "empty-rootfs"
        self.log_offsets = {s: 0 for s in SERVICES}
        self.targets = [str(self.outside), str(self.outside / "x"), "../outside", "../../outside"]

    def send(self, subject: str, data: bytes) -> dict[str, Any]:
        request = functools.partial(self.nc.request, subject, data, timeout=REQUEST_TIMEOUT)
        msg = self.portal.call(request)
        reply = msgspec.msgpack.decode(msg.data)
        assert isinstance(reply, dict) and isinstance(reply.get("type"), str), reply
        if reply["type"] == "error":
            assert reply.get("kind") in HTTP_STATUS and isinstance(reply.get("message"), str)
        return reply

    def new_log_lines(self) -> list[str]:
        bad = []
        for service in SERVICES:
            path = self.svc.root / f"{service}.log"
            with open(path, "rb") as f:
                f.seek(self.log_offsets[service])
                text = f.read().decode(errors="replace")
                self.log_offsets[service] = f.tell()
            if "Traceback" in text or ("handler for" in text and " failed" in text):
                bad.append(f"{service}:\n{text[-3000:]}")
        return bad

    def check(self, subject: str, data: bytes) -> None:
        self.send(subject, data)
        bad = self.new_log_lines()
        assert not bad, "\n".join(bad)

    def outside_state(self) -> list[tuple[str, int, int]]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.outside):
            for name in dirnames + filenames:
                st_ = os.lstat(os.path.join(dirpath, name))
                out.append((os.path.join(dirpath, name), st_.st_size, st_.st_mtime_ns))
        return sorted(out)

    # Harmless versions of requests that would act on the host.
    def fixup(self, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("type") == "TaskCreate":
            data["rootfs"] = [
                {"type": "bind", "source": str(self.empty_rootfs), "target": "/",
                 "options": ["rbind", "ro"]}
            ]  # fmt: skip
            spec = dict(data["spec"])
            spec.update(network_mode="none", networks=[], port_mappings=[], copy_up=[])
            # Host-wide effects even with nothing to run: cgroups made anywhere, device nodes,
            # sysctls (a host namespace would take them).
            spec.update(cgroup_parent="", devices=[], sysctls={})
            data["spec"] = spec
        if data.get("type") == "TaskNetworkUpdate":
            data["connect"] = []
        return data


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzer]:
    if os.geteuid() != 0:
        pytest.skip("the runtime agent needs root")
    root = tmp_path_factory.mktemp("fuzz")
    with nats_server() as url:
        svc = Services(url, root)
        svc.env["BERTH_REGISTRY_PROXY_URL"] = "http://127.0.0.1:9"  # closed: pulls fail fast
        for service in SERVICES:
            svc.start(service)
        with start_blocking_portal() as portal:
            nc = portal.call(functools.partial(connect, url, "fuzz", connect_deadline=5))
            f = Fuzzer(svc, portal, nc, root)
            f.outside.mkdir()
            (f.outside / "keep").write_text("must stay\n")
            f.empty_rootfs.mkdir()
            before = f.outside_state()
            entries = sorted(p.name for p in root.iterdir())
            try:
                yield f
                assert f.outside_state() == before
                assert sorted(p.name for p in root.iterdir()) == entries
            finally:
                portal.call(nc.close)
                svc.stop_all()


def _cases() -> list[Any]:
    cases = []
    for subject, union in (
        (subjects.ENGINE_RPC, EngineRequest),
        (subjects.lifecycle_rpc(NODE), LifecycleRequest),
        (subjects.agent_rpc(NODE), AgentRequest),
    ):
        for member in members(union):
            cases.append(pytest.param(subject, member, id=f"{union_name(union)}-{member.__name__}"))
    return cases


def union_name(union: Any) -> str:
    return {id(EngineRequest): "engine", id(LifecycleRequest): "lifecycle"}.get(id(union), "agent")


@pytest.mark.parametrize(("subject", "member"), _cases())
def test_handler_survives_any_request(fuzzer: Fuzzer, subject: str, member: Any) -> None:
    @FUZZ
    @given(st.data())
    def run(data: st.DataObject) -> None:
        valid = data.draw(valid_requests(member, fuzzer.targets, fuzzer.fixup), label="valid")
        fuzzer.check(subject, valid)
        invalid = data.draw(invalid_requests(member, fuzzer.targets), label="invalid")
        fuzzer.check(subject, invalid)

    run()
    for service in SERVICES:
        reply = fuzzer.send(subjects.health(service), msgspec.msgpack.encode({"type": "Ping"}))
        assert reply["type"] == "Pong", (service, reply)


@pytest.mark.parametrize("subject", [subjects.ENGINE_RPC, subjects.lifecycle_rpc(NODE),
                                     subjects.agent_rpc(NODE)])  # fmt: skip
def test_garbage_is_answered(fuzzer: Fuzzer, subject: str) -> None:
    @FUZZ
    @given(raw_garbage())
    def run(data: bytes) -> None:
        reply = fuzzer.send(subject, data)
        assert reply["type"] == "error"
        assert not fuzzer.new_log_lines()

    run()
