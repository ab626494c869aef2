"""The engine's one register() answers every member of EngineRequest (the kit refuses to start
an RpcServer that does not)."""

from typing import Any

from berth_contracts.engine import EngineRequest
from berth_engine.wiring import Services, register
from berth_kit.rpc import RpcServer


class _AnyService:
    """Stands in for each service object: register() only takes their bound methods."""

    def __getattr__(self, name: str) -> Any:
        async def handler(cmd: object) -> None:
            raise AssertionError(f"{name} called")

        return handler


def test_every_engine_request_has_a_handler() -> None:
    unused: Any = None
    server = RpcServer(unused, "engine.rpc", EngineRequest)
    assert "ContainerCreate" in server.unhandled()  # the check sees the whole union
    fields = {name: _AnyService() for name in Services.__dataclass_fields__}
    register(server, Services(**fields))
    assert server.unhandled() == []
