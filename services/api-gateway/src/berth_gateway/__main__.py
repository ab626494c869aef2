"""`python -m berth_gateway`: run the api-gateway service."""

from __future__ import annotations

from berth_kit.service import run_service

from berth_gateway.server import SERVICE_NAME, serve


def main() -> None:
    run_service(SERVICE_NAME, serve)


if __name__ == "__main__":
    main()
