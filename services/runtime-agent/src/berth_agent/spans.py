"""Re-emitting the spans a shim recorded, as service berth-shim, under the agent's request spans."""

from __future__ import annotations

from berth_kit.tracing import context_from_traceparent, make_tracer_provider
from opentelemetry.sdk.trace import TracerProvider

from berth_agent.shim.frames import Span


class ShimSpans:
    def __init__(self) -> None:
        self.provider: TracerProvider = make_tracer_provider("berth-shim")
        self._tracer = self.provider.get_tracer("berth-shim")

    def emit(self, frame: Span) -> None:
        attrs = {k: v for k, v in frame["attrs"].items() if isinstance(v, str | int | float | bool)}
        span = self._tracer.start_span(
            frame["name"],
            context=context_from_traceparent(frame["tp"]),
            start_time=frame["start"] or None,
            attributes=attrs,
        )
        span.end(end_time=frame["end"] or None)

    def shutdown(self) -> None:
        self.provider.force_flush(timeout_millis=5000)
        self.provider.shutdown()
