"""TLS material for the tunnel: a self-signed CA and serving certificate, CA pin hashes, and SSL contexts.

The CA pin follows kubeadm: `sha256:` + hex SHA-256 of the CA certificate's DER SubjectPublicKeyInfo.
Pinning the public key (not the whole certificate) lets the CA be re-issued with the same key without
re-pinning agents.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dockyard_tunnel.errors import CAPinMismatchError, ConfigError, TLSSetupError

_HASH_PREFIX = "sha256:"
# CA lifetime is long because rotating it means re-pinning every agent; the serving certificate is short-lived
# relative to it and re-minted from the same CA when it nears expiry.
_CA_DAYS = 3650
_SERVING_DAYS = 365
_RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class ServerTLSFiles:
    """Paths of the server's TLS material inside its TLS directory."""

    ca_cert: Path
    cert: Path
    key: Path

    @classmethod
    def in_directory(cls, directory: Path) -> ServerTLSFiles:
        return cls(ca_cert=directory / "ca.crt", cert=directory / "server.crt", key=directory / "server.key")

    @property
    def ca_key(self) -> Path:
        return self.ca_cert.with_name("ca.key")


def parse_ca_cert_hash(value: str) -> str:
    """Validate a `sha256:<64 hex>` pin and return it normalised to lowercase."""
    hexpart = value[len(_HASH_PREFIX) :].lower() if value.lower().startswith(_HASH_PREFIX) else ""
    if len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise ConfigError(f"CA cert hash must be 'sha256:' followed by 64 hex digits, got {value!r}")
    return _HASH_PREFIX + hexpart


def ca_cert_hash(cert: x509.Certificate) -> str:
    """The kubeadm-style pin of a CA certificate: sha256 of its DER SubjectPublicKeyInfo."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _HASH_PREFIX + hashlib.sha256(spki).hexdigest()


def ca_cert_hash_of_file(path: Path) -> str:
    return ca_cert_hash(_load_cert(path))


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as e:
        raise TLSSetupError(f"cannot read certificate {path}: {e}") from e


def _write_private(path: Path, data: bytes) -> None:
    # Create with 0600 from the start (no window where the key is world-readable), then replace atomically.
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _san(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _mint_ca(files: ServerTLSFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockyard-tunnel-ca")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(files.ca_key, key_pem)
    _write_public(files.ca_cert, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _mint_serving(
    files: ServerTLSFiles,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: tuple[str, ...],
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockyard-tunnel-server")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_SERVING_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(files.key, key_pem)
    # The chain file carries the CA too, so clients that trust the CA by hash see the full chain.
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    _write_public(files.cert, chain)


def _serving_is_current(files: ServerTLSFiles, ca_cert: x509.Certificate, names: tuple[str, ...]) -> bool:
    if not files.cert.exists() or not files.key.exists():
        return False
    cert = _load_cert(files.cert)
    if cert.issuer != ca_cert.subject or cert.not_valid_after_utc - _RENEW_BEFORE < _now():
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return san == _san(names)


def ensure_self_signed(directory: Path, *, server_names: tuple[str, ...]) -> ServerTLSFiles:
    """Create (once) a CA and a serving certificate for `server_names` in `directory`, and return their paths.

    An existing CA is kept (agents have pinned it); the serving certificate is re-minted when missing, near
    expiry, or issued for other names. The directory is made 0700 and keys are written 0600.
    """
    files = ServerTLSFiles.in_directory(directory)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        if files.ca_cert.exists() and files.ca_key.exists():
            ca_cert = _load_cert(files.ca_cert)
            loaded = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise TLSSetupError(f"{files.ca_key} is not an EC private key")
            ca_key = loaded
        else:
            ca_cert, ca_key = _mint_ca(files)
        if not _serving_is_current(files, ca_cert, server_names):
            _mint_serving(files, ca_cert, ca_key, server_names)
    except OSError as e:
        raise TLSSetupError(f"cannot create TLS material in {directory}: {e}") from e
    return files


def server_ssl_context(*, cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context serving `cert_file` (chain, PEM) with `key_file`."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    except (OSError, ssl.SSLError) as e:
        raise TLSSetupError(f"cannot load serving certificate {cert_file} / key {key_file}: {e}") from e
    return ctx


def agent_ssl_context_from_ca_file(ca_file: Path) -> ssl.SSLContext:
    """Verify the server against the CA bundle in `ca_file` alone (chain and host name), as kubectl's
    certificate-authority does: not the host's certificate store too, or any publicly trusted certificate for the
    operator's name would pass."""
    try:
        # With cafile given, create_default_context loads that and skips load_default_certs().
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    except (OSError, ssl.SSLError) as e:
        raise TLSSetupError(f"cannot load CA file {ca_file}: {e}") from e
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def agent_ssl_context_from_pinned_ca(*, ca_pem: bytes, expected_hash: str) -> ssl.SSLContext:
    """Trust exactly the CA in `ca_pem` (as fetched from the server) after checking it against the pin.

    The fetched bytes are untrusted until the hash matches; after that the TLS handshake verifies the server's
    chain and host name against this CA alone (not the system store), so a man in the middle needs the CA key.
    """
    expected = parse_ca_cert_hash(expected_hash)
    try:
        certs = x509.load_pem_x509_certificates(ca_pem)
    except ValueError as e:
        raise TLSSetupError(f"the server sent an unreadable CA certificate: {e}") from e
    if len(certs) != 1:
        raise TLSSetupError(f"the server must send exactly one CA certificate, got {len(certs)}")
    actual = ca_cert_hash(certs[0])
    if not hmac.compare_digest(actual, expected):
        raise CAPinMismatchError(
            f"the server's CA does not match the pinned hash: expected {expected}, server presented {actual}"
        )
    try:
        basic = certs[0].extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is None or not basic.ca:
        raise TLSSetupError("the certificate matching the pin is not a CA certificate")
    ctx = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cadata=certs[0].public_bytes(serialization.Encoding.PEM).decode()
    )
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def unverified_ssl_context() -> ssl.SSLContext:
    """Encryption without authentication: only to fetch the public CA certificate before checking its pin."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the fetched CA is verified against the pin before anything is trusted
    return ctx
