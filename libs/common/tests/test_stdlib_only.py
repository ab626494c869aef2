"""berth_common is imported by the agent's shims and lifecycle's confined children: every one of
its modules must load with the standard library alone."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import textwrap

import berth_common

PROBE = textwrap.dedent(
    """
    import importlib, sys
    before = set(sys.modules)
    for name in sys.argv[1:]:
        importlib.import_module(name)
    allowed = sys.stdlib_module_names | {"berth_common"}
    print(",".join(sorted(m for m in set(sys.modules) - before if m.split(".")[0] not in allowed)))
    """
)


def test_every_module_imports_only_the_stdlib() -> None:
    modules = [f"berth_common.{m.name}" for m in pkgutil.iter_modules(berth_common.__path__)]
    assert len(modules) >= 6
    probe = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == ""
