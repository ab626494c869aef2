"""Jaeger's stand-in in CI (no image can be pulled): the test OTLP receiver in a container.

OTLP/HTTP on :4318 (as Jaeger's collector), and on :16686 (Jaeger's UI port) `GET /healthz` and
`GET /spans` (every span received, as JSON) for the test on the host.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from otlp_receiver import OtlpReceiver


def main() -> None:
    receiver = OtlpReceiver(host="0.0.0.0", port=4318).start()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/healthz":
                body = b"ok"
            elif self.path == "/spans":
                body = json.dumps([asdict(s) for s in receiver.spans]).encode()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("0.0.0.0", 16686), Handler)
    server.daemon_threads = True
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("otlp stand-in: OTLP/HTTP on :4318, spans on :16686/spans", flush=True)
    stop.wait()
    server.shutdown()
    receiver.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
