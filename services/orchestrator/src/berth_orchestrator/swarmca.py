"""The swarm's certificate authority: TLS on the managers' swarm and route ports.

As in swarmkit, `swarm init` makes a root CA (ECDSA P-256) and the join tokens' middle part is
its digest (`SWMTKN-1-<sha256 of the CA's PEM, base36>-<secret>`). A joining node fetches the
CA from the manager's swarm port and trusts it only when its digest is the token's: a node
never sends its join credentials to a server that the token does not name.

Only managers hold a certificate: their swarm servers present it to the nodes' links and to
each other's routes (mutual TLS). A node makes its own key and sends a certificate signing
request when it joins; the key never leaves it. A manager's request is signed at once, a
worker's when it is promoted. Workers authenticate with their passwords, inside TLS.

A certificate of the CA is not enough for a route: each manager's routes admit only the keys of
the managers in the state (`pinned_certs`, key_pin), so a demoted or removed manager, which
keeps its certificate, is refused once its server has left the managers' cluster.

The CA's key lives in the swarm's state (every manager signs), which only the orchestrator's
bus identity can read. A manager renews its own certificate at half its life, for the same key
(so its pin stays), and its server reloads it.
"""

from __future__ import annotations

import _ssl  # ENCODING_PEM, for the chain below (ssl re-exports it only from 3.13)
import base64
import datetime
import hashlib
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from berth_common.privatefile import write_private
from berth_contracts.errors import InvalidParameter, Unavailable
from berth_kit.swarmbus import TLS_CA, TLS_CERT, TLS_KEY
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from berth_orchestrator import ids
from berth_orchestrator.records import ClusterRecord, NodeRecord

CA_LIFETIME = datetime.timedelta(days=20 * 365)  # swarmkit's root CA default
# A manager's certificate lasts the swarm's `--cert-expiry` (CAConfig.NodeCertExpiry), 90 days
# unless set, at least an hour (swarmkit's bounds: specs.MIN_CERT_EXPIRY_NS), and is renewed
# at half its life.
DEFAULT_NODE_LIFETIME = datetime.timedelta(days=90)


def node_lifetime(swarm_spec: dict[str, object]) -> datetime.timedelta:
    """The certificates' lifetime a SwarmSpec sets (nanoseconds in CAConfig.NodeCertExpiry)."""
    ca = swarm_spec.get("CAConfig")
    nanos = ca.get("NodeCertExpiry") if isinstance(ca, dict) else None
    if not isinstance(nanos, int) or nanos <= 0:
        return DEFAULT_NODE_LIFETIME
    return datetime.timedelta(microseconds=nanos // 1000)


def renewal_due(cert_pem: str, now: datetime.datetime | None = None) -> bool:
    """Whether half the certificate's life has gone (swarmkit renews at a random point between
    half and four fifths of it)."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return (now or datetime.datetime.now(datetime.UTC)) >= start + (end - start) / 2


def expires(cert_pem: str) -> datetime.datetime:
    return x509.load_pem_x509_certificate(cert_pem.encode()).not_valid_after_utc


def digest(ca_pem: str) -> str:
    """The tokens' middle part: the CA PEM's sha256 in base36, 50 characters (swarmkit's)."""
    return ids.base36(int(hashlib.sha256(ca_pem.encode()).hexdigest(), 16), 50)


def digest_hex(token_digest: str) -> str:
    """The base36 digest as swarmkit's error shows it (hex)."""
    return f"{int(token_digest, 36):064x}"


def key_pin(cert_pem: str) -> str:
    """What nats-server's `pinned_certs` lists: the sha256 (hex) of the certificate's public
    key (DER SubjectPublicKeyInfo), so a pin names a node's key, whatever signs it."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def new_ca() -> tuple[str, str]:
    """(certificate PEM, key PEM) of a new root CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swarm-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                decipher_only=False,
            ),  # fmt: skip
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _pem(cert), _key_pem(key)


def tls_info(ca_pem: str) -> dict[str, str]:
    """The Engine API's TLSInfo (`docker swarm ca`, a node's inspect): the root CA, and its
    subject and public key (DER, base64) as swarmkit shows a certificate's issuer."""
    if not ca_pem:
        return {"TrustRoot": "", "CertIssuerSubject": "", "CertIssuerPublicKey": ""}
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    key = ca.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        "TrustRoot": ca_pem,
        "CertIssuerSubject": base64.b64encode(ca.subject.public_bytes()).decode(),
        "CertIssuerPublicKey": base64.b64encode(key).decode(),
    }


def new_key_and_request(names: list[str]) -> tuple[str, str]:
    """(key PEM, certificate signing request PEM) naming this node's addresses and hostnames."""
    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swarm-node")]))
        .add_extension(x509.SubjectAlternativeName(_alt_names(names)), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _key_pem(key), request.public_bytes(serialization.Encoding.PEM).decode()


def sign_manager(cluster: ClusterRecord, node: NodeRecord) -> str:
    """The node's manager certificate, for its recorded request, lasting the swarm's expiry."""
    return sign(cluster.ca_cert, cluster.ca_key, node.cert_request, node.id, cluster.id, node_lifetime(cluster.spec))


def _alt_names(names: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in dict.fromkeys(n for n in names if n):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def checked_request(request_pem: str) -> str:
    """A node's certificate signing request, if it is one (it is kept in the node's record)."""
    _request(request_pem)
    return request_pem


def _request(request_pem: str) -> x509.CertificateSigningRequest:
    if len(request_pem) > 16384:
        raise InvalidParameter("invalid certificate signing request: too large")
    try:
        request = x509.load_pem_x509_csr(request_pem.encode())
    except ValueError:
        raise InvalidParameter("invalid certificate signing request") from None
    if not request.is_signature_valid:
        raise InvalidParameter("invalid certificate signing request: bad signature")
    return request


def sign(
    ca_pem: str, ca_key_pem: str, request_pem: str, node_id: str, cluster_id: str,
    lifetime: datetime.timedelta = DEFAULT_NODE_LIFETIME,
) -> str:  # fmt: skip
    """A manager's certificate (server and client: its routes are mutual TLS), for the key
    and the names of a request checked here: only IP addresses and DNS names."""
    request = _request(request_pem)
    try:
        names = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise InvalidParameter("invalid certificate signing request: no addresses") from None
    allowed = [n for n in names if isinstance(n, x509.IPAddress | x509.DNSName)]
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "swarm-manager"),
            x509.NameAttribute(NameOID.COMMON_NAME, node_id),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(request.public_key())  # type: ignore[arg-type]  # an EC key: checked by signing
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + lifetime, ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.SubjectAlternativeName(allowed), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _pem(cert)


def local_names(*extra: str) -> list[str]:
    """What a manager's certificate names: the addresses given, this host's addresses (a node
    may be given any of them to join through) and its hostname."""
    names = [h for h in extra if h and h not in ("0.0.0.0", "::")]
    try:
        out = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, timeout=5, check=True).stdout
        for link in json.loads(out):
            names += [a["local"] for a in link.get("addr_info", []) if a.get("local")]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        pass  # the given addresses still make a usable certificate
    names.append(socket.gethostname())
    return names


@dataclass(frozen=True)
class NodeTLS:
    """This node's TLS files, in the bus directory (mode 0700): the CA, and a manager's
    certificate (with the CA after it) and key (0600)."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / TLS_CA

    @property
    def cert(self) -> Path:
        return self.dir / TLS_CERT

    @property
    def key(self) -> Path:
        return self.dir / TLS_KEY

    def write_ca(self, ca_pem: str) -> None:
        self._write(self.ca, ca_pem)

    def write_key(self, key_pem: str) -> None:
        self._write(self.key, key_pem)

    def write_cert(self, cert_pem: str, ca_pem: str) -> None:
        self._write(self.ca, ca_pem)
        self._write(self.cert, cert_pem + ca_pem)

    def has_cert(self) -> bool:
        return self.cert.exists() and self.key.exists()

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _write(self, path: Path, text: str) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(path, text)


def fetch_remote_ca(addr: tuple[str, int], token_digest: str, timeout: float) -> str:
    """The CA that the swarm port at addr presents, if its digest is the token's (swarmkit's
    GetRemoteCA). The chain is read without verification, then pinned to the token."""
    chain = presented_chain(addr, timeout)
    if not chain:
        raise Unavailable(f"the swarm port at {addr[0]}:{addr[1]} presented no certificate")
    # Re-encoded as this module writes PEM, so both ends digest the same bytes. The server's
    # own certificate is not checked here: the link that carries credentials verifies it.
    ca_pem = _pem(x509.load_pem_x509_certificate(chain[-1].encode()))
    if digest(ca_pem) != token_digest:
        raise InvalidParameter(f"remote CA does not match fingerprint. Expected: {digest_hex(token_digest)}")
    return ca_pem


def presented_chain(addr: tuple[str, int], timeout: float) -> list[str]:
    """The certificates (PEM, leaf first) that the swarm port at addr presents, unverified. The
    port is a NATS leafnode listener: its INFO line first, then TLS."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(addr, timeout=timeout) as raw:
        info = _read_line(raw, deadline)
        try:
            offered = info.startswith(b"INFO ") and bool(json.loads(info[5:]).get("tls_required"))
        except (ValueError, AttributeError):
            offered = False
        if not offered:
            raise Unavailable(
                f"the swarm port at {addr[0]}:{addr[1]} does not offer TLS (a swarm made by an older berth, or "
                "not a berth swarm port)"
            )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # pinned below, to the token's digest
        raw.settimeout(max(0.1, deadline - time.monotonic()))
        with context.wrap_socket(raw, server_hostname=addr[0]) as tls:
            return _unverified_chain(tls)


def route_admits(addr: tuple[str, int], tls: NodeTLS, timeout: float) -> bool | None:
    """Whether the route port at addr admits this node's certificate (its key pinned there):
    nats-server then introduces itself. False when it refuses it, None when the port does
    not answer (a server restarting)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the chain is what matters here, not the name dialled
    context.load_verify_locations(str(tls.ca))
    context.load_cert_chain(str(tls.cert), str(tls.key))
    try:
        raw = socket.create_connection(addr, timeout=timeout)
    except OSError:
        return None
    try:
        with context.wrap_socket(raw) as conn:
            return conn.recv(5) == b"INFO "
    except OSError:  # ssl.SSLError too: refused during or right after the handshake
        return False
    finally:
        raw.close()


def _read_line(sock: socket.socket, deadline: float) -> bytes:
    buf = b""
    while not buf.endswith(b"\r\n"):
        if len(buf) > 65536 or time.monotonic() > deadline:
            raise ConnectionError("the swarm port did not introduce itself")
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the swarm port closed the connection")
        buf += chunk
    return buf.rstrip(b"\r\n")


def _unverified_chain(tls: ssl.SSLSocket) -> list[str]:
    """The certificates the peer sent, leaf first. Public from Python 3.13; the same method of
    the SSL object in 3.10-3.12."""
    get = getattr(tls, "get_unverified_chain", None) or tls._sslobj.get_unverified_chain  # type: ignore[attr-defined]
    return [c.public_bytes(_ssl.ENCODING_PEM) for c in get() or []]
