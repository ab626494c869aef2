"""berth_common is imported by the agent's shims and lifecycle's confined children: every one of
its modules must load with the standard library alone."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import berth_common


def test_every_module_imports_only_the_stdlib() -> None:
    modules = [f"berth_common.{m.name}" for m in pkgutil.iter_modules(berth_common.__path__)]
    code = (
        "import importlib, sys\n"
        "before = set(sys.modules)\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in set(sys.modules) - before\n"
        "             if m.split('.')[0] not in sys.stdlib_module_names | {'berth_common'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
