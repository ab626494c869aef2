"""`python -m berth_agent`: the runtime agent service."""

from __future__ import annotations

from berth_kit.service import run_service

from berth_agent.service import main as service_main


def main() -> None:
    run_service("berth-runtime-agent", service_main)


if __name__ == "__main__":
    main()
