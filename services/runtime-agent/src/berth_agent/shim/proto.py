"""The wire between the agent and one shim: JSON lines over a unix stream socket. Stdlib only.

Every frame is one JSON object on one line with a type key "t". Bytes travel base64-encoded.

agent -> shim
  {"t":"create","rid":N,"tp":TRACEPARENT,"start":BOOL}
                                                   runc create; reply {"pid":P}; with start,
                                                   runc run --detach; reply {"pid":P,"started_at":TS}
  {"t":"start","rid":N,"tp":TRACEPARENT}           runc start; reply {"pid":P,"started_at":TS}
  {"t":"kill","rid":N,"sig":S,"all":BOOL}          runc kill [--all] <id> S
  {"t":"delete","rid":N,"tp":TRACEPARENT}          kill if alive, runc delete, unmount; shim exits
  {"t":"state","rid":N}                            reply {"state":{...}}
  {"t":"pause"|"resume","rid":N}                   runc pause / resume (freezer); reply {"state":{...}}
  {"t":"exec","rid":N,"eid":E,"proc":{OCI process},"stdin":BOOL,"h":H,"w":W,"tp":TP}
                                                   runc exec --detach; reply {"pid":P}
  {"t":"xstdin","eid":E,"d":B64} / {"t":"xstdin_close","eid":E}   exec stdin
  {"t":"resize","rid":N,"h":H,"w":W}               the init's TTY window size
  {"t":"xresize","rid":N,"eid":E,"h":H,"w":W}      exec TTY window size
  {"t":"xack","eid":E}                             the agent has recorded exec E's exit
  {"t":"stdin","d":B64} / {"t":"stdin_close"}      container stdin (only with open_stdin)
  {"t":"opause"|"oresume","eid":E}                 stop / go on reading the output pipes of the init
                                                   (eid "" or absent) or of exec E: its readers lag

shim -> agent
  {"t":"hello","state":{...},"execs":{"running":{E:{"pid":P,"stdin":BOOL}},"done":{E:CODE}}}
                                                   first frame on every connection: the state,
                                                   running execs, exec exits not yet acked
  {"t":"reply","rid":N,"ok":true,...}              or {"ok":false,"error":MSG,"kind":KIND}
  {"t":"out","s":1|2,"d":B64,"o":OFFSET}           live output; OFFSET: bytes of this run's output
                                                   before it (dropped only while no agent is
                                                   connected; a lagging agent makes the shim
                                                   stop reading the pipes: shim_gate)
  {"t":"eof"}                                      all output of the process was sent
  {"t":"xout","eid":E,"s":1|2,"d":B64,"o":OFFSET}  exec output (not logged, as in Docker)
  {"t":"xexit","eid":E,"code":C}                   exec exited, all its output was sent
  {"t":"exit","state":{...}}                       init exited (state holds exit_code, oom_killed)
  {"t":"span","name":..,"start":NS,"end":NS,"tp":TRACEPARENT,"attrs":{..}}

A failed reply's KIND says what went wrong, as containerd's shim answers with errdefs: one of
the ERROR_KINDS below; the agent maps it to a berth_contracts.errors class and never reads MSG
to decide. The frames and the state are declared as types in frames.py (for checkers: the shim
imports no typing at run time); commands are dispatched by "t" from Shim.commands.
The state is what the shim writes to <bundle>/state.json (frames.ShimState).
"""

from __future__ import annotations

import base64
import json

# typing costs memory in every shim; annotations are strings here, so import it for checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

MAX_LINE = 4 * 1024 * 1024

# Error kinds of a failed reply (containerd's errdefs names).
NOT_FOUND = "not_found"  # no such container or exec in runc
ALREADY_EXISTS = "already_exists"  # created twice, an exec id reused
NOT_RUNNING = "failed_precondition"  # the process is not (or no longer) running
INVALID = "invalid_argument"  # runc refused the spec: missing executable, permission denied
UNKNOWN = "unknown"
ERROR_KINDS = (NOT_FOUND, ALREADY_EXISTS, NOT_RUNNING, INVALID, UNKNOWN)


class ShimError(Exception):
    """A command the shim refuses or that failed; replied as {"ok":false,"error","kind"}."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def encode(frame: Mapping[str, Any]) -> bytes:
    return json.dumps(frame, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError("frame is not an object")
    return obj


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text)
