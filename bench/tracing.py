"""Where the time of one `docker run` goes: a berth exporting its spans over OTLP/HTTP to a
small receiver here, and the spans of each run grouped and printed as medians and as a tree."""

from __future__ import annotations

import gzip
import statistics
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from engines import berth_running, time_run


class Collector:
    """A minimal OTLP/HTTP (protobuf) trace receiver on 127.0.0.1."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        self.spans: list[dict[str, object]] = []
        lock = threading.Lock()
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                req = trace_service_pb2.ExportTraceServiceRequest()
                req.ParseFromString(body)
                with lock:
                    for rs in req.resource_spans:
                        svc = next(
                            (
                                a.value.string_value
                                for a in rs.resource.attributes
                                if a.key == "service.name"
                            ),
                            "?",
                        )
                        for ss in rs.scope_spans:
                            for s in ss.spans:
                                spans.append(
                                    {
                                        "service": svc,
                                        "name": s.name,
                                        "trace": s.trace_id.hex(),
                                        "id": s.span_id.hex(),
                                        "parent": s.parent_span_id.hex(),
                                        "start": s.start_time_unix_nano / 1e9,
                                        "end": s.end_time_unix_nano / 1e9,
                                    }
                                )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def trace_breakdown(base: Path, tar: Path, runs: int, run_args: tuple[str, ...]) -> str:
    collector = Collector()
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    try:
        with berth_running(base, otel) as berth:
            berth.docker("import", str(tar), "busybox:latest")
            time_run(berth, run_args)
            time.sleep(1.5)
            collector.spans.clear()
            walls = []
            for _ in range(runs):
                walls.append(time_run(berth, run_args))
                time.sleep(0.3)
            time.sleep(2.0)
            spans = list(collector.spans)
    finally:
        collector.close()
    return render_breakdown(spans, walls, run_args)


def render_breakdown(
    spans: list[dict[str, object]], walls: list[float], run_args: tuple[str, ...]
) -> str:
    """Per-span medians over the runs, and one run as a tree.

    The docker CLI sends no trace context, so each of its requests starts a trace of its own; the
    spans of one `docker run` are those from one `HEAD /_ping` (the CLI's first request) to the next.
    """
    spans = sorted(spans, key=lambda s: float(s["start"]))  # type: ignore[arg-type]
    runs: list[list[dict[str, object]]] = []
    for s in spans:
        if s["name"] == "HEAD /_ping" or not runs:
            runs.append([])
        runs[-1].append(s)
    lines = [
        f"`docker run --rm {' '.join(run_args)} echo hello` against a berth exporting spans, {len(walls)} runs, "
        f"wall median {statistics.median(walls) * 1000:.0f} ms ({len(spans)} spans).",
        "",
        "| starts at ms (median) | lasts ms (median) | service | span |",
        "|---:|---:|---|---|",
    ]
    stats: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for run in runs:
        t0 = float(run[0]["start"])  # type: ignore[arg-type]
        seen: set[tuple[str, str]] = set()
        for s in run:
            key = (str(s["service"]), str(s["name"]))
            if key in seen:  # repeated spans (e.g. ContainerResolve): the first one
                continue
            seen.add(key)
            start, end = float(s["start"]), float(s["end"])  # type: ignore[arg-type]
            stats[key].append((start - t0, end - start))
    for (svc, name), vals in sorted(
        stats.items(), key=lambda kv: statistics.median(o for o, _ in kv[1])
    ):
        lines.append(
            f"| {statistics.median(o for o, _ in vals) * 1000:.1f} | "
            f"{statistics.median(d for _, d in vals) * 1000:.1f} | {svc} | `{name}` |"
        )
    if not runs:
        return "\n".join(lines)
    example = sorted(runs, key=len)[len(runs) // 2]
    t0 = float(example[0]["start"])  # type: ignore[arg-type]
    ids = {s["id"] for s in example}
    kids: dict[str, list[dict[str, object]]] = defaultdict(list)
    for s in example:
        kids[str(s["parent"]) if s["parent"] in ids else ""].append(s)
    lines += ["", "One run as a tree (start ms, +duration ms, service: span):", "", "```"]

    def walk(parent: str, depth: int) -> None:
        for s in kids.get(parent, []):
            start, end = float(s["start"]), float(s["end"])  # type: ignore[arg-type]
            lines.append(
                f"{(start - t0) * 1000:7.1f} +{(end - start) * 1000:6.1f}  "
                f"{'  ' * depth}{s['service']}: {s['name']}"
            )
            walk(str(s["id"]), depth + 1)

    walk("", 0)
    lines.append("```")
    return "\n".join(lines)
