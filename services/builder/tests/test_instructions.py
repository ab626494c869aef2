"""Instructions and stages from the parsed Dockerfile; moby's errors with the line number."""

from __future__ import annotations

import pytest
from berth_builder.build import BuildError, StageResults, load_dockerfile
from berth_builder.instructions import InstructionError, instructions_of
from berth_builder.parser import parse
from berth_contracts.builder import BuildOptions
from berth_contracts.docker import ContainerConfig


def errors_of(text: str) -> str:
    with pytest.raises(InstructionError) as caught:
        instructions_of(parse(text))
    return caught.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [  # the words dockerd 20.10 answered for each (`docker build`, classic builder)
        ("FROM scratch\nFOO bar\n", "dockerfile parse error line 2: unknown instruction: FOO"),
        ("FROM scratch\nCOPY a\n", "dockerfile parse error line 2: COPY requires at least two arguments, "
         "but only one was provided. Destination could not be determined"),
        ("FROM scratch\nCOPY --bogus=1 a b\n", "dockerfile parse error line 2: Unknown flag: bogus"),
        ("FROM scratch a\n", "dockerfile parse error line 1: FROM requires either one or three arguments"),
        ("FROM scratch\nEXPOSE\n", "dockerfile parse error line 2: EXPOSE requires at least one argument"),
        ("ENV A=b\nFROM scratch\n", "no build stage in current context"),
        ("FROM a AS 1x\n", 'dockerfile parse error line 1: invalid name for build stage: "1x", '
         "name can't start with a number or contain symbols"),
        ("FROM a\nONBUILD ONBUILD RUN x\n", "dockerfile parse error line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("FROM a\nONBUILD FROM b\n", "dockerfile parse error line 2: FROM isn't allowed as an ONBUILD trigger"),
        ("FROM a\nSHELL /bin/sh\n", "dockerfile parse error line 2: SHELL requires the arguments to be in JSON form: SHELL /bin/sh"),
        ("FROM a\nHEALTHCHECK NONE x\n", "dockerfile parse error line 2: HEALTHCHECK NONE takes no arguments"),
        ("FROM a\nHEALTHCHECK FOO x\n", 'dockerfile parse error line 2: Unknown type "FOO" in HEALTHCHECK (try CMD)'),
        ("FROM a\nHEALTHCHECK --retries=0 CMD x\n", "dockerfile parse error line 2: --retries must be at least 1 (not 0)"),
        ("FROM a\nHEALTHCHECK --interval=1ns CMD x\n", 'dockerfile parse error line 2: Interval "interval" cannot be less than 1ms'),
        ("FROM a\nHEALTHCHECK --timeout CMD x\n", "dockerfile parse error line 2: Missing a value on flag: timeout"),
        ("FROM a\nWORKDIR\n", "dockerfile parse error line 2: WORKDIR requires exactly one argument"),
        ("FROM a\nARG =x\n", "dockerfile parse error line 2: ARG names can not be blank"),
        ("FROM a\nLABEL =x\n", "dockerfile parse error line 2: LABEL names can not be blank"),
        ("FROM a\nVOLUME [\"\"]\n", "dockerfile parse error line 2: VOLUME specified can not be an empty string"),
    ],
)  # fmt: skip
def test_instruction_errors(text: str, message: str) -> None:
    assert errors_of(text) == message


def test_heredocs_are_refused_clearly() -> None:
    # dockerd 20.10 says only "dockerfile parse error line 3: unknown instruction: ECHO"
    message = errors_of("FROM scratch\nRUN <<EOF\necho hi\nEOF\n")
    assert message.startswith("dockerfile parse error line 3: unknown instruction: ECHO")
    assert "heredoc <<EOF" in message and "classic builder does not support heredocs" in message


def test_stages_meta_args_and_instructions() -> None:
    dockerfile = instructions_of(parse(
        "ARG BASE=busybox\nFROM $BASE AS Build\nRUN make\nFROM --platform=linux/amd64 scratch\n"
        "COPY --from=build /out /\nHEALTHCHECK --interval=1m30s --retries=2 CMD [\"check\"]\nEXPOSE 80 443 1\n"
    ))  # fmt: skip
    assert [m.original for m in dockerfile.meta_args] == ["ARG BASE=busybox"]
    assert [(s.base_name, s.name, s.index, s.platform) for s in dockerfile.stages] == [
        ("$BASE", "build", 0, ""), ("scratch", "", 1, "linux/amd64"),
    ]  # fmt: skip
    copy, health, expose = dockerfile.stages[1].commands
    assert copy.flags == {"from": "build"} and copy.args == ["/out", "/"]
    assert health.health == {"test": ["CMD", "check"], "interval": 90_000_000_000, "timeout": 0, "start_period": 0, "retries": 2}
    assert expose.args == ["1", "443", "80"]  # moby sorts EXPOSE's words before substitution


def test_target_and_labels() -> None:
    text = b"FROM scratch AS a\nENV X=1\nFROM scratch AS b\nFROM scratch AS c\n"
    dockerfile = load_dockerfile(text, BuildOptions(target="B", labels={"z": "$1", "a": "2"}))
    assert [s.name for s in dockerfile.stages] == ["a", "b"]
    assert [(c.name, c.pairs) for c in dockerfile.stages[-1].commands] == [("label", [("a", "2")]), ("label", [("z", "$1")])]
    with pytest.raises(BuildError, match="^failed to reach build target nope in Dockerfile$"):
        load_dockerfile(text, BuildOptions(target="nope"))
    with pytest.raises(BuildError, match="^failed to parse Dockerfile: ENV must have two arguments$"):
        load_dockerfile(b"FROM a\nENV PATH\n", BuildOptions())
    with pytest.raises(BuildError, match=r"^the Dockerfile \(df\) cannot be empty$"):
        load_dockerfile(b"", BuildOptions(dockerfile="df"))


def test_stage_references() -> None:
    results = StageResults()
    results.commit("build", "sha256:1", ContainerConfig())
    results.commit("", "sha256:2", ContainerConfig())
    assert results.get("BUILD") == ("sha256:1", ContainerConfig())
    assert results.get("1") == ("sha256:2", ContainerConfig())
    assert results.get("busybox:latest") is None  # an image, not a stage
    with pytest.raises(BuildError, match="^refers to current build stage$"):
        results.get("2")
    with pytest.raises(BuildError, match="^index out of bounds$"):
        results.get("3")
    with pytest.raises(BuildError, match="^build stage name already used$"):
        results.check_available("build")
