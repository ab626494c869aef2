"""The shim: one process per container, its parent, driving runc. Standard library only: every
shim is forked from the zygote, and what it imports, creates or first runs is memory each
container pays for (bench/README.md, item 4b): the zygote makes what it can once (zygote.preload),
and runc runs from a fork that takes its copies with it (runc.in_child).

| module | what it is |
|---|---|
| `zygote` | the pre-loaded process the agent runs once; forks one detached shim per request |
| `main` | the shim process: its name in `ps`, subreaper and signal set-up, life until exit |
| `container` | `Shim`: the container's init process (create, start, kill, pause, delete, exit) and the loop |
| `commands` | the agent's commands by frame type, and their dispatch with error kinds |
| `execs` | `docker exec` processes (`runc exec --detach`) and their exits |
| `link` | the agent connection: listening socket, frames out, frames in |
| `proto` | the wire: JSON lines, error kinds; `frames` declares its frames and the state as types |
| `runc` | runc sub-commands, each run from a short-lived fork of the shim, and their errors, classified once (`RuncError.kind`) |
| `stdio` | creating with pipes or a pty, reading output |
| `stdin` | feeding a process's stdin without blocking |
| `gate` | back-pressure: which output pipes are read now |
| `log` | Docker's json-file log |
| `mount` | mounting the rootfs from an OCI mount |
| `state` | `<bundle>/state.json`, and the cgroup facts read at exit (OOM kill) |
"""
