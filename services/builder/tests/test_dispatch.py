"""Instructions applied to an image config, with dockerd 20.10's history text.

DOCKERFILE was built by dockerd 20.10 (`docker build --build-arg B=bee`, classic builder); the
expected history lines and config are what `docker history --no-trunc` and `docker inspect`
showed for it."""

from __future__ import annotations

import pytest
from berth_builder.buildargs import BuildArgs
from berth_builder.dispatch import LayerStep, StageState, begin_stage, dispatch, healthcheck_text
from berth_builder.instructions import InstructionError, instructions_of
from berth_builder.parser import parse
from berth_contracts.docker import ContainerConfig, HealthConfig

DOCKERFILE = """\
FROM scratch
ARG A=1 B
ENV X=$A Y="two words" Z=
LABEL "k 1"=v2 k3=${A:-d}
WORKDIR rel
WORKDIR /abs/$A
USER 1000:${B:-g}
SHELL ["/bin/bash", "-c"]
CMD echo $X
ENTRYPOINT ["/e", "x"]
CMD ["a", "b c"]
EXPOSE 80 443/udp $A
VOLUME /v1 ["/v2"]
VOLUME ["/v3", "/v4"]
HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://x/ || exit 1
HEALTHCHECK NONE
STOPSIGNAL SIGKILL
ONBUILD RUN echo hi
MAINTAINER me
"""

DOCKERD_HISTORY = [
    "/bin/sh -c #(nop)  ARG A=1 B",
    "/bin/sh -c #(nop)  ENV X=1 Y=two words Z=",
    "/bin/sh -c #(nop)  LABEL k 1=v2 k3=1",
    "/bin/sh -c #(nop) WORKDIR /rel",
    "/bin/sh -c #(nop) WORKDIR /abs/1",
    "/bin/sh -c #(nop)  USER 1000:bee",
    "/bin/bash -c #(nop)  SHELL [/bin/bash -c]",
    '/bin/bash -c #(nop)  CMD ["/bin/bash" "-c" "echo $X"]',
    '/bin/bash -c #(nop)  ENTRYPOINT ["/e" "x"]',
    '/bin/bash -c #(nop)  CMD ["a" "b c"]',
    "/bin/bash -c #(nop)  EXPOSE 1 443/udp 80",
    "/bin/bash -c #(nop)  VOLUME [/v1 [/v2]]",
    "/bin/bash -c #(nop)  VOLUME [/v3 /v4]",
    '/bin/bash -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "curl -f http://x/ || exit 1"] "5s" "0s" "0s" \'\\x03\'}',
    '/bin/bash -c #(nop)  HEALTHCHECK &{["NONE"] "0s" "0s" "0s" \'\\x00\'}',
    "/bin/bash -c #(nop)  STOPSIGNAL SIGKILL",
    "/bin/bash -c #(nop)  ONBUILD RUN echo hi",
    "/bin/bash -c #(nop)  MAINTAINER me",
]

DOCKERD_CONFIG = ContainerConfig(
    user="1000:bee",
    exposed_ports={"1/tcp": {}, "443/udp": {}, "80/tcp": {}},
    env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "X=1", "Y=two words", "Z="],
    entrypoint=["/e", "x"],
    cmd=["a", "b c"],
    volumes={"/v1": {}, "/v3": {}, "/v4": {}, "[/v2]": {}},
    working_dir="/abs/1",
    labels={"k 1": "v2", "k3": "1"},
    stop_signal="SIGKILL",
    healthcheck=HealthConfig(test=["NONE"], interval=5_000_000_000, retries=3),
    on_build=["RUN echo hi"],
    shell=["/bin/bash", "-c"],
)


def run_stage(text: str, build_args: dict[str, str | None] | None = None) -> tuple[StageState, list[str]]:
    """Dispatch the first stage; history lines of metadata steps and of layer steps alike."""
    dockerfile = instructions_of(parse(text))
    state = begin_stage(None, BuildArgs(build_args or {}), dockerfile.escape_token)
    lines: list[str] = []
    for inst in dockerfile.stages[0].commands:
        before = len(state.history)
        step = dispatch(state, inst)
        if isinstance(step, LayerStep):
            lines.append(" ".join(step.cache_cmd))
        else:
            assert len(state.history) == before + 1 and state.history[-1].empty_layer
            lines.append(state.history[-1].created_by)
    return state, lines


def test_history_and_config_are_dockerds() -> None:
    state, lines = run_stage(DOCKERFILE, {"B": "bee"})
    assert lines == DOCKERD_HISTORY
    assert state.config == DOCKERD_CONFIG
    assert state.history[-1].author == "me"


def test_run_steps_carry_the_build_args_they_use() -> None:
    state, lines = run_stage(
        "FROM scratch\nARG V=1\nENV E=x\nARG E=shadowed\nRUN echo $V\nRUN [\"/bin/true\", \"a\"]\n",
        {"HTTP_PROXY": "http://p", "V": "2"},
    )
    # the proxy arg is passed to the container but not recorded, ENV wins over an ARG of the same name
    assert lines[-2:] == ["|1 V=2 /bin/sh -c echo $V", "|1 V=2 /bin/true a"]
    step = dispatch(state, instructions_of(parse("FROM scratch\nRUN x\n")).stages[0].commands[0])
    assert isinstance(step, LayerStep)
    assert step.cmd == ["/bin/sh", "-c", "x"]
    assert sorted(step.env) == ["E=x", "HTTP_PROXY=http://p", state.config.env[0], "V=2"]


def test_entrypoint_resets_a_cmd_of_the_base_only() -> None:
    state, _ = run_stage("FROM scratch\nENTRYPOINT x\n")
    assert state.config.entrypoint == ["/bin/sh", "-c", "x"] and state.config.cmd is None
    state, _ = run_stage("FROM scratch\nCMD y\nENTRYPOINT []\n")
    assert state.config.cmd == ["/bin/sh", "-c", "y"] and state.config.entrypoint is None


def test_base_config_and_path() -> None:
    base = ContainerConfig(env=["PATH=/x", "A=1"], cmd=["sh"], on_build=["RUN x"], open_stdin=True)
    state = begin_stage(base, BuildArgs({}), "\\")
    assert state.config.env == ["PATH=/x", "A=1"] and state.config.cmd == ["sh"]
    assert state.config.on_build is None and not state.config.open_stdin


def test_copy_and_add_arguments() -> None:
    dockerfile = instructions_of(parse("FROM scratch\nARG D=/dst\nCOPY --from=build --chown=${U:-1}:2 a* '$D' $D/\nADD [\"x y\", \"/y\"]\n"))
    state = begin_stage(None, BuildArgs({}), "\\")
    dispatch(state, dockerfile.stages[0].commands[0])
    copy = dispatch(state, dockerfile.stages[0].commands[1])
    add = dispatch(state, dockerfile.stages[0].commands[2])
    assert copy == LayerStep("copy", [], [], sources=["a*", "$D"], dest="/dst/", chown="1:2", from_stage="build")
    assert add == LayerStep("add", [], [], sources=["x y"], dest="/y")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("COPY --chmod=644 a b", "the --chmod option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ "
         "to learn how to build images with BuildKit enabled"),
        ("RUN --mount=type=cache,target=/x true", "the --mount option requires BuildKit. Refer to "
         "https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled"),
        ("STOPSIGNAL NOPE", "Invalid signal: NOPE"),
        ("USER ${X:?need X}", 'failed to process "${X:?need X}": X: need X'),
        ("EXPOSE 80/tcp/x nope", "Invalid containerPort: nope"),
    ],
)  # fmt: skip
def test_dispatch_errors(line: str, message: str) -> None:
    with pytest.raises(InstructionError) as caught:
        run_stage(f"FROM scratch\n{line}\n")
    assert caught.value.message == message


def test_healthcheck_text() -> None:
    check = HealthConfig(test=["CMD", "a"], interval=90_000_000_000, timeout=1_500_000_000, start_period=1_000_000, retries=65)
    assert healthcheck_text(check) == "&{[\"CMD\" \"a\"] \"1m30s\" \"1.5s\" \"1ms\" 'A'}"
