"""One build, as moby's classic builder drives it: meta ARGs, then each stage up to the target,
`Step N/M : ...` per instruction, metadata applied here and steps run through an executor.

The executor is where containers run and images are committed (`executor.EngineExecutor`, on
the engine). Its methods are async generators of output: stream messages (dicts) and, last,
the step's result (StepDone or BaseImage).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from berth_contracts.builder import BuildOptions
from berth_contracts.docker import ContainerConfig
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from berth_builder.buildargs import BuildArgs
from berth_builder.contextindex import BuildContext
from berth_builder.dispatch import LayerStep, StageState, begin_stage, dispatch
from berth_builder.instructions import (
    Dockerfile,
    Instruction,
    InstructionError,
    Stage,
    instructions_of,
    parse_instruction,
)
from berth_builder.parser import ParseError, parse
from berth_builder.registryauth import RegistryAuth
from berth_builder.shell_lex import SubstitutionError, process_word

SCRATCH = "scratch"
_tracer = trace.get_tracer("berth-builder")


class BuildError(Exception):
    """A build that stops; the message in moby's words, sent as the errorDetail line."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code  # a RUN's exit status: errorDetail.code, the CLI's exit status


@dataclass
class BaseImage:
    id: str  # "" for scratch
    config: ContainerConfig | None


@dataclass
class StepDone:
    image_id: str


Output = dict[str, Any] | StepDone | BaseImage


class StepExecutor(Protocol):
    """What the builder needs from the rest of berth (engine, lifecycle, agent), for one build."""

    def base_image(self, ref: str, *, pull: bool, platform: str) -> AsyncIterator[Output]:
        """Pull output if any, then the BaseImage."""
        ...

    def new_stage(self) -> None:
        """moby's imageProber.Reset: each stage probes the cache again."""
        ...

    def metadata_step(self, state: StageState, image_id: str) -> AsyncIterator[Output]:
        """A new image: `image_id`'s layers, state.config, history + state.history[-1]."""
        ...

    def layer_step(
        self, state: StageState, image_id: str, step: LayerStep, results: StageResults
    ) -> AsyncIterator[Output]:
        """Run the step in a container from image_id, commit it; output, then StepDone;
        raises BuildError."""
        ...

    async def tag(self, image_id: str, tag: str) -> str:
        """Tag the result; the familiar name for `Successfully tagged`."""
        ...


@dataclass(frozen=True)
class BuildInputs:
    """What one build is given: its options, its context (indexed, extracted when a step needs
    its files) and the client's registry credentials (memory only, for FROM pulls)."""

    options: BuildOptions
    context: BuildContext
    registry_auth: RegistryAuth


class Executors(Protocol):
    def for_build(self, build: BuildInputs) -> StepExecutor: ...


def load_dockerfile(text: bytes, options: BuildOptions) -> Dockerfile:
    """Parse and check a Dockerfile; BuildError with dockerd's words."""
    name = options.dockerfile or "Dockerfile"
    if not text:
        raise BuildError(f"the Dockerfile ({name}) cannot be empty")
    try:
        dockerfile = instructions_of(parse(text))
    except ParseError as exc:
        raise BuildError(f"failed to parse {name}: {exc.message}") from None
    except InstructionError as exc:
        raise BuildError(exc.message) from None
    if options.target:
        names = [s.name for s in dockerfile.stages]
        if options.target.lower() not in names:
            raise BuildError(f"failed to reach build target {options.target} in Dockerfile")
        dockerfile.stages = dockerfile.stages[: names.index(options.target.lower()) + 1]
    if options.labels and dockerfile.stages:
        last = dockerfile.stages[-1]
        for key in sorted(options.labels):
            label = Instruction(
                "label", f"LABEL {key}={options.labels[key]}", 0, [key, options.labels[key]]
            )
            label.pairs = [(key, options.labels[key])]
            label.flags = {"noexpand": "true"}
            last.commands.append(label)
    return dockerfile


@dataclass
class StageResults:
    """moby's stagesBuildResults: finished stages by name and by index."""

    flat: list[tuple[str, ContainerConfig]] = field(default_factory=list)  # (image id, config)
    names: dict[str, int] = field(default_factory=dict)

    def by_name(self, name: str) -> tuple[str, ContainerConfig] | None:
        index = self.names.get(name.lower())
        return self.flat[index] if index is not None else None

    def get(self, name_or_index: str) -> tuple[str, ContainerConfig] | None:
        """COPY --from: a stage by name, else by index, else None (an image reference)."""
        found = self.by_name(name_or_index)
        if found is not None:
            return found
        if not name_or_index.lstrip("-").isdigit():
            return None
        index = int(name_or_index)
        if index == len(self.flat):
            raise BuildError("refers to current build stage")
        if index < 0 or index > len(self.flat):
            raise BuildError("index out of bounds")
        return self.flat[index]

    def check_available(self, name: str) -> None:
        if name and name.lower() in self.names:
            raise BuildError(f"{name} stage name already used")

    def commit(self, name: str, image_id: str, config: ContainerConfig) -> None:
        self.check_available(name)
        if name:
            self.names[name.lower()] = len(self.flat)
        self.flat.append((image_id, config))


def stream(text: str) -> dict[str, Any]:
    return {"stream": text}


def step_line(index: int, total: int, text: str) -> list[dict[str, Any]]:
    """moby writes the step and its newline separately."""
    return [stream(f"Step {index}/{total} : {text}"), stream("\n")]


class Build:
    def __init__(
        self, dockerfile: Dockerfile, options: BuildOptions, executor: StepExecutor
    ) -> None:
        self.dockerfile = dockerfile
        self.options = options
        self.executor = executor
        self.build_args = BuildArgs(dict(options.build_args))
        self.results = StageResults()
        self.image_id = ""
        self.state = StageState(ContainerConfig(), self.build_args)

    def total_steps(self) -> int:
        return len(self.dockerfile.meta_args) + sum(
            1 + len(s.commands) for s in self.dockerfile.stages
        )

    async def run(self) -> AsyncIterator[dict[str, Any]]:
        """The build stream's messages; raises BuildError."""
        total, index = self.total_steps(), 1
        for meta in self.dockerfile.meta_args:
            for message in step_line(index, total, meta.original.strip()):
                yield message
            index += 1
            env = self.build_args.all_allowed()
            for key, value in meta.arg_defaults:
                try:
                    key = process_word(key, env, self.dockerfile.escape_token)
                    value = (
                        process_word(value, env, self.dockerfile.escape_token)
                        if value is not None
                        else None
                    )
                except SubstitutionError as exc:
                    raise BuildError(str(exc)) from None
                self.build_args.add_arg(key, value)
                self.build_args.add_meta_arg(key, value)
        for stage in self.dockerfile.stages:
            self.results.check_available(stage.name)
            for message in step_line(index, total, stage.original):
                yield message
            index += 1
            self.executor.new_stage()
            async for message in self._begin(stage):
                yield message
            state = self.state
            yield stream(f" ---> {_short(self.image_id)}\n")
            for inst in stage.commands:
                for message in step_line(index, total, inst.original.strip()):
                    yield message
                index += 1
                # A span per step, in the build's trace (not made current: it spans yields).
                span = _tracer.start_span(f"step {index - 1}/{total}: {inst.name.upper()}")
                try:
                    async for message in self._step(state, inst):
                        yield message
                except BaseException as exc:
                    span.record_exception(exc)
                    span.set_status(StatusCode.ERROR, str(exc))
                    raise
                finally:
                    span.end()
                yield stream(f" ---> {_short(self.image_id)}\n")
            self.results.commit(stage.name, self.image_id, state.config)
        if not self.image_id:
            raise BuildError("No image was generated. Is your Dockerfile empty?")
        yield {"aux": {"ID": self.image_id}}
        yield stream(f"Successfully built {_short(self.image_id)}\n")
        for tag in self.options.tags:
            name = await self.executor.tag(self.image_id, tag)
            yield stream(f"Successfully tagged {name}\n")

    async def _begin(self, stage: Stage) -> AsyncIterator[dict[str, Any]]:
        """FROM: the base image, the stage's state (self.state), then its ONBUILD triggers."""
        try:
            name = process_word(
                stage.base_name, self.build_args.all_meta(), self.dockerfile.escape_token
            )
        except SubstitutionError as exc:
            raise BuildError(str(exc)) from None
        if not name:
            raise BuildError(f"base name ({stage.base_name}) should not be blank")
        from_stage = self.results.by_name(name)
        if from_stage is not None:
            base = BaseImage(*from_stage)
        elif name == SCRATCH:
            base = BaseImage("", None)
        else:
            base = BaseImage("", None)
            async for item in self.executor.base_image(
                name, pull=self.options.pull, platform=stage.platform or self.options.platform
            ):
                if isinstance(item, BaseImage):
                    base = item
                elif isinstance(item, dict):
                    yield item
        self.image_id = base.id
        self.state = begin_stage(base.config, self.build_args, self.dockerfile.escape_token)
        triggers = list(base.config.on_build or []) if base.config is not None else []
        if triggers:
            yield stream(
                f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n"
            )
        for trigger in triggers:
            try:
                inst = parse_instruction(parse(trigger.encode()).children[0])
            except (ParseError, InstructionError, IndexError) as exc:
                raise BuildError(str(getattr(exc, "message", exc))) from None
            async for message in self._step(self.state, inst):
                yield message

    async def _step(self, state: StageState, inst: Instruction) -> AsyncIterator[dict[str, Any]]:
        try:
            step = dispatch(state, inst)
        except InstructionError as exc:
            raise BuildError(exc.message) from None
        if step is None:
            items = self.executor.metadata_step(state, self.image_id)
        else:
            items = self.executor.layer_step(state, self.image_id, step, self.results)
        async for item in items:
            if isinstance(item, StepDone):
                self.image_id = item.image_id
            elif isinstance(item, dict):
                yield item


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def json_line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\r\n"
