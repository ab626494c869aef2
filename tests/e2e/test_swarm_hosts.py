"""Swarm mode across hosts: two berths in network namespaces joined by a bridge (berth_testsupport.netbed),
each with its own BERTH_NODE, data and exec roots and NATS, driven by the real docker CLI
through each node's socket. A manager and a worker: join, spread, service logs, drain,
scale, the worker cut off (its tasks placed elsewhere within 10 s, its logs reported
missing) and back (it stops what it no longer owns), killed whole and started again (it
links back from its own files), leave; engine labels as constraints; and the bus between
them carries only what it must."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
from berth_testsupport.netbed import NetBed
from harness import Berth, berths_on_hosts, nats_port_info, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


@pytest.fixture(scope="module")
def hosts() -> Iterator[tuple[NetBed, Berth, Berth]]:
    offers = ("--node-generic-resource", "gpu=UUID-A", "--node-generic-resource", "gpu=UUID-B")
    with NetBed(2) as bed, berths_on_hosts(bed, {1: ("--label", "zone=b", *offers)}) as nodes:
        yield bed, nodes[0], nodes[1]


def running(node: Berth, service: str = "web") -> list[str]:
    out = node.docker_ok("ps", "--filter", f"label=com.docker.swarm.service.name={service}", "--format", "{{.Names}}")
    return sorted(out.split())


def node_states(manager: Berth) -> dict[str, str]:
    out = manager.docker_ok("node", "ls", "--format", "{{.ID}} {{.Status}} {{.Availability}}")
    return {line.split()[0]: " ".join(line.split()[1:]) for line in out.splitlines()}


def bus_probe(bed: NetBed, node: Berth, i: int, identity: str, subject: str, reply: str) -> str:
    """From node i's own NATS, as one of its services: send a Ping and say whether anything
    answered."""
    creds = node.data_root / "nats" / identity / "bus.creds"
    code = textwrap.dedent(f"""
        import asyncio, json, nats
        from berth_contracts.base import Ping
        from berth_contracts.codec import encode
        async def main():
            c = json.load(open({str(creds)!r}))
            nc = await nats.connect("nats://127.0.0.1:{node.nats_port}", user=c["user"], password=c["password"])
            sub = await nc.subscribe({reply!r}, max_msgs=1)
            await nc.publish({subject!r}, encode(Ping()), reply={reply!r})
            try:
                msg = await sub.next_msg(timeout=2)
                print("answered" if msg.data else "silent")  # not the server's "no responders"
            except Exception:
                print("silent")
            await nc.close()
        asyncio.run(main())
    """)
    res = subprocess.run([*bed.enter(i), sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_a_worker_joins_runs_its_share_and_survives_being_cut_off(hosts: tuple[NetBed, Berth, Berth]) -> None:
    bed, manager, worker = hosts
    manager_addr = f"{bed.addr(0)}:2377"
    manager.docker_ok("swarm", "init", "--advertise-addr", bed.addr(0))
    try:
        token = manager.docker_ok("swarm", "join-token", "-q", "worker").strip()
        bad = worker.docker("swarm", "join", "--token", "SWMTKN-1-nonsense", manager_addr)
        assert bad.returncode == 1 and "invalid join token" in bad.stderr
        # The swarm port speaks TLS with the swarm's CA, whose digest is the token's middle part:
        # a token naming another CA (swarmkit's words) never sends its credentials.
        assert nats_port_info(bed, 1, bed.addr(0), 2377)["tls_required"] is True
        secret = token.rsplit("-", 1)[1]
        forged = worker.docker("swarm", "join", "--token", f"SWMTKN-1-{'0' * 50}-{secret}", manager_addr)
        assert forged.returncode == 1, forged.stderr
        assert f"remote CA does not match fingerprint. Expected: {'0' * 64}" in forged.stderr
        assert not (worker.data_root / "nats" / "swarm-tls").exists()
        # The right CA but a wrong secret: the manager's NATS refuses the link (after 20 s).
        digest = token.split("-")[2]
        wrong = worker.docker("swarm", "join", "--token", f"SWMTKN-1-{digest}-{'0' * 25}", manager_addr, timeout=60)
        assert wrong.returncode == 1 and "did not admit this node" in wrong.stderr, wrong.stderr
        assert worker.docker_ok("info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "inactive"
        joined = worker.docker_ok("swarm", "join", "--token", token, manager_addr, timeout=60)
        assert "This node joined a swarm as a worker." in joined
        # Its link verifies the manager's certificate with the CA it pinned (and keeps a key
        # for a promotion); the manager's certificate names its address.
        link = json.loads((worker.data_root / "nats" / "swarm.json").read_text())["remote"]
        tls = worker.data_root / "nats" / "swarm-tls"
        assert link["ca_file"] == str(tls / "ca.pem") and sorted(p.name for p in tls.iterdir()) == ["ca.pem", "node-key.pem"]
        assert (tls / "node-key.pem").stat().st_mode & 0o777 == 0o600
        info = json.loads(worker.docker_ok("info", "--format", "{{json .Swarm}}"))
        assert (info["LocalNodeState"], info["ControlAvailable"], info["NodeAddr"]) == ("active", False, bed.addr(1))
        assert info["RemoteManagers"][0]["Addr"] == manager_addr
        worker_id = info["NodeID"]
        refused = worker.docker("node", "ls")
        assert refused.returncode == 1 and "This node is not a swarm manager." in refused.stderr
        again = worker.docker("swarm", "join", "--token", token, manager_addr)
        assert again.returncode == 1 and "This node is already part of a swarm." in again.stderr
        wait_until(lambda: node_states(manager).get(worker_id) == "Ready Active", 15, "the worker Ready")
        [addr] = manager.docker_ok("node", "inspect", worker_id, "--format", "{{.Status.Addr}}").split()
        assert addr == bed.addr(1)

        # The worker's engine labels (`berth up --label`, dockerd's --label): in its `docker
        # info`, in its node's description, and as placement constraints.
        assert json.loads(worker.docker_ok("info", "--format", "{{json .Labels}}")) == ["zone=b"]
        wait_until(
            lambda: manager.docker_ok("node", "inspect", worker_id, "--format", "{{json .Description.Engine.Labels}}")
            .strip() == '{"zone":"b"}', 10, "the worker's engine labels on the manager",
        )  # fmt: skip
        manager.docker_ok(
            "service", "create", "--name", "zoned", "--replicas", "2", "--constraint", "engine.labels.zone==b",
            "--stop-grace-period", "1s", "busybox:latest", "sleep", "1000", timeout=120,
        )  # fmt: skip
        assert (len(running(manager, "zoned")), len(running(worker, "zoned"))) == (0, 2)
        manager.docker_ok("service", "rm", "zoned")
        wait_until(lambda: not running(worker, "zoned"), 20, "the zoned service's tasks removed")

        manager_id = manager.docker_ok("node", "inspect", "self", "--format", "{{.ID}}").strip()
        # Its generic resources (`berth up --node-generic-resource`, dockerd's): in its node's
        # description; each task reserving one gets a unit of its own, named in its env.
        offered = manager.docker_ok("node", "inspect", worker_id, "--format", "{{json .Description.Resources.GenericResources}}")
        assert json.loads(offered) == [{"NamedResourceSpec": {"Kind": "gpu", "Value": "UUID-A"}},
                                       {"NamedResourceSpec": {"Kind": "gpu", "Value": "UUID-B"}}]  # fmt: skip
        manager.docker_ok("service", "create", "--name", "gpu", "--replicas", "3", "--generic-resource", "gpu=1",
                          "--detach", "--stop-grace-period", "1s", "busybox:latest", "sleep", "1000")  # fmt: skip
        wait_until(lambda: len(running(worker, "gpu")) == 2, 60, "two tasks, one per unit, on the worker")
        units = sorted(worker.docker_ok("exec", name, "sh", "-c", "echo $DOCKER_RESOURCE_GPU").strip() for name in running(worker, "gpu"))
        assert units == ["UUID-A", "UUID-B"] and running(manager, "gpu") == []
        pending = manager.docker_ok("service", "ps", "gpu", "--no-trunc", "--filter", "desired-state=running",
                                    "--format", "{{.CurrentState}}|{{.Error}}")  # fmt: skip
        assert "Pending" in pending and "no suitable node (insufficient resources on 2 nodes)" in pending, pending
        manager.docker_ok("service", "rm", "gpu")
        wait_until(lambda: not running(worker, "gpu"), 20, "the gpu service's tasks removed")
        # A global service's task is made for its node, and waits there until it fits.
        manager.docker_ok("service", "create", "--name", "gpus", "--mode", "global", "--generic-resource", "gpu=2",
                          "--detach", "--stop-grace-period", "1s", "busybox:latest", "sleep", "1000")  # fmt: skip
        wait_until(lambda: len(running(worker, "gpus")) == 1, 60, "the global task on the worker")
        [name] = running(worker, "gpus")
        assert worker.docker_ok("exec", name, "sh", "-c", "echo $DOCKER_RESOURCE_GPU").strip() == "UUID-A,UUID-B"
        pending = manager.docker_ok("service", "ps", "gpus", "--no-trunc", "--filter", f"node={manager_id}",
                                    "--format", "{{.CurrentState}}|{{.Error}}")  # fmt: skip
        assert "Pending" in pending and "insufficient resources on 1 node" in pending, pending
        assert "no suitable node" not in pending, pending  # swarmkit's taskFitNode: the filter's words alone
        manager.docker_ok("service", "rm", "gpus")
        wait_until(lambda: not running(worker, "gpus"), 20, "the global service's task removed")

        # The bus between them carries only each node's own session: from the worker's side,
        # the manager's node-addressed services are out of reach, and so is another node's session.
        engine, inbox = "berth-engine", "berth.inbox.v1.berth-engine.probe"
        assert bus_probe(bed, worker, 1, engine, "berth.lifecycle.v1.node.host1.rpc", inbox) == "answered"
        assert bus_probe(bed, worker, 1, engine, "berth.lifecycle.v1.node.host0.rpc", inbox) == "silent"
        orchestrator = "berth-orchestrator"
        for node_id, heard in ((worker_id, "answered"), (manager_id, "silent")):
            session, reply = f"berth.swarm.v1.node.{node_id}", f"berth.swarm.v1.assigned.{node_id}.probe"
            assert bus_probe(bed, worker, 1, orchestrator, session, reply) == heard, node_id

        # Spread: two tasks on each host, visible in each host's own `docker ps`.
        manager.docker_ok(
            "service", "create", "--name", "web", "--replicas", "4", "--stop-grace-period", "1s",
            "busybox:latest", "sleep", "1000", timeout=120,
        )  # fmt: skip
        assert (len(running(manager)), len(running(worker))) == (2, 2)

        # `docker service logs` on the manager: each task's log read on its own node (the
        # worker's comes over its link), named by the node it ran on.
        manager.docker_ok(
            "service", "create", "--name", "talk", "--replicas", "2", "--stop-grace-period", "1s",
            "busybox:latest", "sh", "-c", "echo out $(hostname); sleep 1000", timeout=120,
        )  # fmt: skip
        wait_until(lambda: len(manager.docker_ok("service", "logs", "talk").splitlines()) == 2, 20, "both tasks' lines")
        # --no-resolve: nodes by ID (the bed's hosts share one hostname).
        talk = manager.docker_ok("service", "logs", "--no-resolve", "talk").splitlines()
        by_node = {line.split("@")[1].split()[0]: line.split()[-1] for line in talk}
        assert sorted(by_node) == sorted([manager_id, worker_id]), talk
        assert by_node[worker_id] in worker.docker_ok("ps", "--filter", "label=com.docker.swarm.service.name=talk",
                                                     "--format", "{{.ID}}")  # fmt: skip

        # Drain moves the worker's tasks to the manager; active again, new tasks go to it.
        manager.docker_ok("node", "update", "--availability", "drain", worker_id)
        wait_until(lambda: (len(running(manager)), len(running(worker))) == (4, 0), 30, "tasks off the drained node")
        manager.docker_ok("node", "update", "--availability", "active", worker_id)
        manager.docker_ok("service", "scale", "web=6", timeout=120)
        assert (len(running(manager)), len(running(worker))) == (4, 2)

        # Cut off: the worker goes silent; within 10 s it is Down and its tasks run elsewhere.
        subprocess.run(["ip", "-n", bed.node(1), "link", "set", "eth0", "down"], check=True)
        cut = time.monotonic()
        wait_until(lambda: len(running(manager)) == 6, 20, "the worker's tasks placed on the manager")
        took = time.monotonic() - cut
        assert took <= 10 + 2, f"rescheduled after {took:.1f}s"  # + the CLI's own polling
        assert node_states(manager)[worker_id].startswith("Down")
        assert len(running(worker)) == 2  # as dockerd's: a cut-off worker keeps its tasks running
        # Its tasks' logs cannot be read meanwhile: dockerd's (swarmkit's) warning, the rest shown.
        partial = manager.docker("service", "logs", "--no-resolve", "talk")
        assert partial.returncode == 1 and f"node {worker_id} is not available" in partial.stderr, partial.stderr
        assert "incomplete log stream" in partial.stderr and f"@{manager_id} " in partial.stdout
        manager.docker_ok("service", "rm", "talk")

        # Back: it is Ready again and stops the tasks it no longer owns.
        subprocess.run(["ip", "-n", bed.node(1), "link", "set", "eth0", "up"], check=True)
        wait_until(lambda: node_states(manager).get(worker_id) == "Ready Active", 20, "the worker Ready again")
        wait_until(lambda: running(worker) == [], 20, "the returned worker's stale tasks stopped")
        assert len(running(manager)) == 6

        # Lost whole: every process of the worker killed (berth, its NATS, shims, containers).
        # Its tasks run elsewhere within 10 s; `berth up` again and it links back on its own.
        manager.docker_ok("service", "scale", "web=8", timeout=120)
        assert len(running(worker)) == 2
        worker.clean_up(remove=False)
        killed = time.monotonic()
        wait_until(lambda: len(running(manager)) == 8, 20, "the killed worker's tasks placed on the manager")
        took = time.monotonic() - killed
        assert took <= 10 + 2, f"rescheduled after {took:.1f}s"
        worker.up_detached()
        wait_until(lambda: node_states(manager).get(worker_id) == "Ready Active", 30, "the restarted worker Ready")
        assert running(worker) == [] and len(running(manager)) == 8

        # A worker leaves: its task containers go; the manager shows it Down until `node rm`.
        manager.docker_ok("service", "scale", "web=10", timeout=120)
        assert len(running(worker)) == 2
        worker.docker_ok("swarm", "leave")
        assert worker.docker_ok("info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "inactive"
        assert not tls.exists()  # its key and pinned CA go with the swarm
        wait_until(lambda: not worker.docker_ok("ps", "-aq", "--filter", "label=com.docker.swarm.task.id").strip(),
                   20, "the worker's task containers removed")  # fmt: skip
        wait_until(lambda: node_states(manager)[worker_id].startswith("Down"), 10, "the left worker Down")
        wait_until(lambda: len(running(manager)) == 10, 30, "its tasks placed on the manager")
        manager.docker_ok("node", "rm", worker_id)
        assert worker_id not in node_states(manager)
    finally:
        worker.docker("swarm", "leave", "--force")
        manager.docker("swarm", "leave", "--force")
    assert manager.docker_ok("info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "inactive"


def test_one_of_two_managers_demoted_leaves_the_other_serving_alone(hosts: tuple[NetBed, Berth, Berth]) -> None:
    """A worker promoted, then demoted: the other manager moves the state to a server of its own
    (JetStream never restarts a cluster of one), keeps every task, takes writes, and survives its
    swarm server's restart; the demoted node runs on as a worker."""
    bed, manager, worker = hosts
    manager_addr = f"{bed.addr(0)}:2377"
    manager.docker_ok("swarm", "init", "--advertise-addr", bed.addr(0))
    try:
        token = manager.docker_ok("swarm", "join-token", "-q", "worker").strip()
        worker.docker_ok("swarm", "join", "--token", token, manager_addr, timeout=60)
        worker_id = worker.docker_ok("info", "--format", "{{.Swarm.NodeID}}").strip()
        wait_until(lambda: node_states(manager).get(worker_id) == "Ready Active", 15, "the worker Ready")
        manager.docker_ok(
            "service", "create", "--name", "web", "--replicas", "4", "--stop-grace-period", "1s",
            "busybox:latest", "sleep", "1000", timeout=120,
        )  # fmt: skip
        manager.docker_ok("node", "promote", worker_id)
        wait_until(lambda: worker.docker_ok("info", "--format", "{{.Swarm.ControlAvailable}}").strip() == "true",
                   60, "the promoted node serving as a manager")  # fmt: skip
        wait_until(lambda: worker.docker("service", "ls", "--format", "{{.Name}}").stdout.split() == ["web"],
                   30, "the state read on the second manager")  # fmt: skip
        # Autolock across managers: each wraps its own store key with the swarm's unlock key.
        def wrapped_by(b: Berth) -> str | None:
            return json.loads((b.data_root / "nats" / "swarm-store-key.json").read_text()).get("kek")

        manager.docker_ok("swarm", "update", "--autolock=true")
        assert worker.docker_ok("swarm", "unlock-key", "-q") == manager.docker_ok("swarm", "unlock-key", "-q")
        wait_until(lambda: wrapped_by(manager) is not None and wrapped_by(manager) == wrapped_by(worker), 15,
                   "both managers' store keys wrapped by the unlock key")  # fmt: skip
        manager.docker_ok("swarm", "update", "--autolock=false")
        wait_until(lambda: wrapped_by(manager) is None and wrapped_by(worker) is None, 15, "both in the clear again")
        before = (running(manager), running(worker))

        manager.docker_ok("node", "demote", worker_id)
        wait_until(lambda: worker.docker_ok("info", "--format", "{{.Swarm.ControlAvailable}}").strip() == "false",
                   60, "the demoted node a worker")  # fmt: skip
        wait_until(lambda: node_states(manager).get(worker_id) == "Ready Active", 30, "the demoted node Ready")
        assert manager.docker_ok("node", "inspect", worker_id, "--format", "{{.Spec.Role}}").strip() == "worker"
        config = manager.data_root / "nats" / "swarm-server.conf"
        # A server of its own, not a cluster of one; the demoted node's server goes after it.
        wait_until(lambda: "cluster {" not in config.read_text(), 30, "the manager's server alone")
        wait_until(lambda: not (worker.data_root / "nats" / "swarm-server.conf").exists()
                   or "server" not in json.loads((worker.data_root / "nats" / "swarm.json").read_text()),
                   30, "the demoted node's server gone")  # fmt: skip
        assert not (worker.data_root / "nats" / "swarm-store-key.json").exists()  # its store's key with it
        assert (running(manager), running(worker)) == before  # no task was moved or restarted
        manager.docker_ok("service", "scale", "web=6", timeout=120)
        wait_until(lambda: len(running(manager)) + len(running(worker)) == 6, 30, "the scale placed")

        # Its swarm server killed: restarted by the supervisor, alone, with the state.
        subprocess.run(["pkill", "-9", "-f", f"nats-server -c {config}"], check=True, timeout=30)
        wait_until(lambda: manager.docker("service", "ls", "--format", "{{.Name}} {{.Replicas}}").stdout.split()
                   == ["web", "6/6"], 60, "the state read again after the restart")  # fmt: skip
        assert worker.docker_ok("info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "active"
    finally:
        worker.docker("swarm", "leave", "--force")
        manager.docker("swarm", "leave", "--force")
    assert manager.docker_ok("info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "inactive"
