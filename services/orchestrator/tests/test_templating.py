"""swarmkit's templates: a task's hostname, env and mounts, and a templated config's data,
expanded with the task's Service, Node and Task; checked at service create against swarmkit's
stand-in values."""

from __future__ import annotations

import base64

import pytest
from berth_orchestrator import templating
from berth_orchestrator.dispatcher import assignment
from berth_orchestrator.records import DataRecord, NodeRecord, ServiceRecord, TaskRecord


def _service(container: dict[str, object]) -> ServiceRecord:
    spec = {"Name": "web", "Labels": {"tier": "front"}, "TaskTemplate": {"ContainerSpec": container}}
    return ServiceRecord(id="svc1", created_at="", updated_at="", spec=spec)


def _task(svc: ServiceRecord, slot: int = 2) -> TaskRecord:
    return TaskRecord(id="task9", service_id=svc.id, slot=slot, node_id="node7", template=svc.spec["TaskTemplate"],
                      created_at="", updated_at="", spec_serial=1)  # fmt: skip


def _node() -> NodeRecord:
    return NodeRecord(id="node7", berth_node="n7", hostname="host-7", role="worker", created_at="", updated_at="")


def _data(kind: str, record_id: str, text: str, templated: bool = False) -> DataRecord:
    spec: dict[str, object] = {"Name": record_id, "Data": base64.b64encode(text.encode()).decode()}
    if templated:
        spec["Templating"] = {"Name": "golang"}
    return DataRecord(kind=kind, id=record_id, created_at="", updated_at="", spec=spec)  # type: ignore[arg-type]


def test_a_tasks_hostname_env_and_mounts_are_expanded() -> None:
    svc = _service({
        "Image": "busybox", "Hostname": "{{.Node.Hostname}}-{{.Service.Name}}",
        "Env": ["SLOT={{.Task.Slot}}", "NAME={{.Task.Name}}", "TIER={{index .Service.Labels \"tier\"}}", "BARE",
                "JOINED={{join \"-\" .Service.ID .Node.ID}}"],
        "Mounts": [{"Type": "volume", "Source": "data-{{.Task.Slot}}", "Target": "/data/{{.Service.Name}}",
                    "VolumeOptions": {"Labels": {"of": "{{.Task.ID}}"}}}],
    })  # fmt: skip
    task = _task(svc)
    given = assignment(svc, task, _node())
    assert given.error == "" and given.hostname == "host-7-web"
    assert given.env == ["SLOT=2", "NAME=web.2.task9", "TIER=front", "BARE", "JOINED=svc1-node7"]
    [mount] = given.mounts
    assert (mount["Source"], mount["Target"]) == ("data-2", "/data/web")
    assert mount["VolumeOptions"]["Labels"] == {"of": "task9"}
    assert svc.spec["TaskTemplate"]["ContainerSpec"]["Hostname"] == "{{.Node.Hostname}}-{{.Service.Name}}"  # a copy
    global_task = _task(svc, slot=0)  # a global task's slot is its node's id, as swarmkit's
    assert assignment(svc, global_task, _node()).env[0] == "SLOT=node7"  # type: ignore[index]


def test_a_service_whose_template_cannot_expand_is_refused_in_swarmkits_words() -> None:
    templating.check_template({"ContainerSpec": {"Hostname": "{{.Node.Hostname}}", "Env": ["A={{.Task.Slot}}"]}})
    with pytest.raises(templating.TemplateFailed, match=r"^rpc error: code = InvalidArgument desc = expanding hostname failed: template: expansion:1:\d+: "):
        templating.check_template({"ContainerSpec": {"Hostname": "{{.Node.Nope}}"}})
    with pytest.raises(templating.TemplateFailed, match='expanding env failed: expanding env "A={{.Bad": template: expansion:1: unclosed action'):
        templating.check_template({"ContainerSpec": {"Env": ["A={{.Bad"]}})
    with pytest.raises(templating.TemplateFailed, match="expanding mounts failed"):
        templating.check_template({"ContainerSpec": {"Mounts": [{"Source": "{{ nofunc }}", "Target": "/x"}]}})
    # swarmkit's stand-in service has no labels: reading one by key is refused at create, as there
    with pytest.raises(templating.TemplateFailed):
        templating.check_template({"ContainerSpec": {"Hostname": "{{.Service.Labels.tier}}"}})


def test_a_templated_configs_data_reads_the_task_its_env_and_its_other_files() -> None:
    secret = _data("secret", "s1", "hunter2")
    config = _data("config", "c1", "host={{.Node.Hostname}} env={{env \"MODE\"}} pw={{secret \"db\"}}\n", True)
    plain = _data("config", "c2", "{{.Node.Hostname}} stays")
    svc = _service({
        "Image": "busybox", "Env": ["MODE=prod"],
        "Secrets": [{"SecretID": "s1", "SecretName": "s1", "File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 0o400}}],
        "Configs": [{"ConfigID": "c1", "ConfigName": "c1", "File": {"Name": "/app.conf", "UID": "0", "GID": "0", "Mode": 0o444}},
                    {"ConfigID": "c2", "ConfigName": "c2", "File": {"Name": "/plain", "UID": "0", "GID": "0", "Mode": 0o444}}],
    })  # fmt: skip
    data = {"s1": secret, "c1": config, "c2": plain}
    files = {f.target: f.data for f in assignment(svc, _task(svc), _node(), data).files}
    assert files == {"/run/secrets/db": b"hunter2", "/app.conf": b"host=host-7 env=prod pw=hunter2\n",
                     "/plain": b"{{.Node.Hostname}} stays"}  # fmt: skip
    broken = _data("config", "c1", "{{secret \"nope\"}}", True)
    failed = assignment(svc, _task(svc), _node(), {**data, "c1": broken})
    assert failed.error.startswith("starting container failed: unable to get config from config store: "
                                   "failed to expand templated config c1: template: expansion:1:")
    assert "secret target nope not found" in failed.error and failed.files == []  # the node fails the task
