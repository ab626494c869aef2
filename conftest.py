"""What every test directory shares (pytest loads this for all of them)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, the loop the services run on (uvloop's, in production)."""
    return "asyncio"
