"""`POST /auth` and `GET /distribution/{name}/json` on lifecycle's side.

RegistryLogin / DistributionInspect hand out a single-use URL; the gateway POSTs the client's
credentials there (the AuthConfig body, or X-Registry-Auth), so they never cross NATS. They are
used for that one exchange with the registry and dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from aiohttp import web
from berth_common.refgrammar import is_domain
from berth_common.tokens import Tokens
from berth_contracts.distribution import REGISTRY_AUTH_HEADER, DistributionInspect
from berth_contracts.errors import InvalidParameter

from berth_lifecycle.push import Pusher
from berth_lifecycle.reference import Reference, parse_normalized_named
from berth_lifecycle.regauth import Credentials, decode_registry_auth, login, parse_login_body
from berth_lifecycle.registry import DirectRegistryClient, RegistryClient, proxy_url

MAX_LOGIN_BODY = 64 * 1024
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io")


def login_host(server: str) -> str:
    """serveraddress as the CLI sends it (`https://index.docker.io/v1/`, `host:port`, a URL)."""
    host = _SCHEME_RE.sub("", server.strip()).split("/", 1)[0].lower()
    if not host or host in _HUB_NAMES:
        return "docker.io"
    if not is_domain(host):
        raise InvalidParameter(f"invalid registry address {server!r}")
    return host


def registry_client(ref: Reference, credentials: Credentials) -> RegistryClient:
    """Anonymous reads go through registry-proxy (cached); with credentials straight to the
    registry, so private content never enters the proxy's shared cache."""
    if credentials.present:
        return DirectRegistryClient(ref.domain, credentials)
    return RegistryClient(proxy_url())


def _json_line(doc: dict[str, Any]) -> web.Response:
    return web.Response(body=json.dumps(doc, separators=(",", ":")).encode(), content_type="application/json")


class Sharing:
    def __init__(self, pusher: Pusher) -> None:
        self.pusher = pusher
        self._logins: Tokens[bool] = Tokens()
        self._inspects: Tokens[Reference] = Tokens()

    def routes(self) -> list[tuple[str, Any]]:
        return [
            ("/logins/{token}", self.handle_login),
            ("/distribution/{token}", self.handle_inspect),
            ("/pushes/{token}", self.pusher.handle),
        ]

    def login_url(self, base_url: str) -> str:
        return f"{base_url}/logins/{self._logins.issue(True)}"

    def inspect_url(self, cmd: DistributionInspect, base_url: str) -> str:
        ref = parse_normalized_named(cmd.ref)
        if not ref.digest:
            ref = ref.with_default_tag()
        return f"{base_url}/distribution/{self._inspects.issue(ref)}"

    async def handle_login(self, request: web.Request) -> web.StreamResponse:
        if self._logins.take(request.match_info["token"]) is None:
            return web.json_response({"message": "login URL unknown, used or expired"}, status=404)
        body = await request.content.read(MAX_LOGIN_BODY + 1)
        if len(body) > MAX_LOGIN_BODY:
            raise InvalidParameter("/auth body is too large")
        credentials = parse_login_body(body)
        identity_token = await login(login_host(credentials.server), credentials)
        return _json_line({"IdentityToken": identity_token, "Status": "Login Succeeded"})

    async def handle_inspect(self, request: web.Request) -> web.StreamResponse:
        ref = self._inspects.take(request.match_info["token"])
        if ref is None:
            return web.json_response({"message": "distribution URL unknown, used or expired"}, status=404)
        await request.read()
        client = registry_client(ref, decode_registry_auth(request.headers.get(REGISTRY_AUTH_HEADER, "")))
        try:
            body, media = await client.manifest(ref, ref.digest or ref.tag)
            doc = json.loads(body)
            media = doc.get("mediaType") or media
            platforms: list[dict[str, Any]] = []
            if "manifests" in doc:
                platforms = [dict(m["platform"]) for m in doc["manifests"] if isinstance(m.get("platform"), dict)]
            elif isinstance(doc.get("config"), dict):
                config = json.loads(await client.blob_bytes(ref, str(doc["config"].get("digest", ""))))
                platform = {"architecture": config.get("architecture", ""), "os": config.get("os", "")}
                for key in ("os.version", "variant"):
                    if config.get(key):
                        platform[key] = config[key]
                platforms = [platform]
        finally:
            await client.close()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        descriptor = {"mediaType": media, "digest": digest, "size": len(body)}
        return _json_line({"Descriptor": descriptor, "Platforms": platforms})
