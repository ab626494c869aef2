"""Entry point of the `berth` command (also `python -m berth_cli`)."""

from __future__ import annotations

import sys
from pathlib import Path

from berth_cli import commands
from berth_cli.config import UsageError, build_parser, up_config


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        if ns.command == "up":
            return commands.up(up_config(ns))
        if ns.command == "down":
            return commands.down(Path(ns.exec_root).absolute(), ns.timeout)
        if ns.command == "bus-init":
            return commands.bus_init(Path(ns.dir).absolute(), tuple(ns.line))
        if ns.command == "status":
            return commands.status(Path(ns.exec_root).absolute(), ns.json)
    except (UsageError, ValueError) as exc:
        print(f"berth: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
