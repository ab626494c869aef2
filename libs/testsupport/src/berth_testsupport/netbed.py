"""Several hosts on one machine: network namespaces made by the test, joined by a bridge that
lives in a namespace of its own (so no host firewall rule sees their traffic), each with one
address on 10.213.<n>.0/24. Each node's berth runs inside its namespace (`enter`).

Only the network is separate: `/sys/class/net` still shows the machine's interfaces (nsenter
does not remount sysfs, and a sysfs of its own would hide the cgroup tree runc needs), so the
runtime-agent's bridge "keeper" check misreads and logs "no keeper for network" on the nodes;
their networks work, bridges are only rebuilt more often than on a real host."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@dataclass
class NetBed:
    nodes: int
    prefix: str = field(default_factory=lambda: f"bsw{os.getpid() % 100000}")
    subnet: int = field(default_factory=lambda: 100 + os.getpid() % 100)
    made: list[str] = field(default_factory=list)

    @property
    def hub(self) -> str:
        return f"{self.prefix}h"

    def node(self, i: int) -> str:
        return f"{self.prefix}n{i}"

    def addr(self, i: int) -> str:
        return f"10.213.{self.subnet}.{i + 1}"

    def __enter__(self) -> NetBed:
        try:
            self._make(self.hub)
            _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.hub, "link", "set", "br0", "up")
            for i in range(self.nodes):
                ns = self.node(i)
                self._make(ns)
                _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"p{i}", "netns", self.hub)
                _ip("-n", self.hub, "link", "set", f"p{i}", "master", "br0", "up")
                _ip("-n", ns, "addr", "add", f"{self.addr(i)}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def _make(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self.made.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def __exit__(self, *_: object) -> None:
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self.made.clear()

    def enter(self, i: int) -> list[str]:
        """The command prefix that runs a program in node i's network namespace (only the
        network: files, mounts and processes stay the machine's, as on separate hosts)."""
        return ["nsenter", f"--net=/run/netns/{self.node(i)}"]
