"""What each instruction does to a stage's image config, without running anything.

moby's dispatchers (builder/dockerfile/dispatchers.go) in two halves: metadata instructions
change the config and make one history entry (`/bin/sh -c #(nop)  ENV A=b`, empty_layer);
RUN, COPY, ADD and WORKDIR also need a container and a committed layer, which the executor does:
here they are resolved (variables expanded, command line, cache text) into a LayerStep.
"""

from __future__ import annotations

import posixpath
import signal
from dataclasses import dataclass, field

import msgspec
from berth_contracts.docker import ContainerConfig, HealthConfig

from berth_builder.buildargs import BuildArgs
from berth_builder.instructions import Instruction, InstructionError
from berth_builder.parser import go_quote
from berth_builder.shell_lex import SubstitutionError, process_word, process_words

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ["/bin/sh", "-c"]
CHMOD_NEEDS_BUILDKIT = (
    "the --chmod option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ "
    "to learn how to build images with BuildKit enabled"
)


@dataclass
class HistoryEntry:
    created_by: str
    empty_layer: bool
    author: str = ""
    cmd: list[str] = field(default_factory=list)  # the step's nop Cmd (its cache key)


@dataclass
class LayerStep:
    """A step the executor runs: a container from the current image, then a commit."""

    kind: str  # "run" | "copy" | "add" | "workdir"
    cmd: list[str]  # RUN: the command; WORKDIR: the nop comment config Cmd
    cache_cmd: list[str]  # the Cmd recorded in the cache key / ContainerConfig (build args in front)
    env: list[str] = field(default_factory=list)  # RUN: the config Env plus the allowed build args
    sources: list[str] = field(default_factory=list)  # COPY/ADD: after substitution
    dest: str = ""
    chown: str = ""
    from_stage: str = ""  # COPY --from


@dataclass
class StageState:
    config: ContainerConfig
    build_args: BuildArgs
    escape_token: str = "\\"
    maintainer: str = ""
    cmd_set: bool = False
    history: list[HistoryEntry] = field(default_factory=list)

    def shell(self) -> list[str]:
        return list(self.config.shell) if self.config.shell else list(DEFAULT_SHELL)

    def env_for_expansion(self) -> dict[str, str]:
        env = list(self.config.env or [])
        out: dict[str, str] = {}
        for entry in [*env, *self.build_args.filter_allowed(env)]:
            key, _, value = entry.partition("=")
            out[key] = value
        return out

    def _set(self, **changes: object) -> None:
        self.config = msgspec.structs.replace(self.config, **changes)

    def _commit(self, comment: str) -> None:
        cmd = [*self.shell(), "#(nop) ", comment]
        self.history.append(HistoryEntry(" ".join(cmd), True, self.maintainer, cmd))


def begin_stage(base: ContainerConfig | None, build_args: BuildArgs, escape_token: str) -> StageState:
    """A stage's state from its base image's config (None: scratch); ONBUILD triggers are the
    caller's to run (they are cleared here, as moby does before dispatching them)."""
    config = msgspec.structs.replace(base) if base is not None else ContainerConfig()
    env = list(config.env or [])
    if not any(e.partition("=")[0] == "PATH" for e in env):
        env.append(DEFAULT_PATH)
    config = msgspec.structs.replace(config, env=env, on_build=None, image="", open_stdin=False, stdin_once=False)
    args = build_args.clone()
    args.reset_allowed()
    return StageState(config=config, build_args=args, escape_token=escape_token)


def _expand(state: StageState, word: str) -> str:
    try:
        return process_word(word, state.env_for_expansion(), state.escape_token)
    except SubstitutionError as exc:
        raise InstructionError(str(exc), 0) from None


def _shell_cmd(state: StageState, inst: Instruction) -> list[str]:
    """moby's resolveCmdLine: the shell form runs through the stage's SHELL."""
    cmd = inst.cmd_line()
    return [*state.shell(), *cmd] if not inst.json else cmd


def _go_list(items: list[str]) -> str:
    """Go's %v of a []string: [a b c]."""
    return "[" + " ".join(items) + "]"


def _go_quoted_list(items: list[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return "[" + " ".join(go_quote(i) for i in items) + "]"


def _duration(nanos: int) -> str:
    """Go's Duration.String() for the whole-unit values HEALTHCHECK options take."""
    if nanos == 0:
        return "0s"
    hours, rest = divmod(nanos, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    if rest % 10**9 == 0:
        seconds = f"{rest // 10**9}s"
    elif nanos < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if nanos >= size:
                value = nanos / size
                return (f"{value:.9f}".rstrip("0").rstrip(".")) + unit
        seconds = f"{nanos}ns"
    else:
        seconds = (f"{rest / 10**9:.9f}".rstrip("0").rstrip(".")) + "s"
    if hours:
        return f"{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{minutes}m{seconds}"
    return seconds


def healthcheck_text(h: HealthConfig) -> str:
    """Go's %q of a *container.HealthConfig, as in `HEALTHCHECK &{["CMD-SHELL" "x"] "5s" ...}`."""
    retries = h.retries
    char = f"'\\x{retries:02x}'" if retries < 0x20 or retries == 0x7F else repr(chr(retries))
    parts = [
        _go_quoted_list(list(h.test or [])),
        go_quote(_duration(h.interval)),
        go_quote(_duration(h.timeout)),
        go_quote(_duration(h.start_period)),
        char,
    ]
    return "&{" + " ".join(parts) + "}"


def _merge_health(new: HealthConfig, old: HealthConfig | None) -> HealthConfig:
    """moby's commit merge: unset fields of the new healthcheck keep the image's old values."""
    if old is None:
        return new
    return HealthConfig(
        test=new.test or old.test,
        interval=new.interval or old.interval,
        timeout=new.timeout or old.timeout,
        start_period=new.start_period or old.start_period,
        retries=new.retries or old.retries,
    )


def _check_signal(sig: str) -> None:
    name = sig.upper().removeprefix("SIG")
    if sig.isdigit():
        if int(sig) == 0:
            raise InstructionError(f"Invalid signal: {sig}")
        return
    if not hasattr(signal, "SIG" + name) and not (name.startswith("RTMIN") or name.startswith("RTMAX")):
        raise InstructionError(f"Invalid signal: {sig}")


def _expose(state: StageState, inst: Instruction) -> None:
    env = state.env_for_expansion()
    ports: list[str] = []
    for port in inst.args:
        try:
            ports += process_words(port, env, state.escape_token)
        except SubstitutionError as exc:
            raise InstructionError(str(exc)) from None
    exposed = dict(state.config.exposed_ports or {})
    for spec in ports:
        proto = "tcp"
        port = spec
        if "/" in spec:
            port, proto = spec.split("/", 1)
        if ":" in port:
            port = port.rsplit(":", 1)[1]
        low, _, high = port.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise InstructionError(f"Invalid containerPort: {spec}")
        for number in range(int(low), int(high or low) + 1):
            exposed[f"{number}/{proto.lower()}"] = {}
    state._set(exposed_ports=exposed)
    state._commit("EXPOSE " + " ".join(ports))


def normalize_workdir(current: str, requested: str) -> str:
    if not requested:
        raise InstructionError("cannot normalize nothing")
    if not requested.startswith("/"):
        requested = posixpath.join("/", current or "/", requested)
    return posixpath.normpath(requested).replace("//", "/")


def dispatch(state: StageState, inst: Instruction) -> LayerStep | None:
    """Apply one instruction; a LayerStep when the executor must run it, else None."""
    name = inst.name
    cfg = state.config
    if name == "env":
        env = list(cfg.env or [])
        texts = []
        for key, value in inst.pairs:
            key, value = _expand(state, key), _expand(state, value)
            texts.append(f"{key}={value}")
            for i, entry in enumerate(env):
                if entry.partition("=")[0] == key:
                    env[i] = f"{key}={value}"
                    break
            else:
                env.append(f"{key}={value}")
        state._set(env=env)
        state._commit("ENV " + " ".join(texts))
    elif name == "maintainer":
        state.maintainer = inst.args[0]
        state._commit("MAINTAINER " + inst.args[0])
    elif name == "label":
        labels = dict(cfg.labels or {})
        texts = []
        for key, value in inst.pairs:
            if not inst.flags.get("noexpand"):  # --label options are taken as given
                key, value = _expand(state, key), _expand(state, value)
            labels[key] = value
            texts.append(f"{key}={value}")
        state._set(labels=labels)
        state._commit("LABEL " + " ".join(texts))
    elif name == "onbuild":
        state._set(on_build=[*(cfg.on_build or []), inst.expression])
        state._commit("ONBUILD " + inst.expression)
    elif name == "user":
        user = _expand(state, inst.args[0])
        state._set(user=user)
        state._commit("USER " + user)
    elif name == "volume":
        volumes = dict(cfg.volumes or {})
        expanded = [_expand(state, v) for v in inst.args]
        for v in expanded:
            if not v:
                raise InstructionError("VOLUME specified can not be an empty string")
            volumes[v] = {}
        state._set(volumes=volumes)
        state._commit("VOLUME " + _go_list(expanded))
    elif name == "stopsignal":
        sig = _expand(state, inst.args[0])
        _check_signal(sig)
        state._set(stop_signal=sig)
        state._commit("STOPSIGNAL " + sig)
    elif name == "arg":
        texts = []
        for raw_key, raw_value in inst.arg_defaults:
            key = _expand(state, raw_key)
            default = _expand(state, raw_value) if raw_value is not None else None
            texts.append(key if default is None else f"{key}={default}")
            state.build_args.add_arg(key, default)
        state._commit("ARG " + " ".join(texts))
    elif name == "shell":
        state._set(shell=inst.cmd_line())
        state._commit("SHELL " + _go_list(inst.cmd_line()))
    elif name == "cmd":
        cmd = _shell_cmd(state, inst)
        state._set(cmd=cmd, args_escaped=False)
        state._commit("CMD " + _go_quoted_list(cmd))
        if inst.cmd_line():
            state.cmd_set = True
    elif name == "entrypoint":
        entrypoint = _shell_cmd(state, inst) if inst.cmd_line() else None
        state._set(entrypoint=entrypoint, args_escaped=False)
        if not state.cmd_set:
            state._set(cmd=None)
        state._commit("ENTRYPOINT " + _go_quoted_list(list(entrypoint or [])))
    elif name == "healthcheck":
        assert inst.health is not None
        new = HealthConfig(
            test=list(inst.health["test"]),  # type: ignore[call-overload]
            interval=int(inst.health["interval"]),  # type: ignore[call-overload]
            timeout=int(inst.health["timeout"]),  # type: ignore[call-overload]
            start_period=int(inst.health["start_period"]),  # type: ignore[call-overload]
            retries=int(inst.health["retries"]),  # type: ignore[call-overload]
        )
        state._commit("HEALTHCHECK " + healthcheck_text(new))
        state._set(healthcheck=_merge_health(new, cfg.healthcheck))
    elif name == "expose":
        _expose(state, inst)
    elif name == "workdir":
        workdir = normalize_workdir(cfg.working_dir, _expand(state, inst.args[0]))
        state._set(working_dir=workdir)
        comment = [*state.shell(), "#(nop) WORKDIR " + workdir]
        return LayerStep("workdir", comment, comment)
    elif name == "run":
        if inst.flags:
            raise InstructionError(
                f"the --{next(iter(inst.flags))} option requires BuildKit. Refer to "
                "https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled"
            )
        cmd = _shell_cmd(state, inst)
        env = list(cfg.env or [])
        build_args = state.build_args.filter_allowed(env)
        kept = sorted(a for a in build_args if state.build_args.is_referenced_or_not_builtin(a.partition("=")[0]))
        saved = [f"|{len(kept)}", *kept, *cmd] if build_args else cmd
        return LayerStep("run", cmd, saved, env=[*env, *build_args])
    elif name in ("copy", "add"):
        if inst.flags.get("chmod"):
            raise InstructionError(CHMOD_NEEDS_BUILDKIT)
        words = [_expand(state, a) for a in inst.args]
        return LayerStep(
            name, [], [], sources=words[:-1], dest=words[-1],
            chown=_expand(state, inst.flags.get("chown", "")), from_stage=inst.flags.get("from", ""),
        )  # fmt: skip
    else:
        raise InstructionError(f"unknown instruction: {name.upper()}")
    return None
