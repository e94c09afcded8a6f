"""Docker access to a connected host: a per-host unix socket whose connections become mux streams.

aiodocker and aiohttp see an ordinary unix socket, so only their public APIs are used (no custom connector).
Each accepted connection opens a mux stream to the host's agent, sends the `docker` header and splices both
ways with half-close. The socket lives in a private 0700 run directory with mode 0600.

Failures are answered in HTTP where nothing has been sent back yet, so aiodocker raises DockerError(502)
with a message naming the host, instead of an anonymous connection reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

import aiodocker
import aiohttp
import structlog

from dockyard_mux import MuxError
from dockyard_tunnel.config import validate_host_name
from dockyard_tunnel.errors import ConfigError
from dockyard_tunnel.piping import SpliceFailedError, bad_gateway_response, splice
from dockyard_tunnel.server.registry import SessionRegistry
from dockyard_tunnel.stream_headers import DockerTarget, encode_header

log = structlog.get_logger("dockyard_tunnel.dockerapi")

# sun_path is 108 bytes on Linux including the terminating NUL.
_MAX_SOCKET_PATH = 107
# How long to wait for a request's headers before answering it with an error (the client sent them already).
_REQUEST_HEAD_TIMEOUT = 1.0


async def answer_bad_gateway(
    writer: asyncio.StreamWriter, message: str, *, reader: asyncio.StreamReader | None = None
) -> None:
    """Answer the HTTP request on `writer` with 502 and a Docker-style JSON error body, then close.

    With `reader`, the request head is read first: closing a socket with unread data makes the kernel reset
    the connection, and the client could lose the answer.
    """
    if reader is not None:
        with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _REQUEST_HEAD_TIMEOUT)
    with contextlib.suppress(OSError):
        writer.write(bad_gateway_response(message))
        await writer.drain()
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


class _BridgedDocker(aiodocker.Docker):
    """aiodocker.Docker over a bridge socket that also closes its connector (aiodocker leaves given ones open).

    One HTTP request per connection (so per mux stream): an agent draining on SIGTERM then knows exactly which
    streams are requests in flight, and no kept-alive connection outlives a session. This costs about 0.3 ms
    per request on loopback, nothing next to a WAN round trip.
    """

    def __init__(self, *, path: Path, api_version: str) -> None:
        connector = aiohttp.UnixConnector(path=str(path), force_close=True)
        super().__init__(url="http://localhost", connector=connector, api_version=api_version)
        self._owned_connector = connector

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            await self._owned_connector.close()


class DockerBridges:
    """aiodocker clients for connected hosts, one private unix socket per host, created on first use."""

    def __init__(self, registry: SessionRegistry, *, run_dir: Path | None = None, api_version: str = "v1.41") -> None:
        self._registry = registry
        self._run_dir_given = run_dir
        self._run_dir: Path | None = None
        self._api_version = api_version
        self._servers: dict[str, asyncio.Server] = {}
        self._lock = asyncio.Lock()
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self._run_dir_given is None:
            self._run_dir = Path(tempfile.mkdtemp(prefix="dockyard-tunnel-"))  # mkdtemp makes it 0700
            return
        run_dir = self._run_dir_given
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = run_dir.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise ConfigError(f"run directory {run_dir} must be a directory owned by this user (not a symlink)")
        os.chmod(run_dir, 0o700)
        self._run_dir = run_dir

    def socket_path(self, host: str) -> Path:
        if self._run_dir is None:
            raise RuntimeError("DockerBridges.start() was not awaited")
        validate_host_name(host)
        path = self._run_dir / f"{host}.sock"
        if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
            raise ConfigError(f"unix socket path {path} is longer than {_MAX_SOCKET_PATH} bytes; use a shorter run dir")
        return path

    async def _ensure_listener(self, host: str) -> Path:
        path = self.socket_path(host)
        async with self._lock:
            if host not in self._servers:
                path.unlink(missing_ok=True)  # a stale file from a crashed run; the directory is ours alone
                server = await asyncio.start_unix_server(
                    lambda r, w: self._accepted(host, r, w), path=str(path), limit=64 * 1024
                )
                os.chmod(path, 0o600)
                self._servers[host] = server
        return path

    async def socket_for(self, host: str) -> Path:
        """The unix socket that reaches `host`'s Docker API (for `curl --unix-socket` or another client)."""
        return await self._ensure_listener(host)

    async def docker(self, host: str) -> aiodocker.Docker:
        """A new aiodocker client for `host`; the caller closes it.

        Works whether or not the host is connected: requests to a disconnected host fail with DockerError 502
        naming it, and succeed again once it is back.
        """
        path = await self._ensure_listener(host)
        return _BridgedDocker(path=path, api_version=self._api_version)

    def _accepted(self, host: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._serve(host, reader, writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    async def _serve(self, host: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = self._registry.get(host)
        if session is None:
            await answer_bad_gateway(writer, f"Docker host {host!r} is not connected to the tunnel", reader=reader)
            return
        try:
            stream = await session.open_stream()
            await stream.write(encode_header(DockerTarget()))
        except MuxError as e:
            await answer_bad_gateway(writer, f"Docker host {host!r}: cannot open a tunnel stream: {e}", reader=reader)
            return
        try:
            await splice(stream, reader, writer)
        except SpliceFailedError as e:
            # Facing the client: unless the last bytes went to it, its current request has no answer yet.
            answer_started = e.progress.last_direction == "to_socket"
            log.debug("bridge_failed", host=host, side=e.side, cause=str(e.cause), answer_started=answer_started)
            stream.reset()
            if e.side == "stream" and not answer_started:
                await answer_bad_gateway(writer, f"Docker host {host!r}: tunnel connection lost: {e.cause}")
            else:
                writer.transport.abort()
            return
        except BaseException:
            stream.reset()
            writer.transport.abort()
            raise
        await stream.aclose()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    async def stop(self) -> None:
        """Stop listening, cut bridged connections and remove the sockets (and the run dir if we made it)."""
        for server in self._servers.values():
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers.values():
            await server.wait_closed()
        for host in self._servers:
            self.socket_path(host).unlink(missing_ok=True)
        self._servers.clear()
        if self._run_dir is not None and self._run_dir_given is None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
