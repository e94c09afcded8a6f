"""The tunnel server embedded in the operator: started by the leader, its CA kept in a Secret, its address published.

Agents pin the tunnel's CA, so the CA must survive restarts and move between replicas: it lives in the Secret
`dockyard-tunnel-tls` and is written into the TLS directory before the server starts (which then reuses it). The
URL and CA pin that `dockyard host join` prints are public facts, published in the ConfigMap `dockyard-tunnel`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

import structlog

from dockyard_operator.hosts.connections import HostConnections
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import CONFIGMAPS, SECRETS
from dockyard_operator.settings import TunnelSettings
from dockyard_tunnel.auth import Authenticator
from dockyard_tunnel.config import ServerConfig
from dockyard_tunnel.dockerapi.bridging import DockerBridges
from dockyard_tunnel.server.app import StreamHandler, TunnelServer
from dockyard_tunnel.server.registry import HostInfo, SessionRegistry

JSON = dict[str, Any]
log = structlog.get_logger("dockyard.tunnel")

#: Where the operator publishes the tunnel's URL and CA pin for `dockyard host join`.
TUNNEL_INFO_CONFIGMAP = "dockyard-tunnel"
#: Where the tunnel's CA and serving certificate are kept across restarts and replicas.
TUNNEL_TLS_SECRET = "dockyard-tunnel-tls"  # noqa: S105 — a Secret name, not a credential
_TLS_FILES = ("ca.crt", "ca.key", "server.crt", "server.key")


def _write_tls_files(directory: Path, data: dict[str, bytes]) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in _TLS_FILES:
        if name in data:
            path = directory / name
            path.unlink(missing_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data[name])


def _read_tls_files(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in _TLS_FILES if (directory / name).exists()}


class EmbeddedTunnel:
    """The tunnel server, the per-host Docker bridges, and the agent session hooks into HostConnections."""

    def __init__(
        self,
        *,
        kube: KubeClient,
        settings: TunnelSettings,
        namespace: str,
        hosts: HostConnections,
        authenticator: Authenticator,
        run_dir: Path | None = None,
        on_stream: StreamHandler | None = None,
    ) -> None:
        self._on_stream = on_stream
        self._kube = kube
        self._settings = settings
        self._namespace = namespace
        self._hosts = hosts
        self._authenticator = authenticator
        self._run_dir = run_dir
        self.server: TunnelServer | None = None
        self.bridges: DockerBridges | None = None

    async def start(self) -> None:
        t = self._settings
        registry = SessionRegistry(on_connect=self._on_connect, on_disconnect=self._on_disconnect)
        tls_dir = t.tls_dir or Path(tempfile.mkdtemp(prefix="dockyard-tunnel-tls-"))
        if not t.insecure and t.cert_file is None:
            await self._restore_ca(tls_dir)
        names = ["localhost", "127.0.0.1", "::1"]
        for host in (t.listen_host, urllib.parse.urlsplit(t.public_url).hostname or ""):
            if host and host not in ("0.0.0.0", "::") and host not in names:  # noqa: S104 — excluded, not bound
                names.append(host)
        config = ServerConfig(
            host=t.listen_host,
            port=t.listen_port,
            insecure=t.insecure,
            tls_dir=None if t.cert_file else tls_dir,
            cert_file=t.cert_file,
            key_file=t.key_file,
            server_names=tuple(names),
        )
        self.server = TunnelServer(
            config, authenticator=self._authenticator, registry=registry, on_stream=self._on_stream
        )
        await self.server.start()
        self.bridges = DockerBridges(registry, run_dir=self._run_dir)
        await self.bridges.start()
        log.info("tunnel server listening", url=self.server.url, ca_cert_hash=self.server.ca_cert_hash)
        if not t.insecure and t.cert_file is None:
            await self._save_ca(tls_dir)
        await self._publish_info()

    async def stop(self) -> None:
        if self.bridges is not None:
            await self.bridges.stop()
        if self.server is not None:
            await self.server.stop()

    async def socket_for(self, host: str) -> Path:
        assert self.bridges is not None
        return await self.bridges.socket_for(host)

    async def disconnect(self, host: str) -> None:
        session = self.server.registry.get(host) if self.server is not None else None
        if session is not None:
            await session.close()

    def stats(self) -> list[tuple[str, bool, int, int, int, float | None]]:
        """(host, reachable, bytes sent, bytes received, open streams, rtt) per host, for /metrics."""
        out = []
        for name in self._hosts.names():
            conn = self._hosts.get(name)
            if conn is None:
                continue
            session = self.server.registry.get(name) if self.server is not None else None
            if session is not None:
                out.append(
                    (
                        name,
                        conn.state.reachable,
                        session.bytes_sent,
                        session.bytes_received,
                        session.num_streams,
                        session.rtt,
                    )
                )
            else:
                out.append((name, conn.state.reachable, 0, 0, 0, None))
        return out

    async def _on_connect(self, info: HostInfo) -> None:
        await self._hosts.tunnel_connected(info.host, agent_version=info.hello.agent_version)

    async def _on_disconnect(self, host: str, reason: str) -> None:
        await self._hosts.tunnel_disconnected(host, reason)

    async def _restore_ca(self, tls_dir: Path) -> None:
        try:
            secret = await self._kube.get(SECRETS, TUNNEL_TLS_SECRET, namespace=self._namespace)
        except kube_errors.NotFoundError:
            return
        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        await asyncio.to_thread(_write_tls_files, tls_dir, data)

    async def _save_ca(self, tls_dir: Path) -> None:
        files = await asyncio.to_thread(_read_tls_files, tls_dir)
        data = {k: base64.b64encode(v).decode() for k, v in files.items()}
        body: JSON = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": TUNNEL_TLS_SECRET, "namespace": self._namespace},
            "data": data,
        }
        try:
            await self._kube.create(SECRETS, body, namespace=self._namespace)
        except kube_errors.ConflictError:
            current = await self._kube.get(SECRETS, TUNNEL_TLS_SECRET, namespace=self._namespace)
            if current.get("data") != data:  # e.g. the serving certificate was renewed
                await self._kube.merge_patch(SECRETS, TUNNEL_TLS_SECRET, {"data": data}, namespace=self._namespace)

    async def _publish_info(self) -> None:
        assert self.server is not None
        ca = self.server.ca_file
        data = {
            "url": self._settings.public_url or self.server.url,
            "caCertHash": self.server.ca_cert_hash or "",
            "ca.crt": await asyncio.to_thread(ca.read_text) if ca is not None else "",
        }
        body: JSON = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": TUNNEL_INFO_CONFIGMAP, "namespace": self._namespace},
            "data": data,
        }
        try:
            await self._kube.create(CONFIGMAPS, body, namespace=self._namespace)
        except kube_errors.ConflictError:
            await self._kube.merge_patch(CONFIGMAPS, TUNNEL_INFO_CONFIGMAP, {"data": data}, namespace=self._namespace)
