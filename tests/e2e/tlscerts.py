"""Certificates for the TLS tests, made with the openssl CLI as Docker's "protect the daemon
socket" recipe makes them: a CA, a server certificate for 127.0.0.1/localhost (serverAuth) and
client certificates (clientAuth). EC P-256 keys: quick to generate."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _key(path: Path) -> None:
    _openssl(
        "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(path), cwd=path.parent
    )
    path.chmod(0o600)


def make_ca(directory: Path, name: str) -> Pair:
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / f"{name}-key.pem"
    cert = directory / f"{name}.pem"
    _key(key)
    _openssl(
        "req", "-new", "-x509", "-days", "2", "-key", str(key), "-out", str(cert),
        "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    return Pair(cert, key)


def issue(ca: Pair, directory: Path, name: str, *, server: bool) -> Pair:
    """A certificate signed by `ca`: for the server (serverAuth, SANs of 127.0.0.1 and
    localhost) or for a client (clientAuth)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / f"{name}-key.pem"
    csr = directory / f"{name}.csr"
    cert = directory / f"{name}.pem"
    ext = directory / f"{name}.ext"
    _key(key)
    _openssl(
        "req", "-new", "-key", str(key), "-out", str(csr), "-subj", f"/CN={name}", cwd=directory
    )
    usage = "serverAuth" if server else "clientAuth"
    lines = [f"extendedKeyUsage = {usage}"]
    if server:
        lines.append("subjectAltName = IP:127.0.0.1,DNS:localhost")
    ext.write_text("\n".join(lines) + "\n")
    _openssl(
        "x509", "-req", "-days", "2", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-CAcreateserial", "-out", str(cert), "-extfile", str(ext),
        cwd=directory,
    )  # fmt: skip
    return Pair(cert, key)


def docker_cert_dir(directory: Path, ca: Pair, client: Pair) -> Path:
    """A DOCKER_CERT_PATH-style directory: ca.pem, cert.pem, key.pem."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.pem").write_bytes(ca.cert.read_bytes())
    (directory / "cert.pem").write_bytes(client.cert.read_bytes())
    key = directory / "key.pem"
    key.write_bytes(client.key.read_bytes())
    key.chmod(0o600)
    return directory
