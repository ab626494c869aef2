"""Swarm mode on one node with the real docker CLI: init, nodes, a replicated service's life
(create, scale, update, rollback, a task that dies, removal), leave; what berth does not do yet
is refused by name. The wording is dockerd 20.10's where it has one."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import docker
import pytest
from berth_testsupport import registry as tr
from harness import Berth, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

TASK_NAME = re.compile(r"^web\.(\d+)\.[0-9a-z]{25}$")


def _tasks(berth: Berth) -> dict[str, dict[str, str]]:
    """The service's task containers, by name: their state and environment."""
    out = {}
    names = berth.docker_ok("ps", "-a", "--filter", "label=com.docker.swarm.service.name=web",
                            "--format", "{{.Names}}").split()  # fmt: skip
    for name in names:
        res = berth.docker("inspect", name)
        if res.returncode != 0:  # removed since `ps` (an old task leaving the history)
            continue
        [info] = json.loads(res.stdout)
        out[name] = {"status": info["State"]["Status"], "env": " ".join(info["Config"]["Env"] or [])}
    return out


def _running(berth: Berth) -> dict[str, dict[str, str]]:
    return {k: v for k, v in _tasks(berth).items() if v["status"] == "running"}


def test_single_node_swarm_runs_a_replicated_service(berth: Berth, busybox_image: str) -> None:
    assert berth.docker_ok("info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "inactive"
    not_manager = berth.docker("service", "ls")
    assert not_manager.returncode == 1 and "This node is not a swarm manager." in not_manager.stderr

    init = berth.docker_ok("swarm", "init")
    node_id = re.search(r"Swarm initialized: current node \((\w+)\) is now a manager\.", init)
    assert node_id is not None, init
    try:
        info = json.loads(berth.docker_ok("info", "--format", "{{json .Swarm}}"))
        assert (info["LocalNodeState"], info["NodeID"], info["ControlAvailable"]) == ("active", node_id[1], True)
        assert (info["Nodes"], info["Managers"]) == (1, 1)
        again = berth.docker("swarm", "init")
        assert again.returncode == 1 and "This node is already part of a swarm." in again.stderr
        last = berth.docker("node", "demote", node_id[1])
        assert last.returncode == 1 and "attempting to demote the last manager of the swarm" in last.stderr
        wait_until(lambda: berth.docker_ok("node", "ls", "--format", "{{.EngineVersion}}").strip(), 10,
                   "the node's first heartbeat")  # fmt: skip
        nodes = berth.docker_ok(
            "node", "ls", "--format", "{{.ID}} {{.Status}} {{.Availability}} {{.ManagerStatus}} {{.EngineVersion}}"
        )
        version = berth.docker_ok("version", "--format", "{{.Server.Version}}").strip()
        assert nodes.split() == [node_id[1], "Ready", "Active", "Leader", version]
        # What the CLI leaves zero at init takes swarmkit's defaults, as `docker info` shows them.
        assert info["Cluster"]["Spec"]["Raft"]["ElectionTick"] == 10
        token = berth.docker_ok("swarm", "join-token", "-q", "worker").strip()
        assert token.startswith("SWMTKN-1-") and token != berth.docker_ok("swarm", "join-token", "-q", "manager").strip()
        # The swarm's root CA (`docker swarm ca`): the tokens' middle part is its digest, as swarmkit's.
        ca = berth.docker_ok("swarm", "ca").strip() + "\n"
        assert ca.startswith("-----BEGIN CERTIFICATE-----")
        digest = int(hashlib.sha256(ca.encode()).hexdigest(), 16)
        assert int(token.split("-")[2], 36) == digest
        # What berth's CA and store do not do is refused, not stored and ignored (autolock: in a
        # swarm on this host only, test_swarm_autolock.py).
        for refused in (("swarm", "ca", "--rotate", "--detach"), ("swarm", "update", "--autolock=true")):
            res = berth.docker(*refused)
            assert res.returncode == 1, res
            assert "not supported by berth" in res.stderr or "does not rotate" in res.stderr, res.stderr
        assert berth.docker_ok("info", "--format", "{{.Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers}}").strip() == "false"

        # Created and converged: the CLI waits (and verifies) as it does against dockerd.
        berth.docker_ok(
            "service", "create", "--name", "web", "--replicas", "2", "--stop-grace-period", "1s",
            "--restart-delay", "1s", busybox_image, "sleep", "1000", timeout=120,
        )  # fmt: skip
        assert berth.docker_ok("service", "ls", "--format", "{{.Name}} {{.Mode}} {{.Replicas}}").split() == [
            "web", "replicated", "2/2",
        ]  # fmt: skip
        running = _running(berth)
        assert sorted(TASK_NAME.match(n)[1] for n in running) == ["1", "2"]  # type: ignore[index]
        [one] = json.loads(berth.docker_ok("inspect", next(iter(running))))
        labels = one["Config"]["Labels"]
        assert labels["com.docker.swarm.service.name"] == "web"
        assert labels["com.docker.swarm.node.id"] == node_id[1]
        assert labels["com.docker.swarm.task.id"] in one["Name"]

        berth.docker_ok("service", "scale", "web=3", timeout=120)
        assert len(_running(berth)) == 3

        # A rolling update (stop-first, one at a time) and a rollback.
        berth.docker_ok("service", "update", "--env-add", "A=1", "web", timeout=120)
        wait_until(lambda: len(_running(berth)) == 3 and all("A=1" in t["env"] for t in _running(berth).values()),
                   60, "the tasks updated")  # fmt: skip
        berth.docker_ok("service", "rollback", "web", timeout=120)
        wait_until(lambda: len(_running(berth)) == 3 and not any("A=1" in t["env"] for t in _running(berth).values()),
                   60, "the tasks rolled back")  # fmt: skip
        spec = json.loads(berth.docker_ok("service", "inspect", "web"))[0]
        assert spec["UpdateStatus"]["State"] == "rollback_completed"

        # A task whose container dies is replaced after its restart delay.
        victim = next(iter(_running(berth)))
        berth.docker_ok("kill", victim)
        wait_until(lambda: victim not in _running(berth) and len(_running(berth)) == 3, 60, "a replacement task")
        states = berth.docker_ok("service", "ps", "web", "--format", "{{.Name}} {{.DesiredState}} {{.CurrentState}}")
        assert re.search(r"web\.\d+ Shutdown Failed", states), states

        # What berth's swarm mode does not do yet is refused, never stored and ignored.
        published = berth.docker("service", "create", "--name", "p", "--publish", "8080:80", busybox_image, "true")
        assert published.returncode == 1 and "ingress mode (the routing mesh) are not supported" in published.stderr
        assert "p" not in berth.docker_ok("service", "ls", "--format", "{{.Name}}").split()

        berth.docker_ok("service", "rm", "web")
        wait_until(lambda: not _tasks(berth), 60, "the service's containers removed")
        missing = berth.docker("service", "inspect", "web")
        assert missing.returncode == 1 and "no such service: web" in missing.stderr.lower()
    finally:
        leave = berth.docker("swarm", "leave")
        if "Use `--force` to ignore this message." in leave.stderr:
            berth.docker_ok("swarm", "leave", "--force")
    assert berth.docker_ok("info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "inactive"
    gone = berth.docker("node", "ls")
    assert gone.returncode == 1 and "This node is not a swarm manager." in gone.stderr


def test_service_logs_name_each_task_and_follow_new_ones(berth: Berth, busybox_image: str) -> None:
    """`docker service logs`: every task's lines, prefixed as the CLI prefixes them from the
    details dockerd sends (`name.slot.task@node |`), its options, a task's own log, --follow
    taking in the tasks a scale adds."""
    berth.docker_ok("swarm", "init")
    try:
        berth.docker_ok(
            "service", "create", "--name", "talk", "--replicas", "2", "--stop-grace-period", "1s", busybox_image,
            "sh", "-c", "echo out $(hostname); echo err >&2; sleep 1000", timeout=120,
        )  # fmt: skip
        hostname = berth.docker_ok("node", "inspect", "self", "--format", "{{.Description.Hostname}}").strip()
        wait_until(lambda: len(berth.docker_ok("service", "logs", "talk").splitlines()) == 2, 20, "both tasks' lines")
        logs = berth.docker("service", "logs", "talk")
        containers = set(berth.docker_ok("ps", "--filter", "label=com.docker.swarm.service.name=talk",
                                         "--format", "{{.ID}}").split())  # fmt: skip
        line = re.compile(rf"^talk\.([12])\.[0-9a-z]{{12}}@{re.escape(hostname)} +\| (.*)$")
        outs = sorted(line.match(x).groups() for x in logs.stdout.splitlines())  # type: ignore[union-attr]
        assert [slot for slot, _ in outs] == ["1", "2"] and {text.split()[1] for _, text in outs} == containers
        assert sorted(line.match(x)[2] for x in logs.stderr.splitlines()) == ["err", "err"]  # type: ignore[index]
        # --tail is per task: each one's last line (its "err").
        stamped = berth.docker("service", "logs", "--timestamps", "--no-task-ids", "--tail", "1", "talk")
        assert stamped.stdout == "", stamped.stdout
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z talk\.[12]@\S+ +\| err", x)
                   for x in stamped.stderr.splitlines()) and len(stamped.stderr.splitlines()) == 2, stamped.stderr  # fmt: skip
        negative = berth.docker("service", "logs", "--tail", "-1", "talk")
        assert negative.returncode == 1 and "negative tail values not supported" in negative.stderr
        task = berth.docker_ok("service", "ps", "-q", "talk").split()[0]
        raw = berth.docker("service", "logs", "--raw", task)
        assert raw.stdout.startswith("out ") and raw.stderr == "err\n"
        missing = berth.docker("service", "logs", "nope")
        assert missing.returncode == 1 and "nope" in missing.stderr

        follow = subprocess.Popen(["docker", "service", "logs", "-f", "--no-task-ids", "talk"], env=berth.client_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        try:
            berth.docker_ok("service", "scale", "talk=3", timeout=120)
            wait_until(lambda: berth.docker_ok("service", "logs", "talk").count("talk.3.") == 1, 20, "the new task")
            time.sleep(2)  # the follower asks for new tasks every second
        finally:
            follow.terminate()
            followed, _ = follow.communicate(timeout=10)
        assert sorted(x.split("@")[0] for x in followed.splitlines()) == ["talk.1", "talk.2", "talk.3"]
    finally:
        berth.docker("swarm", "leave", "--force")


def test_a_services_mounts_reach_its_tasks(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    """--mount as `docker run --mount`: a bind, a named volume and a tmpfs in every task; a bind
    source the node lacks rejects the task with the engine's words, as dockerd's does."""
    (tmp_path / "hello").write_text("from the host\n")
    berth.docker_ok("swarm", "init")
    try:
        berth.docker_ok(
            "service", "create", "--name", "m", "--mount", f"type=bind,source={tmp_path},target=/host,readonly",
            "--mount", "type=volume,source=svcdata,target=/data", "--mount", "type=tmpfs,target=/scratch",
            busybox_image, "sh", "-c", "cat /host/hello > /data/copied; sleep 1000", timeout=120,
        )  # fmt: skip
        [name] = berth.docker_ok("ps", "--filter", "label=com.docker.swarm.service.name=m", "--format", "{{.Names}}").split()
        [info] = json.loads(berth.docker_ok("inspect", name))
        mounts = {m["Destination"]: (m["Type"], m["RW"]) for m in info["Mounts"]}
        assert mounts == {"/host": ("bind", False), "/data": ("volume", True), "/scratch": ("tmpfs", True)}
        wait_until(lambda: berth.docker("exec", name, "cat", "/data/copied").stdout == "from the host\n", 30,
                   "the task's copy in its volume")  # fmt: skip
        missing = berth.docker(
            "service", "create", "--name", "nobind", "--detach", "--mount", "type=bind,source=/nonexistent/x,target=/x",
            busybox_image, "true",
        )  # fmt: skip
        assert missing.returncode == 0, missing.stderr
        wait_until(lambda: "bind source path does not exist" in berth.docker_ok(
            "service", "ps", "nobind", "--no-trunc", "--format", "{{.Error}}"), 30, "the task rejected")  # fmt: skip
    finally:
        berth.docker("swarm", "leave", "--force")
    wait_until(lambda: not berth.docker_ok("ps", "-aq", "--filter", "label=com.docker.swarm.service.name=m").strip(),
               30, "the task containers removed")  # fmt: skip
    berth.docker("volume", "rm", "svcdata")


def test_a_services_container_options_reach_its_tasks(berth: Berth, busybox_image: str) -> None:
    """The CLI's --cap-add/--cap-drop, --host, --dns*, --sysctl, --ulimit, --group,
    --log-driver and --replicas-max-per-node: each task container has them as moby's container
    adapter makes them, and a task over the per-node limit stays pending in swarmkit's words."""
    berth.docker_ok("swarm", "init")
    try:
        berth.docker_ok(
            "service", "create", "--name", "opts", "--replicas", "2", "--replicas-max-per-node", "1",
            "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN", "--host", "db.internal:10.9.8.7",
            "--dns", "10.0.0.53", "--dns-search", "example.org", "--dns-option", "ndots:2",
            "--sysctl", "net.ipv4.ip_local_port_range=20000 30000", "--ulimit", "nofile=512:1024",
            "--group", "4242", "--log-driver", "json-file", "--log-opt", "max-size=1m",
            "--placement-pref", "spread=node.labels.zone", "--detach",
            busybox_image, "sleep", "1000", timeout=120,
        )  # fmt: skip
        wait_until(lambda: len(_running_of(berth, "opts")) == 1, 60, "one task running")
        [name] = _running_of(berth, "opts")
        [info] = json.loads(berth.docker_ok("inspect", name))
        hc = info["HostConfig"]
        assert (hc["CapAdd"], hc["CapDrop"], hc["GroupAdd"]) == (["CAP_NET_ADMIN"], ["CAP_CHOWN"], ["4242"])  # the CLI adds CAP_
        assert hc["ExtraHosts"] == ["db.internal:10.9.8.7"]
        assert (hc["Dns"], hc["DnsSearch"], hc["DnsOptions"]) == (["10.0.0.53"], ["example.org"], ["ndots:2"])
        assert hc["Sysctls"] == {"net.ipv4.ip_local_port_range": "20000 30000"}
        assert hc["Ulimits"] == [{"Name": "nofile", "Soft": 512, "Hard": 1024}]
        assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
        inside = berth.docker_ok("exec", name, "sh", "-c", "cat /etc/hosts /etc/resolv.conf; ulimit -n; id -G")
        assert "10.9.8.7\tdb.internal" in inside and "nameserver 10.0.0.53" in inside, inside
        assert "search example.org" in inside and "options ndots:2" in inside and "\n512\n0 4242\n" in inside, inside
        spec = json.loads(berth.docker_ok("service", "inspect", "opts", "--format", "{{json .Spec.TaskTemplate}}"))
        assert spec["Placement"]["MaxReplicas"] == 1
        assert spec["Placement"]["Preferences"] == [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}]
        assert spec["ContainerSpec"]["Hosts"] == ["10.9.8.7 db.internal"]  # swarmkit's /etc/hosts form
        wait_until(lambda: "no suitable node (max replicas per node limit exceed)" in berth.docker_ok(
            "service", "ps", "opts", "--no-trunc", "--filter", "desired-state=running", "--format", "{{.Error}}"), 30,
            "the second task pending, in swarmkit's words")  # fmt: skip
    finally:
        berth.docker("swarm", "leave", "--force")


def test_jobs_run_to_completion_and_again_on_update(berth: Berth, busybox_image: str) -> None:
    """`--mode replicated-job` and `global-job`: the CLI waits for "job complete" as with
    dockerd; an update runs the job again (its next iteration)."""
    berth.docker_ok("swarm", "init")
    try:
        out = berth.docker_ok("service", "create", "--name", "job", "--mode", "replicated-job", "--replicas", "3",
                              "--max-concurrent", "2", busybox_image, "sh", "-c", "echo ran", timeout=120)  # fmt: skip
        assert "job complete" in out, out

        def states(service: str) -> list[str]:
            return berth.docker_ok("service", "ps", service, "--format", "{{.CurrentState}}").splitlines()

        assert [s.split()[0] for s in states("job")] == ["Complete"] * 3
        [status] = json.loads(berth.docker_ok("service", "inspect", "job", "--format", "{{json .JobStatus}}"))["JobIteration"].values()
        berth.docker_ok("service", "update", "--detach", "--env-add", "AGAIN=1", "job", timeout=60)
        wait_until(lambda: [s.split()[0] for s in states("job")].count("Complete") == 6, 60, "the job's second run")
        again = json.loads(berth.docker_ok("service", "inspect", "job", "--format", "{{json .JobStatus}}"))
        assert again["JobIteration"]["Index"] > status
        wait_until(lambda: berth.docker_ok("service", "ls", "--filter", "mode=replicated-job", "--format",
                                           "{{.Name}} {{.Mode}} {{.Replicas}}").strip() == "job replicated job 0/0 (3/3 completed)",
                   30, "service ls counting this run's completions")  # fmt: skip
        out = berth.docker_ok("service", "create", "--name", "gjob", "--mode", "global-job", busybox_image, "true",
                              timeout=120)  # fmt: skip
        assert "job complete" in out and [s.split()[0] for s in states("gjob")] == ["Complete"], out
    finally:
        berth.docker("swarm", "leave", "--force")


def test_secrets_and_configs_are_files_in_the_tasks(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    """`docker secret create`/`config create`, `service create --secret --config`: the files
    in each task (a secret under /run/secrets, read-only, its owner and mode), a secret's data
    never shown, removal refused while a service uses it, the node's copy gone with the task."""
    berth.docker_ok("swarm", "init")
    try:
        secret_id = berth.docker_ok("secret", "create", "--label", "team=db", "db-pass", "-", input="hunter2").strip()
        (tmp_path / "app.conf").write_text("port = 8080\n")
        berth.docker_ok("config", "create", "app.conf", str(tmp_path / "app.conf"))
        [shown] = json.loads(berth.docker_ok("secret", "inspect", "db-pass"))
        assert shown["ID"] == secret_id and "Data" not in shown["Spec"] and shown["Spec"]["Labels"] == {"team": "db"}
        [conf] = json.loads(berth.docker_ok("config", "inspect", "app.conf"))
        assert conf["Spec"]["Data"] == "cG9ydCA9IDgwODAK"  # base64 of the file: a config's data is shown
        assert berth.docker_ok("secret", "ls", "--format", "{{.Name}}").split() == ["db-pass"]
        berth.docker_ok(
            "service", "create", "--name", "withdata", "--detach",
            "--secret", "source=db-pass,target=db,uid=1000,gid=1000,mode=0400",
            "--config", "source=app.conf,target=/etc/app.conf", busybox_image, "sleep", "1000", timeout=120,
        )  # fmt: skip
        wait_until(lambda: len(_running_of(berth, "withdata")) == 1, 60, "the task running")
        [name] = _running_of(berth, "withdata")
        inside = berth.docker_ok("exec", name, "sh", "-c",
                                 "cat /run/secrets/db; echo; cat /etc/app.conf; stat -c '%u %g %a' /run/secrets/db; "
                                 "echo x > /run/secrets/db || echo read-only")  # fmt: skip
        assert inside.splitlines() == ["hunter2", "port = 8080", "1000 1000 400", "read-only"], inside
        # As dockerd, the files are not among the container's Mounts (nor its HostConfig's).
        [shown_task] = json.loads(berth.docker_ok("inspect", name))
        assert shown_task["Mounts"] == [] and not shown_task["HostConfig"].get("Mounts"), shown_task["Mounts"]
        # Removed behind the orchestrator's back, the container is made again, with its files:
        # their data, left out of the answers while the node held them, is sent again.
        first_id = berth.docker_ok("inspect", "-f", "{{.Id}}", name).strip()
        berth.docker_ok("rm", "-f", name)
        wait_until(lambda: _running_of(berth, "withdata") == [name], 60, "the task's container made again")
        assert berth.docker_ok("inspect", "-f", "{{.Id}}", name).strip() != first_id
        assert berth.docker_ok("exec", name, "cat", "/run/secrets/db", "/etc/app.conf") == "hunter2port = 8080\n"
        refused = berth.docker("secret", "rm", "db-pass")
        assert refused.returncode == 1 and "is in use by the following service: withdata" in refused.stderr
        kept = berth.exec_root / "engine" / "swarm-files"
        assert any(kept.iterdir())
        berth.docker_ok("service", "rm", "withdata")
        wait_until(lambda: not _running_of(berth, "withdata") and not any(kept.iterdir()), 30,
                   "the task's container and files gone")  # fmt: skip
        berth.docker_ok("secret", "rm", "db-pass")
        berth.docker_ok("config", "rm", "app.conf")
        assert berth.docker_ok("secret", "ls", "-q").strip() == ""
    finally:
        berth.docker("swarm", "leave", "--force")


def test_templates_expand_in_a_tasks_hostname_env_and_config(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    """swarmkit's Go templates: `--hostname "{{.Node.Hostname}}-..."`, `--env`, a config made
    with `--template-driver golang` reading the task, its env and a secret; a template that
    does not parse is refused at create, one that fails at run time fails its task."""
    berth.docker_ok("swarm", "init")
    try:
        berth.docker_ok("secret", "create", "pw", "-", input="hunter2")
        (tmp_path / "app.tmpl").write_text('svc={{.Service.Name}} slot={{.Task.Slot}} mode={{env "MODE"}} pw={{secret "pw"}}\n')
        berth.docker_ok("config", "create", "--template-driver", "golang", "app.tmpl", str(tmp_path / "app.tmpl"))
        [conf] = json.loads(berth.docker_ok("config", "inspect", "app.tmpl"))
        assert conf["Spec"]["Templating"] == {"Name": "golang"}
        refused = berth.docker("service", "create", "--detach", "--hostname", "{{.Node.Hostname", busybox_image, "true")
        assert refused.returncode == 1, refused
        assert "expanding hostname failed: template: expansion:1: unclosed action" in refused.stderr
        berth.docker_ok(
            "service", "create", "--name", "tpl", "--detach", "--hostname", "{{.Node.Hostname}}-{{.Service.Name}}",
            "--env", "MODE=prod", "--env", "WHO={{.Task.Name}}", "--secret", "pw",
            "--config", "source=app.tmpl,target=/app.conf", busybox_image, "sleep", "1000", timeout=120,
        )  # fmt: skip
        wait_until(lambda: len(_running_of(berth, "tpl")) == 1, 60, "the task running")
        [name] = _running_of(berth, "tpl")
        inside = berth.docker_ok("exec", name, "sh", "-c", 'hostname; echo "$WHO"; cat /app.conf').splitlines()
        assert inside == [f"{socket.gethostname()}-tpl", name, "svc=tpl slot=1 mode=prod pw=hunter2"], inside
        (tmp_path / "bad.tmpl").write_text('{{secret "nope"}}')
        berth.docker_ok("config", "create", "--template-driver", "golang", "bad.tmpl", str(tmp_path / "bad.tmpl"))
        berth.docker_ok("service", "create", "--name", "tbad", "--detach", "--restart-condition", "none",
                        "--config", "source=bad.tmpl,target=/b", busybox_image, "true")  # fmt: skip

        def failed() -> str:
            return berth.docker_ok("service", "ps", "--no-trunc", "--format", "{{.CurrentState}} {{.Error}}", "tbad")

        wait_until(lambda: failed().startswith("Failed"), 30, "the task failed")
        assert "failed to expand templated config" in failed() and "secret target nope not found" in failed()
        assert not _running_of(berth, "tbad")
    finally:
        berth.docker("swarm", "leave", "--force")


def _running_of(berth: Berth, service: str) -> list[str]:
    return berth.docker_ok("ps", "--filter", f"label=com.docker.swarm.service.name={service}", "--format",
                           "{{.Names}}").split()  # fmt: skip


def test_tasks_run_once_healthy_and_an_unhealthy_update_rolls_back(berth: Berth, busybox_image: str) -> None:
    """A healthcheck in the service (swarmkit's health-aware tasks): a task is `running` once
    healthy; an unhealthy one fails and is replaced; an update whose tasks never get healthy
    takes the failure action (rollback)."""
    berth.docker_ok("swarm", "init")
    health = ["--health-cmd", "test -f /tmp/ok", "--health-interval", "1s", "--health-retries", "1",
              "--health-start-period", "5s"]  # fmt: skip
    try:
        berth.docker_ok("service", "create", "--name", "h", *health, "--stop-grace-period", "1s",
                        busybox_image, "sh", "-c", "sleep 2; touch /tmp/ok; exec sleep 1000", timeout=120)  # fmt: skip
        [name] = berth.docker_ok("ps", "--filter", "label=com.docker.swarm.service.name=h", "--format", "{{.Names}}").split()
        assert berth.docker_ok("inspect", "--format", "{{.State.Health.Status}}", name).strip() == "healthy"

        never = ("never", "--detach", "--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1")
        berth.docker_ok("service", "create", "--name", *never, busybox_image, "sleep", "1000")
        wait_until(lambda: "task: container is unhealthy" in berth.docker_ok(
            "service", "ps", "never", "--no-trunc", "--format", "{{.Error}}"), 60, "an unhealthy task failed")  # fmt: skip
        assert berth.docker_ok("service", "ls", "--filter", "name=never", "--format", "{{.Replicas}}").strip() == "0/1"

        berth.docker_ok("service", "update", "--detach", "--update-failure-action", "rollback",
                        "--args", "sleep 1000", "h")  # fmt: skip
        wait_until(lambda: json.loads(berth.docker_ok("service", "inspect", "h"))[0].get("UpdateStatus", {}).get("State")
                   == "rollback_completed", 90, "the unhealthy update rolled back")  # fmt: skip
        [spec] = json.loads(berth.docker_ok("service", "inspect", "h"))
        assert spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"][-1] == "sleep 2; touch /tmp/ok; exec sleep 1000"
    finally:
        berth.docker("swarm", "leave", "--force")


def test_leaving_removes_the_task_containers(berth: Berth, busybox_image: str) -> None:
    berth.docker_ok("swarm", "init")
    try:
        berth.docker_ok("service", "create", "--detach", "--name", "web", "--mode", "global",
                        "--stop-grace-period", "1s", busybox_image, "sleep", "1000")  # fmt: skip
        wait_until(lambda: len(_running(berth)) == 1, 60, "the global service's task")
        [name] = _running(berth)
        assert re.fullmatch(r"web\.[0-9a-z]{25}\.[0-9a-z]{25}", name), name  # <service>.<node id>.<task id>
    finally:
        berth.docker_ok("swarm", "leave", "--force")
    wait_until(lambda: not _tasks(berth), 60, "the task containers removed after leaving")


def test_docker_py_swarm_nodes_and_services(client: docker.DockerClient, busybox_image: str) -> None:
    """docker-py's high-level swarm API, as its own integration tests drive dockerd's one-node
    swarm (its ServiceMode sends `replicated` in lower case, which Go's decoding accepts)."""
    node_id = client.swarm.init(advertise_addr="127.0.0.1", listen_addr="0.0.0.0:2377")
    try:
        client.swarm.reload()
        assert client.swarm.attrs["JoinTokens"]["Worker"].startswith("SWMTKN-1-")
        assert client.swarm.update(rotate_worker_token=True)
        [node] = client.nodes.list()
        assert node.id == node_id and node.attrs["Spec"]["Role"] == "manager"
        assert node.update({"Availability": "active", "Role": "manager", "Labels": {"zone": "a"}})
        node.reload()
        assert node.attrs["Spec"]["Labels"] == {"zone": "a"}
        service = client.services.create(
            busybox_image, ["sh", "-c", "echo hi $X; exec sleep 1000"], name="web", env=["X=1"],
            mode=docker.types.ServiceMode("replicated", 2), stop_grace_period=1_000_000_000,
            constraints=["node.labels.zone==a"],
            resources=docker.types.Resources(mem_limit=64 * 1024 * 1024),
        )  # fmt: skip
        wait_until(lambda: sorted(t["Slot"] for t in service.tasks(filters={"desired-state": "running"})
                                  if t["Status"]["State"] == "running") == [1, 2], 60, "two running tasks")  # fmt: skip
        # Its logs (no details asked: the lines as the tasks wrote them).
        out = service.logs(stdout=True, stderr=True)
        assert (out if isinstance(out, bytes) else b"".join(out)) == b"hi 1\nhi 1\n"
        service.scale(3)  # dockerd answers {} (no warnings), as berth
        wait_until(lambda: len([t for t in service.tasks() if t["Status"]["State"] == "running"]) == 3, 60,
                   "three running tasks")  # fmt: skip
        service.reload()
        assert service.attrs["Spec"]["Mode"] == {"Replicated": {"Replicas": 3}}
        # By the service's id: an earlier test's `web` may still be leaving.
        mine = {"label": f"com.docker.swarm.service.id={service.id}"}
        [one] = client.containers.list(filters=mine)[:1]
        assert one.attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024
        service.remove()
        # sparse: no inspect of each listed container, which may be removed in between (404)
        wait_until(lambda: not client.containers.list(all=True, filters=mine, sparse=True), 60,
                   "the service's containers removed")  # fmt: skip
    finally:
        client.swarm.leave(force=True)
    assert client.info()["Swarm"]["LocalNodeState"] == "inactive"


@pytest.mark.skipif(not shutil.which(tr.REGISTRY_BINARY), reason="docker-registry not installed (make install)")
def test_a_task_pulls_its_image_and_a_missing_one_is_rejected(berth: Berth, busybox_image: str) -> None:
    with tr.registry() as url:
        tr.seed(url)
        ref = f"{url.removeprefix('http://')}/library/multilayer:1"
        berth.docker("rmi", "-f", ref)
        berth.docker_ok("swarm", "init")
        try:
            # The CLI pins the image's digest (GET /distribution), the node pulls it to run the task.
            berth.docker_ok("service", "create", "--name", "web", "--stop-grace-period", "1s", ref,
                            "sleep", "1000", timeout=180)  # fmt: skip
            spec = json.loads(berth.docker_ok("service", "inspect", "web"))[0]["Spec"]
            assert "@sha256:" in spec["TaskTemplate"]["ContainerSpec"]["Image"]
            assert len(_running(berth)) == 1
            # Pulled by digest, no tag: `docker images REPO` lists it (tag <none>), as dockerd does.
            listed = berth.docker_ok("images", "--digests", "--format", "{{.Tag}} {{.Digest}}", ref.rsplit(":", 1)[0])
            assert listed.split()[0] == "<none>" and listed.split()[1].startswith("sha256:"), listed
            berth.docker_ok("service", "create", "--detach", "--name", "nope", "--restart-condition", "none",
                            f"{url.removeprefix('http://')}/library/nope:1", "true")  # fmt: skip
            wait_until(lambda: "Rejected" in berth.docker_ok("service", "ps", "nope", "--format", "{{.CurrentState}}"),
                       60, "the task rejected")  # fmt: skip
            error = berth.docker_ok("service", "ps", "--no-trunc", "nope", "--format", "{{.Error}}")
            assert "nope" in error, error
        finally:
            berth.docker_ok("swarm", "leave", "--force")
            wait_until(lambda: not _tasks(berth), 60, "the task containers removed")
            # By id: the task pulled it by digest (no tag), and other tests pull the same image.
            ids = berth.docker("images", "-q", ref.rsplit(":", 1)[0]).stdout.split()
            berth.docker("rmi", "-f", *set(ids), ref)


@pytest.mark.skipif(not shutil.which(tr.REGISTRY_BINARY), reason="docker-registry not installed (make install)")
def test_with_registry_auth_a_task_pulls_a_private_image(berth: Berth, busybox_image: str) -> None:
    """`--with-registry-auth`: the CLI's credentials for the image's registry go with the
    service to the node that pulls; never shown, never logged. Without them the registry says no."""
    user, password = "alice", "pw-5b0e1c3a-not-logged"
    with tr.registry({user: password}) as url:
        host = url.removeprefix("http://")
        ref = f"{host}/alice/private:1"
        login = berth.docker("login", "-u", user, "--password-stdin", host, input=password + "\n")
        assert login.returncode == 0, login.stderr
        berth.docker_ok("swarm", "init")
        try:
            berth.docker_ok("tag", busybox_image, ref)
            berth.docker_ok("push", ref, timeout=120)
            berth.docker_ok("rmi", ref)  # the task's node must pull it
            berth.docker_ok("service", "create", "--detach", "--name", "anon", "--restart-condition", "none",
                            ref, "sleep", "1000")  # fmt: skip
            wait_until(lambda: "Rejected" in berth.docker_ok("service", "ps", "anon", "--format", "{{.CurrentState}}"),
                       60, "the anonymous pull rejected")  # fmt: skip
            error = berth.docker_ok("service", "ps", "--no-trunc", "anon", "--format", "{{.Error}}")
            assert "authentication required" in error or "denied" in error, error
            berth.docker_ok("service", "create", "--name", "private", "--with-registry-auth",
                            "--stop-grace-period", "1s", ref, "sleep", "1000", timeout=180)  # fmt: skip
            running = berth.docker_ok("ps", "--filter", "label=com.docker.swarm.service.name=private", "-q")
            assert len(running.split()) == 1
            shown = berth.docker_ok("service", "inspect", "private") + berth.docker_ok(
                "inspect", "--type", "task", *berth.docker_ok("service", "ps", "-q", "private").split()
            )
            assert "PullOptions" not in shown and password not in shown
            assert password not in (berth.exec_root / "berth.log").read_text(errors="replace")
        finally:
            berth.docker_ok("swarm", "leave", "--force")
            wait_until(lambda: not berth.docker_ok("ps", "-aq", "--filter", "label=com.docker.swarm.task.id").strip(),
                       60, "the task containers removed")  # fmt: skip
            berth.docker("logout", host)
            ids = berth.docker("images", "-q", ref.rsplit(":", 1)[0]).stdout.split()
            berth.docker("rmi", "-f", *set(ids), ref)


def test_a_port_published_in_host_mode_reaches_the_task(berth: Berth, busybox_image: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    berth.docker_ok("swarm", "init")
    try:
        berth.docker_ok(
            "service", "create", "--name", "web", "--publish", f"mode=host,published={port},target=80",
            "--stop-grace-period", "1s", busybox_image, "sh", "-c",
            "mkdir /www && echo served-by-task > /www/index.html && httpd -f -p 80 -h /www", timeout=120,
        )  # fmt: skip

        def fetch() -> str | None:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
            except OSError:
                return None

        assert wait_until(fetch, 30, "the published port answering") == "served-by-task\n"
        [task] = json.loads(berth.docker_ok("inspect", berth.docker_ok("service", "ps", "-q", "web").split()[0]))
        assert task["Status"]["PortStatus"]["Ports"] == [
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": port, "PublishMode": "host"}
        ]
        # A second replica cannot take the same host port on the only node: it waits.
        berth.docker_ok("service", "scale", "--detach", "web=2")
        wait_until(lambda: "Pending" in berth.docker_ok("service", "ps", "web", "--format", "{{.CurrentState}}"),
                   30, "the second task pending")  # fmt: skip
    finally:
        berth.docker_ok("swarm", "leave", "--force")
    wait_until(lambda: not _tasks(berth), 60, "the task containers removed")


def test_a_service_survives_the_orchestrator_and_nats_dying(berth: Berth, busybox_image: str) -> None:
    """kill -9 the orchestrator, then NATS (JetStream's store holds the swarm's state): the
    tasks keep running untouched, the service is still there, and still reconciled."""
    berth.docker_ok("swarm", "init")
    try:
        berth.docker_ok("service", "create", "--name", "web", "--replicas", "2", "--stop-grace-period", "1s",
                        "--restart-delay", "0s", busybox_image, "sleep", "1000", timeout=120)  # fmt: skip
        before = set(_running(berth))
        orchestrator = berth.service("berth-orchestrator")
        os.kill(orchestrator["pid"], signal.SIGKILL)
        berth.wait_restarted("berth-orchestrator", int(orchestrator["pid"]), timeout=40)
        nats = berth.status()["nats"]
        os.kill(nats["pid"], signal.SIGKILL)
        wait_until(lambda: berth.status()["nats"]["pid"] != nats["pid"] and berth.status()["healthy"], 60,
                   "nats-server restarted and every service healthy again")  # fmt: skip
        assert set(_running(berth)) == before  # the same containers: nothing was replaced
        wait_until(lambda: berth.docker("service", "ls", "--format", "{{.Replicas}}").stdout.strip() == "2/2",
                   30, "the service's state back from JetStream")  # fmt: skip
        victim = next(iter(before))
        berth.docker_ok("kill", victim)
        wait_until(lambda: victim not in _running(berth) and len(_running(berth)) == 2, 60,
                   "a replacement after the restarts")  # fmt: skip
    finally:
        berth.docker_ok("swarm", "leave", "--force")
    wait_until(lambda: not _tasks(berth), 60, "the task containers removed")
