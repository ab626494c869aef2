"""Re-emitting the spans a shim recorded, as service berth-shim, under the agent's request spans."""

from __future__ import annotations

from typing import Any

from berth_kit.tracing import context_from_traceparent, make_tracer_provider
from opentelemetry.sdk.trace import TracerProvider


class ShimSpans:
    def __init__(self) -> None:
        self.provider: TracerProvider = make_tracer_provider("berth-shim")
        self._tracer = self.provider.get_tracer("berth-shim")

    def emit(self, frame: dict[str, Any]) -> None:
        attrs = {
            str(k): v
            for k, v in dict(frame.get("attrs") or {}).items()
            if isinstance(v, str | int | float | bool)
        }
        span = self._tracer.start_span(
            str(frame.get("name", "shim")),
            context=context_from_traceparent(str(frame.get("tp", ""))),
            start_time=int(frame.get("start", 0)) or None,
            attributes=attrs,
        )
        span.end(end_time=int(frame.get("end", 0)) or None)

    def shutdown(self) -> None:
        self.provider.force_flush(timeout_millis=5000)
        self.provider.shutdown()
