"""TLS on the TCP listeners, and the refusal of plain TCP, as dockerd's --tls/--tlsverify.

dockerd's rules (moby daemon/command): --tlsverify, with any value, turns TLS on; --tls alone
also verifies clients, unless --tlsverify=false says otherwise; with verification a client must
present a certificate signed by --tlscacert (RequireAndVerifyClientCert). TLS applies to tcp://
hosts only, never to unix sockets. Plain TCP on an address that is not loopback is what dockerd
27 warns will become "a hard failure preventing the daemon from starting": berth refuses it,
unless TLS was explicitly turned off (--tls=false or --tlsverify=false, dockerd's override).

Environment (`berth up` sets it from its flags; the compose deployment sets it directly):
BERTH_TLS, BERTH_TLSVERIFY ("1"/"0", unset when not given), BERTH_TLSCACERT, BERTH_TLSCERT,
BERTH_TLSKEY (file paths). Standard library only: `berth up` checks its flags with it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TLS_ENV = "BERTH_TLS"
TLSVERIFY_ENV = "BERTH_TLSVERIFY"
CACERT_ENV = "BERTH_TLSCACERT"
CERT_ENV = "BERTH_TLSCERT"
KEY_ENV = "BERTH_TLSKEY"

# dockerd's words (daemon/command/daemon.go, loadListeners), as one refusal.
PLAIN_TCP_REFUSED = (
    "refusing to serve the API on {host}: binding to IP address without --tlsverify is insecure"
    " and gives root access on this machine to everyone who has access to your network.\n"
    "Please consider generating tls certificates with client validation to prevent exposing"
    " unauthenticated root access to your network.\n"
    "You can override this by explicitly specifying '--tls=false' or '--tlsverify=false'"
)


# dockerd's GET /info warnings for a TCP host without TLS or without client verification
# (daemon/info.go, fillAPIInfo).
_ATTACK_SURFACE = (
    "\n         Access to the remote API is equivalent to root access on the host. Refer"
    "\n         to the 'Docker daemon attack surface' section in the documentation for"
    "\n         more information: https://docs.docker.com/go/attack-surface/"
)
_REMOVAL = (
    "In future versions this will be a hard failure preventing the daemon from starting!"
    " Learn more at: https://docs.docker.com/go/api-security/"
)


class TLSConfigError(ValueError):
    """Settings that cannot be served; the message is shown as is."""


@dataclass(frozen=True)
class TLSSettings:
    tls: bool | None = None  # None: not given (dockerd's nil)
    verify: bool | None = None
    cacert: str = ""
    cert: str = ""
    key: str = ""

    @property
    def enabled(self) -> bool:
        return self.tls is True or self.verify is not None

    @property
    def verifies_clients(self) -> bool:
        # dockerd: TLSVerify defaults to TLS when not given.
        return self.enabled and self.verify is not False

    @property
    def mode(self) -> str:
        """How the tcp:// hosts speak: "" plain, "tls", or "verify" (client certificates)."""
        if not self.enabled:
            return ""
        return "verify" if self.verifies_clients else "tls"

    @property
    def explicit(self) -> bool:
        """Whether TLS was said on or off at all (dockerd's checkTLSAuthOK)."""
        return self.tls is not None or self.verify is not None

    def env(self) -> dict[str, str]:
        out = {CACERT_ENV: self.cacert, CERT_ENV: self.cert, KEY_ENV: self.key}
        if self.tls is not None:
            out[TLS_ENV] = "1" if self.tls else "0"
        if self.verify is not None:
            out[TLSVERIFY_ENV] = "1" if self.verify else "0"
        return out


def _flag(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    return value.lower() in ("1", "true", "yes")


def settings_from_env(env: Mapping[str, str] | None = None) -> TLSSettings:
    env = os.environ if env is None else env
    return TLSSettings(
        tls=_flag(env.get(TLS_ENV)),
        verify=_flag(env.get(TLSVERIFY_ENV)),
        cacert=env.get(CACERT_ENV, ""),
        cert=env.get(CERT_ENV, ""),
        key=env.get(KEY_ENV, ""),
    )


def server_context(settings: TLSSettings) -> ssl.SSLContext | None:
    """The TLS context of the tcp:// listeners; None without TLS. TLSConfigError says why the
    files cannot be used, in the words of dockerd's "invalid TLS configuration" errors."""
    if not settings.enabled:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # go-connections' server default
    try:
        ctx.load_cert_chain(settings.cert, settings.key)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(
            f"invalid TLS configuration: could not load X509 key pair"
            f" (cert: {settings.cert!r}, key: {settings.key!r}): {exc}"
        ) from None
    if settings.verifies_clients:
        try:
            ctx.load_verify_locations(cafile=settings.cacert)
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(
                f"invalid TLS configuration: could not read CA certificate {settings.cacert!r}:"
                f" {exc}"
            ) from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def is_loopback(hostname: str) -> bool:
    """dockerd's test: literal "localhost", a loopback IP, or a name that resolves to one."""
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_plain_tcp(tcp_hosts: Iterable[tuple[str, str]], settings: TLSSettings) -> None:
    """Refuse plain TCP on a non-loopback address unless TLS was explicitly turned off.

    tcp_hosts: (display form, hostname) pairs."""
    if settings.explicit:
        return
    for shown, hostname in tcp_hosts:
        if not is_loopback(hostname):
            raise TLSConfigError(PLAIN_TCP_REFUSED.format(host=shown))


def api_warnings(tcp_addresses: Iterable[str], settings: TLSSettings) -> tuple[str, ...]:
    """dockerd's /info Warnings for the tcp:// hosts (addresses as HOST:PORT)."""
    out = []
    for addr in tcp_addresses:
        if not settings.enabled:
            what = f"http://{addr} without encryption."
        elif not settings.verifies_clients:
            what = f"https://{addr} without TLS client verification."
        else:
            continue
        out.append(
            f"[DEPRECATION NOTICE]: API is accessible on {what}{_ATTACK_SURFACE}\n{_REMOVAL}"
        )
    return tuple(out)
