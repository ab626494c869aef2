"""Go templates in a task's spec and in templated configs and secrets, as swarmkit's `template`
package expands them: `--hostname "{{.Node.Hostname}}"`, `--env`, `--mount` source and
target, and a config created with `--template-driver golang`.

The templates are Go's text/template, rendered by gotpl (a pure-Python implementation of it),
with swarmkit's context (Service, Node, Task), its `join` function, and for a config's or
secret's data its `env`, `secret` and `config` functions. Unknown keys are errors
(missingkey=error). A template is checked when its service is created or updated, against
swarmkit's stand-in context, and expanded when the task's assignment is made.
"""

from __future__ import annotations

import copy
import json
import platform
from collections.abc import Callable
from typing import Any

from berth_contracts.errors import InvalidParameter

from berth_orchestrator.records import DataRecord, Document, NodeRecord, ServiceRecord, TaskRecord
from berth_orchestrator.specdoc import container_of, obj

TemplateContext = dict[str, Any]
# An expansion longer than a config may be (swarmkit's MaxConfigSize) fails: a template is
# small, and what it makes is bounded too.
_MAX_OUTPUT = 1000 * 1024


class TemplateFailed(InvalidParameter):
    """A template that does not parse or expand; the message is swarmkit's ("expanding env
    failed: template: expansion:1:3: ...")."""


def context_of(svc: ServiceRecord, task: TaskRecord, task_name: str, node: NodeRecord | None) -> TemplateContext:
    """swarmkit's template.NewContext: the strict set of values a template may read."""
    return {
        "Service": {"ID": svc.id, "Name": str(svc.spec.get("Name") or ""),
                    "Labels": {str(k): str(v) for k, v in (svc.spec.get("Labels") or {}).items()}},
        "Node": {"ID": task.node_id, "Hostname": node.hostname if node is not None else "",
                 "Platform": {"Architecture": platform.machine(), "OS": "linux"}},
        "Task": {"ID": task.id, "Name": task_name, "Slot": str(task.slot) if task.slot else task.node_id},
    }  # fmt: skip


# The values swarmkit's controlapi checks a service's templates against (validateContainerSpec).
STAND_IN: TemplateContext = {
    "Service": {"ID": "serviceid", "Name": "servicename", "Labels": {}},
    "Node": {"ID": "nodeid", "Hostname": "nodeHostname", "Platform": {"Architecture": "architecture", "OS": "os"}},
    "Task": {"ID": "", "Name": "taskname", "Slot": "1"},
}


def expand(text: str, context: TemplateContext, functions: dict[str, Callable[..., str]] | None = None) -> str:
    if "{{" not in text:  # no action: the text is its own expansion (and gotpl is not loaded)
        return text
    import gotpl  # noqa: PLC0415 - ~0.1 s to import, paid only by a spec that has a template

    def join(sep: str, *parts: str) -> str:
        return sep.join(parts)

    try:
        template = gotpl.Template(
            text, name="expansion", missing_key="error", functions={"join": join, **(functions or {})},
            budget=gotpl.ExecutionBudget(max_output_chars=_MAX_OUTPUT, max_iterations=100_000,
                                         max_template_depth=100, max_function_calls=10_000),
        )  # fmt: skip
        return template.render(context)
    except gotpl.TemplateSyntaxError as exc:  # Go's words: "template: expansion:1: unclosed action"
        raise TemplateFailed(f"template: expansion:{exc.line}: {str(exc).split(': ', 1)[-1]}") from None
    except gotpl.TemplateError as exc:
        raise TemplateFailed(str(exc)) from None


def expand_container(container: Document, context: TemplateContext) -> Document:
    """swarmkit's ExpandContainerSpec: Env values, mount sources and targets (and a volume's
    labels and driver options), and the hostname; a copy, or the spec itself if it has none."""
    if not _has_action(container):  # the common case, at every heartbeat: nothing to copy
        return container
    out = copy.deepcopy(container)
    env = []
    for entry in out.get("Env") or []:
        name, sep, value = str(entry).partition("=")
        try:
            env.append(f"{name}={expand(value, context)}" if sep else name)
        except TemplateFailed as exc:
            raise TemplateFailed(f"expanding env failed: expanding env {json.dumps(entry)}: {exc.message}") from None
    if env:
        out["Env"] = env
    for mount in out.get("Mounts") or []:
        if not isinstance(mount, dict):
            continue
        try:
            for key in ("Source", "Target"):
                if isinstance(mount.get(key), str):
                    mount[key] = expand(mount[key], context)
            volume = obj(mount, "VolumeOptions")
            for holder, key in ((volume, "Labels"), (obj(volume, "DriverConfig"), "Options")):
                if isinstance(holder.get(key), dict):
                    holder[key] = {k: expand(str(v), context) for k, v in holder[key].items()}
        except TemplateFailed as exc:
            raise TemplateFailed(f"expanding mounts failed: {exc.message}") from None
    try:
        out["Hostname"] = expand(str(out.get("Hostname") or ""), context)
    except TemplateFailed as exc:
        raise TemplateFailed(f"expanding hostname failed: {exc.message}") from None
    return out


def _has_action(value: object) -> bool:
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, dict):
        return any(_has_action(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_action(v) for v in value)
    return False


def check_template(template: Document) -> None:
    """A service's templates, expanded against swarmkit's stand-in values: a template that
    cannot parse or names an unknown key is refused at `service create/update`."""
    try:
        expand_container(container_of(template), STAND_IN)
    except TemplateFailed as exc:
        raise TemplateFailed(f"rpc error: code = InvalidArgument desc = {exc.message}") from None


def is_templated(record: DataRecord) -> bool:
    return bool(obj(record.spec, "Templating").get("Name"))


def expand_payload(
    record: DataRecord, context: TemplateContext, container: Document, data: dict[str, DataRecord]
) -> bytes:
    """swarmkit's ExpandConfigSpec/ExpandSecretSpec: a templated config's or secret's data,
    which may read the task's env and its other secrets and configs (by their file's target)."""
    if not is_templated(record):
        return record.payload()

    def env(variable: str) -> str:
        for entry in container.get("Env") or []:
            name, sep, value = str(entry).partition("=")
            if sep and name == variable:
                return value
        return ""

    def getter(kind: str) -> Callable[[str], str]:
        def get(target: str) -> str:
            for ref in container.get(f"{kind.capitalize()}s") or []:
                if isinstance(ref, dict) and obj(ref, "File").get("Name") == target:
                    found = data.get(str(ref.get(f"{kind.capitalize()}ID") or ""))
                    if found is not None and found.kind == kind:
                        return found.payload().decode(errors="replace")
            raise ValueError(f"{kind} target {target} not found")

        return get

    text = record.payload().decode(errors="replace")
    try:
        return expand(text, context, {"env": env, "secret": getter("secret"), "config": getter("config")}).encode()
    except TemplateFailed as exc:  # the task fails in dockerd's words
        raise TemplateFailed(
            f"starting container failed: unable to get {record.kind} from {record.kind} store: "
            f"failed to expand templated {record.kind} {record.id}: {exc.message}"
        ) from None
