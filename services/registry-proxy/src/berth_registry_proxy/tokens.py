"""Docker's token flow, served by berth itself: `GET /token?service=&scope=` (basic auth or
anonymous) answers a JWT (HS256, signed with a key generated at first start and kept 0600 in the
data directory, never logged) whose `access` claim holds the granted part of each scope.

Clients never read the token: they send it back as `Authorization: Bearer`; only this proxy
verifies it, so a symmetric key is enough.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from anyio import to_thread

from berth_registry_proxy.access import Access, HostedConfig
from berth_registry_proxy.errors import RegistryError

KEY_FILE = "token-signing.key"
MAX_SCOPES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_key(data_dir: Path) -> bytes:
    """The signing key; created (0600, atomically) at first start."""
    path = data_dir / KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            os.chmod(path, 0o600)
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    tmp = data_dir / f".{KEY_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    os.replace(tmp, path)
    return key


class Tokens:
    def __init__(self, config: HostedConfig, access: Access, key: bytes) -> None:
        self.config = config
        self.access = access
        self._key = key

    def __repr__(self) -> str:  # the key stays out of any log line
        return "Tokens(<key>)"

    # --- JWT -------------------------------------------------------------------------------------

    def issue(self, claims: dict[str, Any]) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this proxy signed, unexpired and for this service; else None."""
        parts = token.split(".")
        if len(parts) != 3 or len(token) > 16384:
            return None
        expected = hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(expected, _unb64(parts[2])):
                return None
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
            return None
        now = time.time()
        if claims.get("aud") != self.config.service or not now < float(claims.get("exp", 0)):
            return None
        return claims

    def granted(self, request: web.Request, kind: str, name: str) -> frozenset[str]:
        """Actions the request's bearer token grants on `kind:name` (none without a valid token)."""
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer":
            return frozenset()
        claims = self.verify(token.strip())
        if claims is None:
            return frozenset()
        out: set[str] = set()
        for entry in claims.get("access") or ():
            if (isinstance(entry, dict) and entry.get("type") == kind
                    and self.own_name(str(entry.get("name", ""))) == name):
                out |= {a for a in entry.get("actions") or () if isinstance(a, str)}
        return frozenset(out)

    def subject(self, request: web.Request) -> str:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        claims = self.verify(token.strip()) if scheme.lower() == "bearer" else None
        return str(claims.get("sub", "")) if claims else ""

    # --- the challenge and the token endpoint ----------------------------------------------------

    def realm(self, request: web.Request) -> str:
        return self.config.realm or f"{request.scheme}://{request.host}/token"

    def challenge(self, request: web.Request, scope: str = "", message: str = "authentication required") -> RegistryError:
        value = f'Bearer realm="{self.realm(request)}",service="{self.config.service}"'
        if scope:
            value += f',scope="{scope}"'
        return RegistryError("UNAUTHORIZED", message, 401, {"WWW-Authenticate": value})

    def refused(self) -> web.Response:
        """Docker Hub's answer: the same words for an unknown user and a wrong password (dockerd
        shows `unauthorized: incorrect username or password` from `details`)."""
        words = "incorrect username or password"
        body = {"details": words, "errors": [{"code": "UNAUTHORIZED", "message": words, "detail": None}]}
        headers = {"WWW-Authenticate": f'Basic realm="{self.config.service}"'}
        return web.json_response(body, status=401, headers=headers)

    async def token(self, request: web.Request) -> web.Response:
        user = ""
        scheme, _, cred = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(cred.strip(), validate=True).decode().partition(":")
            except (ValueError, binascii.Error):
                user, password = "\0", ""
            ok = await to_thread.run_sync(self.access.check_password, user, password)
            if not ok:
                return self.refused()
        elif scheme:
            return self.refused()
        scopes = request.query.getall("scope", [])
        if len(scopes) > MAX_SCOPES:
            raise RegistryError("DENIED", "too many scopes", 400)
        access = []
        for scope in scopes:
            for entry in self._grant(user, scope):
                access.append(entry)
        now = int(time.time())
        claims = {
            "iss": self.config.service, "sub": user, "aud": self.config.service,
            "iat": now, "nbf": now - 1, "exp": now + self.config.token_ttl,
            "jti": secrets.token_hex(8), "access": access,
        }
        token = self.issue(claims)
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        body = {"token": token, "access_token": token, "expires_in": self.config.token_ttl, "issued_at": issued}
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    def _grant(self, user: str, scope: str) -> list[dict[str, Any]]:
        """`repository:<name>:<actions>` → the allowed part; `registry:catalog:*` → signed-in users."""
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        wanted = {a for a in actions.split(",") if a}
        if kind == "registry" and name == "catalog":
            # The catalog is filtered per caller, so anyone may ask for it.
            return [{"type": "registry", "name": "catalog", "actions": ["*"]}]
        if kind != "repository" or not name:
            return []
        repo = self.own_name(name)
        allowed = self.access.actions(user, repo)
        if "*" in wanted:
            wanted = set(allowed)
        given = sorted(wanted & allowed)
        return [{"type": "repository", "name": name, "actions": given}] if given else []

    def own_name(self, name: str) -> str:
        """A scope's name without berth's own address in front (`127.0.0.1:5000/alice/x`)."""
        first, sep, rest = name.partition("/")
        return rest if sep and first.lower() in self.config.addresses else name
