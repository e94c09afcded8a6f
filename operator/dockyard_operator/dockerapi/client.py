"""A narrow async Docker client for one host: only the calls the reconcilers make, each with a timeout.

The host may be a direct URL (unix:// or tcp:// with TLS) or the tunnel: then the URL is the per-host unix
socket bridge that dockyard_tunnel serves, and every connection becomes a mux stream to the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import struct
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import aiodocker
import aiohttp

from dockyard_operator import tracing
from dockyard_operator.dockerapi import errors

T = TypeVar("T")
JSON = dict[str, Any]

#: The Engine API version we speak. 1.41 = Docker 20.10, the oldest engine we support; newer engines serve it.
API_VERSION = "v1.41"


def _translate(exc: BaseException, what: str) -> errors.DockerError:
    if isinstance(exc, aiodocker.DockerError):
        message = str(exc.message) if hasattr(exc, "message") else str(exc)
        status = int(exc.status)
        if status == 404:
            return errors.DockerNotFoundError(status, message)
        if status == 409:
            return errors.DockerConflictError(status, message)
        if status >= 900 or status == 502:  # aiodocker uses 900 for connection failures; 502 from our bridge
            return errors.DockerUnavailableError(f"{what}: {message}")
        return errors.DockerAPIError(status, message)
    return errors.DockerUnavailableError(f"{what}: {exc!r}")


def qualify_image(image: str) -> str:
    """The fully qualified form of an image reference: docker.io/library/x for Docker Hub shorthands."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if sep else f"docker.io/library/{image}"


class DockerClient:
    """One host's Docker API. Construct with :meth:`open`; always :meth:`close`."""

    def __init__(
        self,
        docker: aiodocker.Docker,
        *,
        host: str,
        call_timeout: float,
        connector: aiohttp.BaseConnector | None = None,
    ) -> None:
        self._docker = docker
        self._connector = connector
        #: Called with (host, call) for every Docker API call; the operator counts them in /metrics.
        self.on_call: Callable[[str, str], None] | None = None
        self.host = host
        self._timeout = call_timeout
        #: Where raw (hijacked) connections go: the unix socket path, or (host, port) with TLS when given.
        self._raw_target: tuple[str, int] | str | None = None
        self._raw_ssl: ssl.SSLContext | None = None

    @classmethod
    def open(
        cls, *, host: str, url: str, ssl_context: ssl.SSLContext | None = None, call_timeout: float = 30.0
    ) -> DockerClient:
        connector: aiohttp.BaseConnector | None = None
        if url.startswith("unix://"):
            connector = aiohttp.UnixConnector(path=url.removeprefix("unix://"))
            url = "unix://localhost"
        elif url.startswith("tcp://"):
            scheme = "https" if ssl_context is not None else "http"
            connector = aiohttp.TCPConnector(ssl=ssl_context if ssl_context is not None else False)
            url = f"{scheme}://{url.removeprefix('tcp://')}"
        raw: tuple[str, int] | str | None = None
        if isinstance(connector, aiohttp.UnixConnector):
            raw = connector.path
        elif url.startswith(("http://", "https://")):
            parsed = urllib.parse.urlsplit(url)
            raw = (parsed.hostname or "localhost", parsed.port or (2376 if ssl_context else 2375))
        docker = aiodocker.Docker(url=url, connector=connector, api_version=API_VERSION)
        client = cls(docker, host=host, call_timeout=call_timeout, connector=connector)
        client._raw_target, client._raw_ssl = raw, ssl_context
        return client

    async def close(self) -> None:
        # aiodocker re-raises an events-task failure from close() (library-notes §3); closing must not fail.
        with contextlib.suppress(Exception):
            await self._docker.close()
        # aiodocker leaves a caller-supplied connector open (it may be shared); ours is not.
        if self._connector is not None:
            await self._connector.close()

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
        call = what.split(" ", 1)[0]
        if self.on_call is not None:
            self.on_call(self.host, call)
        try:
            with tracing.child_span(f"docker {call}", {"dockyard.host": self.host, "docker.request": what}):
                async with asyncio.timeout(timeout or self._timeout):
                    return await fn()
        except (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _translate(exc, f"{self.host}: {what}") from exc
        except ValueError as exc:  # aiodocker validates some arguments itself (e.g. image references)
            raise errors.DockerAPIError(400, f"{self.host}: {what}: {exc}") from exc

    # -- host ----------------------------------------------------------------------------------------------

    async def version(self) -> JSON:
        return await self._call("version", self._docker.version)

    async def ping(self) -> None:
        async def ping() -> None:
            # aiodocker has no public ping; _query is its request primitive (stable across releases), and
            # this module is the only place that depends on it.
            async with self._docker._query("_ping") as resp:
                await resp.read()

        await self._call("ping", ping, timeout=10)

    async def network_gateway(self, network: str = "bridge") -> str:
        """The gateway address of a Docker network (the host's address on it): where the agent listens for the
        serviceImports of the containers on that network."""

        async def run() -> str:
            info = await (await self._docker.networks.get(network)).show()
            for entry in (info.get("IPAM") or {}).get("Config") or []:
                if entry.get("Gateway"):
                    return str(entry["Gateway"])
            raise errors.DockerAPIError(500, f"{self.host}: network {network} has no gateway address")

        return await self._call(f"inspect network {network}", run)

    # -- containers ----------------------------------------------------------------------------------------

    async def list_containers(self, *, labels: Mapping[str, str]) -> list[JSON]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}

        async def run() -> list[JSON]:
            found = await self._docker.containers.list(all=True, filters=filters)
            return [dict(c._container) for c in found]

        return await self._call("list containers", run)

    async def container_by_name(self, name: str) -> JSON | None:
        try:
            return await self.inspect(name)
        except errors.DockerNotFoundError:
            return None

    async def inspect(self, ref: str) -> JSON:
        async def run() -> JSON:
            container = await self._docker.containers.get(ref)
            return dict(container._container)

        return await self._call(f"inspect {ref}", run)

    async def logs_tail(self, ref: str, *, lines: int = 80, max_bytes: int = 2048) -> str:
        """The last `lines` lines of a container's output (stdout and stderr), at most the last `max_bytes` bytes:
        what the kubelet keeps of a failed container's log as its termination message (FallbackToLogsOnError)."""

        async def run() -> str:
            container = self._docker.containers.container(ref)
            chunks = await container.log(stdout=True, stderr=True, tail=lines)
            text = "".join(chunks)
            data = text.encode(errors="replace")[-max_bytes:]
            return data.decode(errors="replace")

        return await self._call(f"logs {ref}", run)

    async def create(self, *, name: str, config: JSON) -> str:
        async def run() -> str:
            container = await self._docker.containers.create(config, name=name)
            return str(container.id)

        return await self._call(f"create {name}", run)

    async def put_archive(self, ref: str, *, path: str, tar: bytes) -> None:
        async def run() -> None:
            await self._docker.containers.container(ref).put_archive(path, tar)  # type: ignore[no-untyped-call]

        await self._call(f"put archive into {ref}", run, timeout=max(self._timeout, 60))

    async def start(self, ref: str) -> None:
        await self._call(f"start {ref}", lambda: self._docker.containers.container(ref).start())

    async def stop(self, ref: str, *, grace_seconds: int) -> None:
        # The daemon waits grace_seconds before SIGKILL; allow for it plus the call itself.
        await self._call(
            f"stop {ref}",
            lambda: self._docker.containers.container(ref).stop(t=grace_seconds),
            timeout=grace_seconds + self._timeout,
        )

    async def restart(self, ref: str, *, grace_seconds: int) -> None:
        await self._call(
            f"restart {ref}",
            lambda: self._docker.containers.container(ref).restart(timeout=grace_seconds),
            timeout=grace_seconds + self._timeout,
        )

    async def remove(self, ref: str, *, force: bool = True) -> None:
        try:
            await self._call(f"remove {ref}", lambda: self._docker.containers.container(ref).delete(force=force))
        except errors.DockerNotFoundError:
            return
        except errors.DockerConflictError as exc:
            if "already in progress" in exc.message:  # another removal of the same container is running
                return
            raise

    async def keep_stopped(self, ref: str, *, name: str) -> None:
        """Rename a stopped container and take its restart policy away: kept for its log, never run again (with
        `always`, dockerd would start it on its own next start)."""

        async def run() -> None:
            body = {"RestartPolicy": {"Name": "no"}}
            async with self._docker._query(f"containers/{ref}/update", method="POST", data=json.dumps(body),
                                           headers={"Content-Type": "application/json"}) as resp:  # fmt: skip
                await resp.read()
            async with self._docker._query(f"containers/{ref}/rename", method="POST", params={"name": name}) as resp:
                await resp.read()

        await self._call(f"keep {ref} as {name}", run)

    # -- images --------------------------------------------------------------------------------------------

    async def image_exists(self, image: str) -> bool:
        try:
            await self._call(f"inspect image {image}", lambda: self._docker.images.inspect(image))
        except errors.DockerNotFoundError:
            return False
        return True

    async def pull(self, image: str, *, auth: JSON | None = None, timeout: float = 600.0) -> None:
        # With credentials aiodocker takes the registry from the reference and refuses one without a host:
        # "nginx" must become "docker.io/library/nginx" (the same image Docker would pull).
        if auth is not None:
            image = qualify_image(image)

        async def run() -> None:
            await self._docker.images.pull(image, auth=auth)

        await self._call(f"pull {image}", run, timeout=timeout)

    # -- events --------------------------------------------------------------------------------------------

    async def events(self, *, filters: Mapping[str, list[str]]) -> AsyncIterator[JSON]:
        """Yield daemon events until the stream ends (the host went away); the caller re-subscribes."""
        # Not aiodocker's events.subscribe(): its subscribers share the first subscriber's filters and its
        # queues are unbounded (library-notes §3). One streaming request per host, read line by line, is both
        # simpler and bounded: backpressure reaches the daemon through the socket.
        params = {"filters": json.dumps(dict(filters))}
        if self.on_call is not None:
            self.on_call(self.host, "events")
        forever = aiohttp.ClientTimeout(total=None, sock_read=None, sock_connect=10)
        try:
            async with self._docker._query("events", params=params, timeout=forever) as response:
                async for raw in response.content:
                    line = raw.strip()
                    if line:
                        yield json.loads(line)
        except (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _translate(exc, f"{self.host}: events") from exc

    # -- streams for the access API (logs, exec) -----------------------------------------------------------

    async def log_stream(
        self,
        ref: str,
        *,
        follow: bool,
        tail: int | None = None,
        since: int | None = None,
        timestamps: bool = False,
    ) -> AsyncIterator[tuple[int, bytes]]:
        """Yield (stream, data) chunks of a container's log, 1 = stdout, 2 = stderr, until it ends (with `follow`:
        until the container stops or the caller stops iterating)."""
        info = await self.inspect(ref)
        tty = bool((info.get("Config") or {}).get("Tty"))
        params = {
            "stdout": "1",
            "stderr": "1",
            "follow": "1" if follow else "0",
            "timestamps": "1" if timestamps else "0",
            "tail": "all" if tail is None else str(tail),
        }
        if since is not None:
            params["since"] = str(since)
        if self.on_call is not None:
            self.on_call(self.host, "logs")
        forever = aiohttp.ClientTimeout(total=None, sock_read=None, sock_connect=10)
        try:
            async with self._docker._query(f"containers/{ref}/logs", params=params, timeout=forever) as response:
                if tty:  # a TTY has one stream, not framed
                    async for chunk in response.content.iter_any():
                        yield 1, chunk
                    return
                frames = FrameReader()
                async for chunk in response.content.iter_any():
                    for item in frames.feed(chunk):
                        yield item
        except (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _translate(exc, f"{self.host}: logs {ref}") from exc

    async def exec_create(self, ref: str, *, command: Sequence[str], stdin: bool, tty: bool) -> str:
        body = {
            "AttachStdin": stdin,
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": tty,
            "Cmd": list(command),
        }

        async def run() -> str:
            data = await self._docker._query_json(f"containers/{ref}/exec", method="POST", data=body)
            return str(data["Id"])

        return await self._call(f"exec in {ref}", run)

    async def exec_start(self, exec_id: str, *, tty: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Start an exec and take over its connection (Docker's hijack): the raw stream of the process, framed
        stdout/stderr unless `tty`. Closing the writer's write side closes the process's stdin."""
        body = json.dumps({"Detach": False, "Tty": tty}).encode()
        head = (
            f"POST /{API_VERSION}/exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\n"
            "Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        if self.on_call is not None:
            self.on_call(self.host, "exec")
        try:
            async with asyncio.timeout(self._timeout):
                reader, writer = await self._open_raw()
                writer.write(head + body)
                await writer.drain()
                status_line = await reader.readline()
                headers = await reader.readuntil(b"\r\n\r\n") if status_line else b""
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise errors.DockerUnavailableError(f"{self.host}: exec start {exec_id}: {exc!r}") from exc
        parts = status_line.decode(errors="replace").split(" ", 2)
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 502
        if code not in (101, 200):
            message = headers.decode(errors="replace")
            with contextlib.suppress(Exception):
                message = (await asyncio.wait_for(reader.read(4096), 2)).decode(errors="replace")
            writer.close()
            raise (errors.DockerNotFoundError if code == 404 else errors.DockerAPIError)(code, message.strip())
        return reader, writer

    async def _open_raw(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        target = self._raw_target
        if isinstance(target, str):
            return await asyncio.open_unix_connection(target, limit=2**20)
        if target is None:
            raise OSError("no raw connection for this Docker URL")
        return await asyncio.open_connection(target[0], target[1], ssl=self._raw_ssl, limit=2**20)

    async def exec_resize(self, exec_id: str, *, width: int, height: int) -> None:
        async def run() -> None:
            params = {"h": str(height), "w": str(width)}
            async with self._docker._query(f"exec/{exec_id}/resize", method="POST", params=params) as resp:
                await resp.read()

        await self._call(f"resize exec {exec_id}", run)

    async def exec_inspect(self, exec_id: str) -> JSON:
        async def run() -> JSON:
            return dict(await self._docker._query_json(f"exec/{exec_id}/json"))

        return await self._call(f"inspect exec {exec_id}", run)

    async def stats(self, ref: str) -> JSON:
        """One sample of a container's resource use (`docker stats --no-stream`)."""

        async def run() -> JSON:
            params = {"stream": "0"}
            return dict(await self._docker._query_json(f"containers/{ref}/stats", params=params))

        return await self._call(f"stats {ref}", run)


class FrameReader:
    """Docker's multiplexed stream (no TTY): 8-byte headers [stream, 0, 0, 0, size (big-endian u32)] + data."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        out: list[tuple[int, bytes]] = []
        while len(self._buffer) >= 8:
            stream = self._buffer[0]
            (size,) = struct.unpack(">I", self._buffer[4:8])
            if len(self._buffer) < 8 + size:
                break
            out.append((stream, bytes(self._buffer[8 : 8 + size])))
            del self._buffer[: 8 + size]
        return out
