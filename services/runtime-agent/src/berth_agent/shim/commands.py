"""The shim's commands: what the agent may ask, by frame type (proto.py). Stdlib only.

A handler gets the request id and the frame and returns the reply's fields; None means it
replies itself (a delete answers once the init is reaped) or the frame is not a request (no rid).
A refusal or a runc failure is raised as proto.ShimError (RuncError is one) and replied with its
error kind, so the agent never reads the message to decide.
"""

from __future__ import annotations

from berth_agent.shim import proto

# typing costs memory in every shim; annotations are strings here, so import it for checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from berth_agent.shim.container import Shim

    Command = Callable[[int, dict[str, Any]], "dict[str, Any] | None"]


def command_table(shim: Shim) -> dict[str, Command]:
    return {
        "create": lambda rid, f: shim.create(rid, str(f.get("tp", "")), bool(f.get("start"))),
        "start": lambda rid, f: shim.start(rid, str(f.get("tp", ""))),
        "kill": lambda rid, f: shim.kill(int(f.get("sig", 15)), bool(f.get("all"))),
        "delete": lambda rid, f: shim.delete(rid, str(f.get("tp", ""))),
        "state": lambda rid, f: {"state": dict(shim.state)},
        "pause": lambda rid, f: shim.pause(True),
        "resume": lambda rid, f: shim.pause(False),
        "resize": lambda rid, f: shim.resize(int(f.get("h", 0)), int(f.get("w", 0))),
        "stdin": lambda rid, f: shim.stdin.write(proto.unb64(str(f.get("d", "")))),
        "stdin_close": lambda rid, f: shim.stdin.close(),
        "exec": lambda rid, f: shim.exec(f),
        "xstdin": lambda rid, f: shim.execs.write_stdin(
            str(f.get("eid")), proto.unb64(str(f.get("d", "")))
        ),
        "xstdin_close": lambda rid, f: shim.execs.close_stdin(str(f.get("eid"))),
        "xresize": lambda rid, f: shim.execs.resize(
            str(f.get("eid")), int(f.get("h", 0)), int(f.get("w", 0))
        ),
        "xack": lambda rid, f: shim.execs.acked(str(f.get("eid"))),
        # the agent's readers are a window behind: stop / go on reading those pipes
        "opause": lambda rid, f: shim.gate.hold(str(f.get("eid", "")), True),
        "oresume": lambda rid, f: shim.gate.hold(str(f.get("eid", "")), False),
    }


def dispatch(shim: Shim, frame: dict[str, Any]) -> None:
    """Run one frame from the agent and reply to it (frames with rid 0 get no reply)."""
    if shim.done:
        return
    kind = str(frame.get("t"))
    rid = int(frame.get("rid", 0))
    command = shim.commands.get(kind)
    try:
        if command is None:
            raise proto.ShimError(proto.INVALID, f"unknown shim command {kind!r}")
        fields = command(rid, frame)
    except proto.ShimError as exc:  # RuncError included
        if rid:
            shim.fail(rid, exc)
        return
    except Exception as exc:  # noqa: BLE001 - the shim must keep serving its container
        if rid:
            shim.fail(rid, proto.ShimError(proto.UNKNOWN, f"{type(exc).__name__}: {exc}"))
        return
    if rid and fields is not None:
        shim.reply(rid, **fields)
