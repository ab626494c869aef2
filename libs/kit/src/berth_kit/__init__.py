"""The small service kit every berth service uses: NATS, RPC dispatch, tracing, shutdown."""

import sys as _sys


class _NatsTransportWithoutAiohttp:
    """Meta-path hook: load nats-py's transport module with aiohttp hidden.

    nats-py imports aiohttp (and multidict) only for its websocket transport, which berth never
    uses (nats:// only); that import costs every process about 8 MiB of PSS and 0.2 s of start-up,
    although only the gateway, lifecycle and registry-proxy use aiohttp themselves (they import it
    on their own, unaffected: aiohttp is hidden only while nats' transport module executes, and
    not at all once a process has imported aiohttp). A hook rather than an import here, so that
    importing a stdlib-only kit module (berth_kit.testing) does not import nats.
    bench/README.md has the measurement.
    """

    def find_spec(self, name: str, path: object, target: object = None) -> object:
        if name != "nats.aio.transport" or "aiohttp" in _sys.modules:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)  # type: ignore[arg-type]
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_without_aiohttp(module: object) -> None:
            hidden = "aiohttp" not in _sys.modules
            if hidden:
                _sys.modules["aiohttp"] = None  # type: ignore[assignment]  # `import aiohttp` fails
            try:
                exec_module(module)
            finally:
                if hidden and _sys.modules.get("aiohttp", 0) is None:
                    del _sys.modules["aiohttp"]

        loader.exec_module = exec_without_aiohttp
        return spec


if not any(isinstance(f, _NatsTransportWithoutAiohttp) for f in _sys.meta_path):
    _sys.meta_path.insert(0, _NatsTransportWithoutAiohttp())  # type: ignore[arg-type]
