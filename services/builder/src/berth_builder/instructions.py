"""Parsed Nodes → typed instructions and build stages, as moby's `instructions` package does.

Errors are moby's: `dockerfile parse error line N: <what>` (InstructionError.message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from berth_builder.parser import Node, Result, heredoc_in

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_\.]*$")
_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
MINIMUM_DURATION = 1_000_000  # container.MinimumDuration: 1ms


class InstructionError(Exception):
    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class Instruction:
    name: str  # lower case, e.g. "copy"
    original: str  # the instruction as written (continuations joined)
    line: int
    args: list[str] = field(default_factory=list)
    json: bool = False  # exec form
    flags: dict[str, str] = field(default_factory=dict)  # --name=value given, by name
    # Per instruction, decoded: ENV/LABEL pairs, ARG (name, default or None), HEALTHCHECK test...
    pairs: list[tuple[str, str]] = field(default_factory=list)
    arg_defaults: list[tuple[str, str | None]] = field(default_factory=list)
    health: dict[str, object] | None = None
    expression: str = ""  # ONBUILD's trigger

    def cmd_line(self) -> list[str]:
        """moby's handleJSONArgs: the exec form as is, the shell form as one string."""
        return list(self.args) if self.json else ([" ".join(self.args)] if self.args else [])


@dataclass
class Stage:
    base_name: str
    name: str  # lower case, "" when unnamed
    index: int
    line: int
    original: str
    platform: str = ""
    commands: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    meta_args: list[Instruction]  # ARGs before the first FROM
    stages: list[Stage]
    escape_token: str


_FLAGS: dict[str, tuple[str, ...]] = {
    "add": ("chown", "chmod"),
    "copy": ("chown", "from", "chmod"),
    "from": ("platform",),
    "healthcheck": ("interval", "timeout", "start-period", "retries"),
}


def _parse_flags(node: Node, allowed: tuple[str, ...]) -> dict[str, str]:
    """moby's BFlags.Parse for string flags."""
    values: dict[str, str] = {}
    for arg in node.flags:
        if not arg.startswith("--"):
            raise InstructionError(f"Arg should start with -- : {arg}")
        if arg == "--":
            break
        name, eq, value = arg[2:].partition("=")
        if name not in allowed:
            raise InstructionError(f"Unknown flag: {name}")
        if name in values:
            raise InstructionError(f"Duplicate flag specified: {name}")
        if not eq:
            raise InstructionError(f"Missing a value on flag: {name}")
        values[name] = value
    return values


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration, in nanoseconds (the forms HEALTHCHECK options use)."""
    if text in ("0", ""):
        return 0
    rest, total = text, 0.0
    while rest:
        match = _DURATION.match(rest)
        if match is None:
            raise InstructionError(f'time: invalid duration "{text}"')
        total += float(match.group(1)) * _UNITS[match.group(2)]
        rest = rest[match.end() :]
    return int(total)


def _interval(values: dict[str, str], name: str) -> int:
    value = values.get(name, "")
    if not value:
        return 0
    nanos = parse_duration(value)
    if nanos < MINIMUM_DURATION:
        raise InstructionError(f'Interval "{name}" cannot be less than 1ms')
    return nanos


def _kvps(args: list[str], name: str) -> list[tuple[str, str]]:
    if not args:
        raise InstructionError(f"{name} requires at least one argument")
    if len(args) % 2:
        raise InstructionError(f"Bad input to {name}, too many arguments")
    pairs = []
    for key, value in zip(args[::2], args[1::2], strict=True):
        if not key:
            raise InstructionError(f"{name} names can not be blank")
        pairs.append((key, value))
    return pairs


def _exactly_one(inst: Instruction) -> None:
    if len(inst.args) != 1:
        raise InstructionError(f"{inst.name.upper()} requires exactly one argument")


def _health(inst: Instruction, node: Node) -> dict[str, object]:
    if not inst.args:
        raise InstructionError("HEALTHCHECK requires at least one argument")
    kind, rest = inst.args[0].upper(), inst.args[1:]
    if kind == "NONE":
        if rest:
            raise InstructionError("HEALTHCHECK NONE takes no arguments")
        _parse_flags(node, ())
        return {"test": ["NONE"], "interval": 0, "timeout": 0, "start_period": 0, "retries": 0}
    values = _parse_flags(node, _FLAGS["healthcheck"])
    if kind != "CMD":
        raise InstructionError(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    cmd = list(rest) if inst.json else ([" ".join(rest)] if rest else [])
    if not cmd:
        raise InstructionError("Missing command after HEALTHCHECK CMD")
    retries = 0
    if values.get("retries"):
        try:
            retries = int(values["retries"], 10)
        except ValueError:
            raise InstructionError(
                f'strconv.ParseInt: parsing "{values["retries"]}": invalid syntax'
            ) from None
        if retries < 1:
            raise InstructionError(f"--retries must be at least 1 (not {retries})")
    return {
        "test": ["CMD" if inst.json else "CMD-SHELL", *cmd],
        "interval": _interval(values, "interval"),
        "timeout": _interval(values, "timeout"),
        "start_period": _interval(values, "start-period"),
        "retries": retries,
    }


def parse_instruction(node: Node) -> Instruction:
    """One node → Instruction; InstructionError in moby's words (without the line prefix)."""
    name = node.value
    inst = Instruction(name, node.original, node.start_line, node.args(), node.json)
    flags_allowed = _FLAGS.get(name, ())
    if name == "env" or name == "label":
        _parse_flags(node, ())
        inst.pairs = _kvps(inst.args, name.upper())
    elif name == "maintainer":
        if len(inst.args) != 1:
            raise InstructionError("MAINTAINER requires exactly one argument")
    elif name in ("add", "copy"):
        if len(inst.args) < 2:
            raise InstructionError(
                f"{name.upper()} requires at least two arguments, but only one was provided. "
                "Destination could not be determined"
            )
        inst.flags = _parse_flags(node, flags_allowed)
    elif name == "from":
        if len(inst.args) == 3 and inst.args[1].lower() == "as":
            if not _STAGE_NAME.match(inst.args[2].lower()):
                raise InstructionError(
                    f'invalid name for build stage: "{inst.args[2]}", '
                    "name can't start with a number or contain symbols"
                )
        elif len(inst.args) != 1:
            raise InstructionError("FROM requires either one or three arguments")
        inst.flags = _parse_flags(node, flags_allowed)
    elif name == "onbuild":
        if not inst.args:
            raise InstructionError("ONBUILD requires at least one argument")
        _parse_flags(node, ())
        trigger = inst.args[0].strip().upper()
        if trigger == "ONBUILD":
            raise InstructionError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trigger in ("MAINTAINER", "FROM"):
            raise InstructionError(f"{trigger} isn't allowed as an ONBUILD trigger")
        inst.expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original, count=1)
    elif name in ("workdir", "user", "stopsignal"):
        _exactly_one(inst)
        if name != "stopsignal":
            _parse_flags(node, ())
    elif name in ("run", "cmd", "entrypoint"):
        if name == "run" and node.flags:
            # The classic builder knows RUN --mount/--network/--security only to refuse them.
            inst.flags = {f[2:].partition("=")[0]: f.partition("=")[2] for f in node.flags if f != "--"}
        else:
            _parse_flags(node, ())
    elif name == "healthcheck":
        inst.health = _health(inst, node)
    elif name == "expose":
        if not inst.args:
            raise InstructionError("EXPOSE requires at least one argument")
        _parse_flags(node, ())
        inst.args = sorted(inst.args)
    elif name == "volume":
        if not inst.args:
            raise InstructionError("VOLUME requires at least one argument")
        _parse_flags(node, ())
        inst.args = [a.strip() for a in inst.args]
        if any(not a for a in inst.args):
            raise InstructionError("VOLUME specified can not be an empty string")
    elif name == "arg":
        if not inst.args:
            raise InstructionError("ARG requires at least one argument")
        for word in inst.args:
            key, eq, value = word.partition("=")
            if eq and not key:
                raise InstructionError("ARG names can not be blank")
            inst.arg_defaults.append((key, value if eq else None))
    elif name == "shell":
        _parse_flags(node, ())
        if not inst.cmd_line():
            raise InstructionError("SHELL requires at least one argument")
        if not node.json:
            raise InstructionError(f"SHELL requires the arguments to be in JSON form: {node.original}")
    else:
        raise InstructionError(f"unknown instruction: {name.upper()}")
    return inst


def _line_error(exc: InstructionError, node: Node, previous: list[Node]) -> InstructionError:
    message = f"dockerfile parse error line {node.start_line}: {exc.message}"
    heredoc = next((heredoc_in(p) for p in reversed(previous) if heredoc_in(p)), "")
    if exc.message.startswith("unknown instruction") and heredoc:
        message += (
            f" (the heredoc <<{heredoc} above needs BuildKit: the classic builder does not support heredocs)"
        )
    return InstructionError(message, node.start_line)


def instructions_of(result: Result) -> Dockerfile:
    """moby's instructions.Parse: ARGs before the first FROM are meta args, then stages."""
    meta_args: list[Instruction] = []
    stages: list[Stage] = []
    for i, node in enumerate(result.children):
        try:
            inst = parse_instruction(node)
        except InstructionError as exc:
            raise _line_error(exc, node, result.children[:i]) from None
        if inst.name == "from":
            stage_name = inst.args[2].lower() if len(inst.args) == 3 else ""
            stages.append(
                Stage(inst.args[0], stage_name, len(stages), inst.line, inst.original.strip(), inst.flags.get("platform", ""))
            )
        elif not stages and inst.name == "arg":
            meta_args.append(inst)
        elif not stages:
            raise InstructionError("no build stage in current context", inst.line)
        else:
            stages[-1].commands.append(inst)
    return Dockerfile(meta_args, stages, result.escape_token)
