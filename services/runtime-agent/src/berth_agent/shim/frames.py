"""The shim wire's frames and the shim's state, declared as types (proto.py describes the wire).

TypedDicts, so a frame stays the plain dict that json reads and writes: the shim imports this
module only for type checkers (typing would cost every shim memory), the agent imports it freely.
"""

from __future__ import annotations

from typing import Literal, TypedDict

ShimStatus = Literal["init", "created", "running", "paused", "stopped", "deleted"]
ErrorKind = Literal[
    "not_found", "already_exists", "failed_precondition", "invalid_argument", "unknown"
]


class ShimState(TypedDict):
    """<bundle>/state.json, replaced atomically on every change."""

    id: str
    status: ShimStatus
    pid: int  # the container's init, 0 before create
    shim_pid: int
    started: bool
    started_at: str  # RFC 3339 nano, "" before start
    exit_code: int
    oom_killed: bool
    exited_at: str
    process_tp: str  # traceparent of the start, for the container.process span
    process_start_ns: int


class RunningExec(TypedDict):
    pid: int
    stdin: bool


class ExecSummary(TypedDict):
    running: dict[str, RunningExec]
    done: dict[str, int]  # exec id -> exit code, not yet acknowledged by an agent


# --- shim -> agent ------------------------------------------------------------------------------
class Hello(TypedDict):
    t: Literal["hello"]
    state: ShimState
    execs: ExecSummary


class Reply(TypedDict, total=False):
    t: Literal["reply"]
    rid: int
    ok: bool
    error: str  # when not ok
    kind: ErrorKind  # when not ok
    pid: int  # create, start, exec
    started_at: str  # start, create with start
    state: ShimState  # state, pause, resume, delete


class Output(TypedDict):
    t: Literal["out"]
    s: Literal[1, 2]  # stdout, stderr
    d: str  # base64
    o: int  # bytes of this stream before this chunk


class ExecOutput(TypedDict):
    t: Literal["xout"]
    eid: str
    s: Literal[1, 2]
    d: str
    o: int


class OutputEnd(TypedDict):
    t: Literal["eof"]


class Exit(TypedDict):
    t: Literal["exit"]
    state: ShimState


class ExecExit(TypedDict):
    t: Literal["xexit"]
    eid: str
    code: int


class Span(TypedDict):
    t: Literal["span"]
    name: str
    start: int  # ns since the epoch
    end: int
    tp: str  # parent traceparent
    attrs: dict[str, str | int | bool]


ShimEvent = Output | ExecOutput | OutputEnd | Exit | ExecExit | Span


# --- agent -> shim (commands; "rid" is set by the agent's ShimClient.call) ------------------
class Create(TypedDict):
    t: Literal["create"]
    tp: str
    start: bool


class Start(TypedDict):
    t: Literal["start"]
    tp: str


class Kill(TypedDict):
    t: Literal["kill"]
    sig: int
    all: bool


class Delete(TypedDict):
    t: Literal["delete"]
    tp: str


class Resize(TypedDict):
    t: Literal["resize"]
    h: int
    w: int


class Exec(TypedDict):
    t: Literal["exec"]
    eid: str
    proc: dict[str, object]  # the OCI process
    stdin: bool
    h: int
    w: int
    tp: str


class ExecResize(TypedDict):
    t: Literal["xresize"]
    eid: str
    h: int
    w: int
