"""Talking to upstream registries: anonymous (or configured) bearer tokens, redirects, errors.

Credentials are only ever sent to the host they are configured for (and its token realm);
a redirect to another host (Docker Hub's CDN) is followed without Authorization. Redirects go
to http(s) only (https only from an https upstream), MAX_REDIRECTS deep; a 3xx is never content.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import aiohttp
from berth_common import bodies
from yarl import URL

from berth_registry_proxy.config import ProxyConfig
from berth_registry_proxy.errors import RegistryError, UpstreamUnavailable

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
# Response headers from upstreams: registries send a dozen; these bound what one may send.
MAX_RESPONSE_HEADERS = 100
MAX_HEADER_FIELD = 16 * 1024
MAX_TOKEN_RESPONSE = 1 << 20


def redirect_allowed(base: str, target: URL) -> bool:
    """A hop from the upstream `base` to `target`: http(s), no downgrade from https, no userinfo."""
    origin = urlsplit(base).scheme
    if target.scheme not in ("http", "https") or not target.host:
        return False
    if origin == "https" and target.scheme != "https":
        return False
    return target.user is None and target.password is None


@dataclass
class _Token:
    value: str
    expires: float


class Upstream:
    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self.config.connect_timeout, sock_read=self.config.read_timeout
        )
        connector = aiohttp.TCPConnector(limit=self.config.max_upstream_connections)
        self._session = aiohttp.ClientSession(
            timeout=timeout,
            auto_decompress=False,
            connector=connector,
            max_headers=MAX_RESPONSE_HEADERS,
            max_field_size=MAX_HEADER_FIELD,
            max_line_size=MAX_HEADER_FIELD,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "Upstream.start() first"
        return self._session

    async def request(
        self, method: str, host: str, repo: str, path: str, headers: dict[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        """`method` on <upstream of host>/v2/<repo>/<path>; the response is open (caller closes).

        Raises RegistryError for answers that are not 2xx (with the upstream's code when it
        sent one) and UpstreamUnavailable when it cannot be reached, is rate limited or 5xx.
        """
        base = self.config.base_url(host)
        url = f"{base}/v2/{repo}/{path}"
        hdrs = dict(headers or {})
        token = self._tokens.get((host, repo))
        if token and token.expires > time.monotonic():
            hdrs["Authorization"] = f"Bearer {token.value}"
        resp = await self._send(method, url, hdrs, base)
        if resp.status == 401:  # no token yet, or it expired early: ask once
            challenge = resp.headers.get("WWW-Authenticate", "")
            resp.release()
            auth = await self._authorize(host, repo, challenge)
            if auth:
                hdrs["Authorization"] = auth
                resp = await self._send(method, url, hdrs, base)
        if resp.status >= 400:
            await self._raise(resp, host)
        return resp

    async def _send(self, method: str, url: str, headers: dict[str, str], base: str) -> aiohttp.ClientResponse:
        origin = urlsplit(base).netloc
        for _ in range(MAX_REDIRECTS + 1):
            try:
                resp = await self.session.request(method, url, headers=headers, allow_redirects=False)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise UpstreamUnavailable(
                    "UNAVAILABLE", f'{method} "{url}": {exc or type(exc).__name__}', 503
                ) from None
            if 300 <= resp.status < 400:
                location = resp.headers.get("Location", "")
                status = resp.status
                resp.release()  # a redirect's body is never content
                try:
                    target = resp.url.join(URL(location)) if location else None
                except ValueError:
                    target = None
                if status not in _REDIRECTS or target is None:
                    raise RegistryError("UNKNOWN", f"upstream answered HTTP {status} without a usable Location", 502)
                if not redirect_allowed(base, target):
                    where = f"{target.scheme}://{target.host or ''}"  # no path: it may hold a signature
                    raise RegistryError("UNKNOWN", f"upstream redirected to {where}, which is not allowed", 502)
                url = str(target)
                if urlsplit(url).netloc != origin:
                    # Never forward credentials (ours or a token for them) to another host.
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                continue
            return resp
        raise RegistryError("UNKNOWN", f"too many redirects from {url}", 502)

    async def _authorize(self, host: str, repo: str, challenge: str) -> str:
        scheme, _, params = challenge.partition(" ")
        creds = self.config.credentials.get(host, "")
        basic = "Basic " + base64.b64encode(creds.encode()).decode() if creds else ""
        if scheme.lower() == "basic":
            return basic
        if scheme.lower() != "bearer":
            return ""
        fields = dict(_CHALLENGE_RE.findall(params))
        realm = fields.get("realm", "")
        if not realm:
            return ""
        try:
            realm_ok = redirect_allowed(self.config.base_url(host), URL(realm))
        except ValueError:
            realm_ok = False
        if not realm_ok:
            raise RegistryError("UNAUTHORIZED", "the upstream's token realm is not an allowed URL", 401)
        query = {"scope": f"repository:{repo}:pull"}
        if fields.get("service"):
            query["service"] = fields["service"]
        headers = {"Authorization": basic} if basic else {}
        try:
            async with self.session.get(f"{realm}?{urlencode(query)}", headers=headers) as resp:
                if resp.status >= 400:
                    raise RegistryError(
                        "UNAUTHORIZED", f"token request to {realm} failed: HTTP {resp.status}", 401
                    )
                raw = await read_limited(resp, MAX_TOKEN_RESPONSE)
                if len(raw) > MAX_TOKEN_RESPONSE:
                    raise RegistryError("UNAUTHORIZED", f"token response from {realm} is too large", 401)
                doc = json.loads(raw)
                if not isinstance(doc, dict):
                    raise ValueError("token response is not an object")
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise UpstreamUnavailable("UNAVAILABLE", f"token request to {realm}: {exc}", 503) from None
        value = str(doc.get("token") or doc.get("access_token") or "")
        expires_in = doc.get("expires_in")
        ttl = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else 60.0
        self._tokens[(host, repo)] = _Token(value, time.monotonic() + max(ttl - 10, 5))
        return f"Bearer {value}"

    async def _raise(self, resp: aiohttp.ClientResponse, host: str) -> None:
        status = resp.status
        retry = resp.headers.get("Retry-After", "")
        try:
            body = await read_limited(resp, 64 * 1024)
        except UpstreamUnavailable:
            body = b""
        finally:
            resp.release()
        code, message = _first_error(body)
        if status == 429:
            headers = {"Retry-After": retry} if retry else {}
            raise UpstreamUnavailable(
                "TOOMANYREQUESTS", message or f"{host}: too many requests", 429, headers
            )
        if status >= 500:
            raise UpstreamUnavailable("UNAVAILABLE", message or f"{host}: HTTP {status}", 503)
        if status == 401:
            raise RegistryError("UNAUTHORIZED", message or "authentication required", 401)
        raise RegistryError(code or ("NAME_UNKNOWN" if status == 404 else "UNKNOWN"), message or f"HTTP {status}", status)


def _first_error(body: bytes) -> tuple[str, str]:
    try:
        doc = json.loads(body)
        err = doc["errors"][0]
        return str(err.get("code", "")), str(err.get("message", ""))
    except (ValueError, KeyError, IndexError, TypeError):
        return "", body.decode("utf-8", "replace").strip()[:500]


async def read_limited(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or limit+1 bytes when it is longer (read(n) may return less than n).
    An upstream that stops sending (read timeout) or drops the connection is UNAVAILABLE."""
    try:
        return await bodies.read_limited(resp.content.iter_chunked(64 * 1024), limit)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise UpstreamUnavailable("UNAVAILABLE", f"reading from {resp.url.host}: {exc or type(exc).__name__}", 503) from None
