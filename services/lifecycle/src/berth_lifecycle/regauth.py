"""Talking to a registry directly, with the client's credentials: push, login, private pulls.

dockerd's flow (distribution's registry/client/auth): a request without credentials; on a 401
the `WWW-Authenticate` challenge says how: `Basic` (send the user and password) or `Bearer
realm=...,service=...` (ask the realm for a token for the scopes, with the user and password,
or the identity token as an OAuth refresh token, then send the token). Credentials live in one
RegistrySession, for one request of one client: never stored, logged, or put in a span. A
redirect to another host (blob storage) goes without Authorization; a token realm must be http(s)
(https only from an https registry) and carry no user info.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from berth_common.hosts import is_loopback
from berth_contracts.errors import InternalError, InvalidParameter, Unavailable
from yarl import URL

DOCKER_HUB = "docker.io"
MAX_REDIRECTS = 5
MAX_TOKEN_RESPONSE = 1 << 20
_REDIRECTS = (301, 302, 303, 307, 308)
_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')
_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_read=120)
CLIENT_ID = "docker"  # what dockerd sends as the OAuth client_id


@dataclass(frozen=True)
class Credentials:
    """Docker's AuthConfig. The secrets are left out of repr, so a traceback never shows them."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    registry_token: str = field(default="", repr=False)
    server: str = ""

    @property
    def present(self) -> bool:
        return bool((self.username and self.password) or self.identity_token or self.registry_token)

    @classmethod
    def from_json(cls, doc: Any) -> Credentials:
        if not isinstance(doc, dict):
            return cls()
        user, password = str(doc.get("username") or ""), str(doc.get("password") or "")
        encoded = str(doc.get("auth") or "")
        if encoded and not (user and password):
            try:
                user, _, password = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                pass
        return cls(
            username=user,
            password=password,
            identity_token=str(doc.get("identitytoken") or ""),
            registry_token=str(doc.get("registrytoken") or ""),
            server=str(doc.get("serveraddress") or ""),
        )


def decode_registry_auth(header: str) -> Credentials:
    """X-Registry-Auth: base64url JSON (padding optional). Unreadable → none, as moby ignores an
    invalid AuthConfig "to increase compatibility with the existing API"."""
    if not header:
        return Credentials()
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        return Credentials.from_json(json.loads(raw))
    except (binascii.Error, ValueError):
        return Credentials()


def parse_login_body(body: bytes) -> Credentials:
    try:
        return Credentials.from_json(json.loads(body))
    except ValueError:
        raise InvalidParameter("invalid JSON body for /auth") from None


def registry_base(host: str) -> str:
    """The registry URL for a reference's domain: the same mapping registry-proxy uses
    (BERTH_REGISTRY_PROXY_DOCKER_HUB / _UPSTREAMS / _INSECURE; loopback is plain HTTP)."""
    if host in (DOCKER_HUB, "index.docker.io", "registry-1.docker.io"):
        return os.environ.get("BERTH_REGISTRY_PROXY_DOCKER_HUB", "https://registry-1.docker.io").rstrip("/")
    for item in os.environ.get("BERTH_REGISTRY_PROXY_UPSTREAMS", "").split(","):
        name, _, url = item.partition("=")
        if name.strip().lower() == host.lower() and url.strip():
            return url.strip().rstrip("/")
    insecure = {h.strip().lower() for h in os.environ.get("BERTH_REGISTRY_PROXY_INSECURE", "").split(",")}
    scheme = "http" if is_loopback(host) or host.lower() in insecure else "https"
    return f"{scheme}://{host}"


def hop_allowed(base: str, target: URL) -> bool:
    """A redirect or token realm: http(s), no downgrade from https, no user info."""
    if target.scheme not in ("http", "https") or not target.host:
        return False
    if urlsplit(base).scheme == "https" and target.scheme != "https":
        return False
    return target.user is None and target.password is None


class AuthFailed(InternalError):
    """The registry refused the credentials (or wants some): `message` in dockerd's words;
    `reason` without the request (what dockerd's push prints). A 500, as on dockerd."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


@dataclass
class RegistrySession:
    """One client request's conversation with one registry; `scopes` like
    `repository:alice/x:pull,push`."""

    host: str
    credentials: Credentials
    scopes: list[str] = field(default_factory=list)
    base: str = ""
    identity_token: str = ""  # the refresh token a login got back
    _authorization: str = field(default="", repr=False)
    _session: aiohttp.ClientSession | None = None

    def __post_init__(self) -> None:
        self.base = self.base or registry_base(self.host)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=_TIMEOUT, auto_decompress=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, data: Any = None
    ) -> aiohttp.ClientResponse:
        """`method` on base+path (path starts with /v2/); the response is open (caller closes).
        A 401 is answered once with the challenge's credentials; AuthFailed if still 401."""
        url = path if path.startswith("http") else self.base + path
        hdrs = dict(headers or {})
        if self._authorization:
            hdrs["Authorization"] = self._authorization
        resp = await self._send(method, url, hdrs, data)
        if resp.status == 401:
            challenge = resp.headers.get("WWW-Authenticate", "")
            body = await resp.read()
            resp.release()
            self._authorization = await self._authorize(challenge, method, url)
            hdrs["Authorization"] = self._authorization
            resp = await self._send(method, url, hdrs, data)
            if resp.status == 401:
                body = await resp.read()
                resp.release()
                raise AuthFailed(_registry_words(body) or "unauthorized: authentication required")
        return resp

    async def _send(self, method: str, url: str, headers: dict[str, str], data: Any) -> aiohttp.ClientResponse:
        origin = urlsplit(self.base).netloc
        for _ in range(MAX_REDIRECTS + 1):
            try:
                resp = await self.session.request(method, url, headers=headers, data=data, allow_redirects=False)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise Unavailable(f'{method.capitalize()} "{url}": {exc or type(exc).__name__}') from None
            if resp.status not in _REDIRECTS:
                return resp
            location = resp.headers.get("Location", "")
            resp.release()
            try:
                target = resp.url.join(URL(location)) if location else None
            except ValueError:
                target = None
            if target is None or not hop_allowed(self.base, target):
                raise Unavailable(f"registry {self.host} redirected to a URL that is not allowed")
            url = str(target)
            if urlsplit(url).netloc != origin:
                # Never send the credentials, or a token for them, to another host.
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        raise Unavailable(f"too many redirects from {self.host}")

    async def _authorize(self, challenge: str, method: str, url: str) -> str:
        scheme, _, params = challenge.partition(" ")
        creds = self.credentials
        if scheme.lower() == "basic":
            if not (creds.username and creds.password):
                raise AuthFailed(f'{method.capitalize()} "{url}": no basic auth credentials', "no basic auth credentials")
            return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        if scheme.lower() != "bearer":
            raise AuthFailed(f"unsupported authentication scheme from {self.host}: {scheme or 'none'}")
        if creds.registry_token:
            return f"Bearer {creds.registry_token}"
        fields = dict(_CHALLENGE_RE.findall(params))
        return f"Bearer {await self._token(fields)}"

    async def _token(self, fields: dict[str, str]) -> str:
        realm = fields.get("realm", "")
        try:
            realm_ok = bool(realm) and hop_allowed(self.base, URL(realm))
        except ValueError:
            realm_ok = False
        if not realm_ok:
            raise AuthFailed(f"the token realm of {self.host} is not an allowed URL")
        creds = self.credentials
        service = fields.get("service", "")
        scopes = self.scopes or ([fields["scope"]] if fields.get("scope") else [])
        if creds.identity_token:
            # OAuth refresh-token grant, as dockerd does with a stored identity token.
            form: dict[str, str] = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": CLIENT_ID,
                "service": service,
                "scope": " ".join(scopes),
            }
            doc = await self._token_request("POST", realm, {}, form)
        else:
            query: list[tuple[str, str]] = [("service", service)] if service else []
            query += [("scope", s) for s in scopes]
            headers = {}
            if creds.username and creds.password:
                basic = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
                headers["Authorization"] = f"Basic {basic}"
                query += [("offline_token", "true"), ("client_id", CLIENT_ID)]
            doc = await self._token_request("GET", f"{realm}?{urlencode(query)}" if query else realm, headers, None)
        self.identity_token = str(doc.get("refresh_token") or "")
        token = str(doc.get("token") or doc.get("access_token") or "")
        if not token:
            raise AuthFailed(f"no token in the answer of {realm}")
        return token

    async def _token_request(
        self, method: str, url: str, headers: dict[str, str], form: dict[str, str] | None
    ) -> dict[str, Any]:
        try:
            async with self.session.request(method, url, headers=headers, data=form, allow_redirects=False) as resp:
                raw = await resp.content.read(MAX_TOKEN_RESPONSE + 1)
                if resp.status == 401 or resp.status == 403:
                    raise AuthFailed(_registry_words(raw) or "unauthorized: incorrect username or password")
                if resp.status >= 400:
                    raise AuthFailed(f"token request to {urlsplit(url).netloc} failed: HTTP {resp.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unavailable(f"token request to {urlsplit(url).netloc}: {exc or type(exc).__name__}") from None
        if len(raw) > MAX_TOKEN_RESPONSE:
            raise AuthFailed(f"token response from {urlsplit(url).netloc} is too large")
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise AuthFailed(f"unreadable token response from {urlsplit(url).netloc}")
        return doc


def _registry_words(body: bytes) -> str:
    """`code: message` of a registry's first error, as distribution's errcode prints it."""
    try:
        err = json.loads(body)["errors"][0]
        code, message = str(err.get("code", "")).lower(), str(err.get("message", ""))
        return f"{code}: {message}" if code else message
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return ""


async def login(host: str, creds: Credentials) -> str:
    """dockerd's loginV2: GET /v2/ with the credentials; the identity token if one was issued."""
    session = RegistrySession(host, creds)
    url = f"{session.base}/v2/"
    try:
        try:
            resp = await session.request("GET", "/v2/")
        except AuthFailed:
            raise InternalError(f"login attempt to {url} failed with status: 401 Unauthorized") from None
        async with resp:
            if resp.status != 200:
                raise InternalError(f"login attempt to {url} failed with status: {resp.status} {resp.reason}")
        return session.identity_token
    finally:
        await session.close()
