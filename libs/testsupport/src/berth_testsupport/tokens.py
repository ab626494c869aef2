"""Test helper: Debian's docker-registry with Docker's bearer-token auth, and its token server.

`token_registry(users)` starts a token server on loopback (the realm: checks HTTP basic auth,
or an OAuth refresh token it issued, and answers a JWT signed RS256 with a key made by openssl,
its certificate in the `x5c` header) and a docker-registry that trusts that certificate. So a
client does what it does against Docker Hub: 401 with `WWW-Authenticate: Bearer realm=...`,
token request, Bearer request. Every token grants what it asks for (push and pull) to a known
user; anonymous requests get a token with no access.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import secrets
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from berth_testsupport.registry import REGISTRY_BINARY, free_port, stop_process, wait_http

SERVICE = "berth-test-registry"
ISSUER = "berth-test-issuer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    users: dict[str, str]
    key: Path
    cert_der: bytes
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token → user
    requests: list[dict[str, str]] = field(default_factory=list)  # what was asked (no secrets)

    def jwt(self, user: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository" and user:
                access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        claims = {
            "iss": ISSUER, "sub": user, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": secrets.token_hex(8), "access": access,
        }
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing_input.encode(), capture_output=True, check=True, timeout=30,
        ).stdout
        return f"{signing_input}.{_b64(signature)}"

    def answer(self, user: str, scopes: list[str], offline: bool) -> dict[str, object]:
        token = self.jwt(user, scopes)
        doc: dict[str, object] = {"token": token, "access_token": token, "expires_in": 300}
        if offline and user:
            refresh = secrets.token_urlsafe(16)
            self.refresh_tokens[refresh] = user
            doc["refresh_token"] = refresh
        return doc


def _handler(server: TokenServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, doc: dict[str, object]) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _basic_user(self) -> str | None:
            """'' anonymous, the user name, or None for wrong credentials."""
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Basic "):
                return ""
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            return user if server.users.get(user) == password and password else None

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            query = parse_qs(urlsplit(self.path).query)
            user = self._basic_user()
            server.requests.append({"method": "GET", "user": user or "", "scope": " ".join(query.get("scope", []))})
            if user is None:
                self._send(401, {"errors": [{"code": "UNAUTHORIZED", "message": "incorrect username or password"}]})
                return
            offline = query.get("offline_token", [""])[0] == "true"
            self._send(200, server.answer(user, query.get("scope", []), offline))

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            grant = form.get("grant_type", [""])[0]
            server.requests.append({"method": "POST", "grant": grant, "scope": " ".join(form.get("scope", []))})
            if grant == "refresh_token":
                user = server.refresh_tokens.get(form.get("refresh_token", [""])[0])
            elif grant == "password":
                name, password = form.get("username", [""])[0], form.get("password", [""])[0]
                user = name if password and server.users.get(name) == password else None
            else:
                user = None
            if not user:
                self._send(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid grant"}]})
                return
            scopes = " ".join(form.get("scope", [])).split()
            self._send(200, server.answer(user, scopes, offline=grant == "password"))

    return Handler


@contextlib.contextmanager
def token_registry(users: dict[str, str]) -> Iterator[tuple[str, TokenServer]]:
    """A docker-registry asking for bearer tokens from a token server; yields (registry URL,
    the token server)."""
    with tempfile.TemporaryDirectory(prefix="berth-token-registry-") as tmp:
        key, cert = Path(tmp) / "key.pem", Path(tmp) / "cert.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-days", "2", "-subj", "/CN=berth-test-token-issuer"],
            capture_output=True, check=True, timeout=60,
        )
        der = subprocess.run(
            ["openssl", "x509", "-in", str(cert), "-outform", "DER"], capture_output=True, check=True, timeout=30
        ).stdout
        tokens = TokenServer(dict(users), key, der)
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(tokens))
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        realm = f"http://127.0.0.1:{httpd.server_address[1]}/token"
        port = free_port()
        cfg = Path(tmp) / "config.yml"
        cfg.write_text(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {tmp}/data\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
            f"auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
            f"    rootcertbundle: {cert}\n"
        )
        proc = subprocess.Popen([REGISTRY_BINARY, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://127.0.0.1:{port}/v2/")
            yield f"http://127.0.0.1:{port}", tokens
        finally:
            stop_process(proc)
            httpd.shutdown()
            httpd.server_close()
            thread.join(10)
