"""Self-signed CA and serving certificate, kubeadm-style CA pins, and the agent's SSL contexts."""

from __future__ import annotations

import asyncio
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from dockyard_tunnel.errors import CAPinMismatchError, ConfigError, TLSSetupError
from dockyard_tunnel.tls import (
    agent_ssl_context_from_ca_file,
    agent_ssl_context_from_pinned_ca,
    ca_cert_hash_of_file,
    ensure_self_signed,
    parse_ca_cert_hash,
    server_ssl_context,
)

NAMES = ("localhost", "127.0.0.1")


def test_self_signed_material_is_private_and_stable(tmp_path: Path) -> None:
    tls_dir = tmp_path / "tls"
    files = ensure_self_signed(tls_dir, server_names=NAMES)
    assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.ca_key.stat().st_mode) == 0o600
    pin = ca_cert_hash_of_file(files.ca_cert)
    serving = files.cert.read_bytes()
    # A second start keeps the CA (agents pinned it) and the still-valid serving certificate.
    again = ensure_self_signed(tls_dir, server_names=NAMES)
    assert ca_cert_hash_of_file(again.ca_cert) == pin
    assert again.cert.read_bytes() == serving
    # New names re-mint the serving certificate from the same CA.
    ensure_self_signed(tls_dir, server_names=(*NAMES, "tunnel.example"))
    assert files.cert.read_bytes() != serving
    assert ca_cert_hash_of_file(files.ca_cert) == pin


def test_pin_is_sha256_of_the_ca_spki_like_kubeadm(tmp_path: Path) -> None:
    files = ensure_self_signed(tmp_path, server_names=NAMES)
    cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    import hashlib

    from cryptography.hazmat.primitives import serialization

    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert ca_cert_hash_of_file(files.ca_cert) == "sha256:" + hashlib.sha256(spki).hexdigest()


@pytest.mark.parametrize("bad", ["", "sha256:", "sha256:abc", "md5:" + "0" * 64, "sha256:" + "g" * 64, "0" * 64])
def test_malformed_pins_are_rejected_clearly(bad: str) -> None:
    with pytest.raises(ConfigError, match="sha256:' followed by 64 hex digits"):
        parse_ca_cert_hash(bad)


def test_pin_accepts_uppercase_and_normalises() -> None:
    assert parse_ca_cert_hash("SHA256:" + "AB" * 32) == "sha256:" + "ab" * 32


def test_pinned_context_refuses_another_ca(tmp_path: Path) -> None:
    ours = ensure_self_signed(tmp_path / "a", server_names=NAMES)
    theirs = ensure_self_signed(tmp_path / "b", server_names=NAMES)
    with pytest.raises(CAPinMismatchError, match="does not match the pinned hash"):
        agent_ssl_context_from_pinned_ca(
            ca_pem=theirs.ca_cert.read_bytes(), expected_hash=ca_cert_hash_of_file(ours.ca_cert)
        )


def test_pinned_context_refuses_garbage_and_bundles(tmp_path: Path) -> None:
    a = ensure_self_signed(tmp_path / "a", server_names=NAMES)
    b = ensure_self_signed(tmp_path / "b", server_names=NAMES)
    pin = ca_cert_hash_of_file(a.ca_cert)
    with pytest.raises(TLSSetupError):
        agent_ssl_context_from_pinned_ca(ca_pem=b"not a certificate", expected_hash=pin)
    with pytest.raises(TLSSetupError, match="exactly one CA certificate"):
        agent_ssl_context_from_pinned_ca(ca_pem=a.ca_cert.read_bytes() + b.ca_cert.read_bytes(), expected_hash=pin)


async def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, server_hostname: str) -> None:
    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname=server_hostname
        )
        assert await reader.read() == b"ok"
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_pinned_and_ca_file_contexts_verify_the_real_server(tmp_path: Path) -> None:
    files = ensure_self_signed(tmp_path, server_names=NAMES)
    server_ctx = server_ssl_context(cert_file=files.cert, key_file=files.key)
    pinned = agent_ssl_context_from_pinned_ca(
        ca_pem=files.ca_cert.read_bytes(), expected_hash=ca_cert_hash_of_file(files.ca_cert)
    )
    await _handshake(server_ctx, pinned, "127.0.0.1")
    await _handshake(server_ctx, agent_ssl_context_from_ca_file(files.ca_cert), "localhost")


async def test_pinned_context_still_checks_the_server_name(tmp_path: Path) -> None:
    files = ensure_self_signed(tmp_path, server_names=NAMES)
    server_ctx = server_ssl_context(cert_file=files.cert, key_file=files.key)
    pinned = agent_ssl_context_from_pinned_ca(
        ca_pem=files.ca_cert.read_bytes(), expected_hash=ca_cert_hash_of_file(files.ca_cert)
    )
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        await _handshake(server_ctx, pinned, "not-the-server.example")


async def test_a_server_from_another_ca_fails_verification(tmp_path: Path) -> None:
    ours = ensure_self_signed(tmp_path / "ours", server_names=NAMES)
    impostor = ensure_self_signed(tmp_path / "impostor", server_names=NAMES)
    pinned = agent_ssl_context_from_pinned_ca(
        ca_pem=ours.ca_cert.read_bytes(), expected_hash=ca_cert_hash_of_file(ours.ca_cert)
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(server_ssl_context(cert_file=impostor.cert, key_file=impostor.key), pinned, "127.0.0.1")


@pytest.mark.parametrize("kind", ["ca_file", "pinned"])
async def test_agent_contexts_ignore_the_hosts_certificate_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The impostor's CA is in the host's store (SSL_CERT_FILE, which OpenSSL's default paths read): the agent
    still trusts only the CA it was given, like kubectl's certificate-authority."""
    ours = ensure_self_signed(tmp_path / "ours", server_names=NAMES)
    impostor = ensure_self_signed(tmp_path / "impostor", server_names=NAMES)
    monkeypatch.setenv("SSL_CERT_FILE", str(impostor.ca_cert))
    agent = (
        agent_ssl_context_from_ca_file(ours.ca_cert)
        if kind == "ca_file"
        else agent_ssl_context_from_pinned_ca(
            ca_pem=ours.ca_cert.read_bytes(), expected_hash=ca_cert_hash_of_file(ours.ca_cert)
        )
    )
    assert len(agent.get_ca_certs()) == 1
    impostor_server = server_ssl_context(cert_file=impostor.cert, key_file=impostor.key)
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(impostor_server, agent, "localhost")
