"""The small service kit every berth service uses: NATS, RPC dispatch, tracing, shutdown."""

import sys as _sys


def _import_nats_without_aiohttp() -> None:
    """Import nats-py's transport module with aiohttp hidden.

    nats-py imports aiohttp (and multidict) only for its websocket transport, which berth never
    uses (nats:// only); that import costs every process about 8 MiB of PSS and 0.2 s of start-up,
    although only the gateway, lifecycle and registry-proxy use aiohttp themselves (they import it
    on their own, unaffected: aiohttp is hidden only while nats' transport module loads).
    bench/README.md has the measurement.
    """
    if "nats.aio.transport" in _sys.modules or "aiohttp" in _sys.modules:
        return
    _sys.modules["aiohttp"] = None  # type: ignore[assignment]  # makes `import aiohttp` fail
    try:
        import nats.aio.transport  # noqa: F401
    except ImportError:
        pass
    finally:
        if _sys.modules.get("aiohttp", 0) is None:
            del _sys.modules["aiohttp"]


_import_nats_without_aiohttp()
