"""The access API server in the operator: `subresources.dockyard.dev/v1alpha1`, reached only through
kube-apiserver's aggregator (an APIService pointing at a Service of the leading replica).

Each request: the front-proxy certificate proves kube-apiserver sent it; the request headers name the user; a
SubjectAccessReview asks whether that user may `get` dockercontainers/<subresource>; then the container is found
in the informer cache and reached through its host's existing connection (the agent's tunnel session), so nothing
new opens on the Docker host and the user needs no access to the tunnel's Secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from dockyard_mux import Stream
from dockyard_operator.access import authorizing, protocol
from dockyard_operator.access.errors import AccessError
from dockyard_operator.access.requestheader import AUTHENTICATION_CONFIGMAP, RequestHeaderConfig, authenticate
from dockyard_operator.api import labels
from dockyard_operator.containers import desired
from dockyard_operator.dockerapi import errors as docker_errors
from dockyard_operator.dockerapi.client import DockerClient, FrameReader
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import CONFIGMAPS
from dockyard_operator.settings import AccessSettings
from dockyard_tunnel.tls import ensure_self_signed

JSON = dict[str, Any]
log = structlog.get_logger("dockyard.access")

#: Finds a DockerContainer in the cache by (namespace, name).
Lookup = Callable[[str, str], JSON | None]
#: A reachable host's Docker client, or None.
DockerFor = Callable[[str], DockerClient | None]
#: A stream to ip:port in a container on a tunnel host (host, ip, port, container id).
Dial = Callable[[str, str, int, str | None], Awaitable[Stream]]

#: Largest WebSocket message we accept from a client (a paste into a terminal, a port-forwarded write).
_MAX_MESSAGE = 1024 * 1024
#: How long the exit code may take to show in Docker after the process's output ended.
_EXIT_CODE_WAIT = 5.0


def _status(code: int, reason: str, message: str) -> web.Response:
    """A Kubernetes Status: kubectl and our CLI print its message."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.json_response(body, status=code)


@dataclasses.dataclass(frozen=True)
class Target:
    namespace: str
    name: str
    host: str
    container_id: str
    docker: DockerClient
    uid: str


class _Refused(Exception):
    def __init__(self, response: web.Response) -> None:
        self.response = response


class AccessServer:
    def __init__(
        self,
        *,
        kube: KubeClient,
        settings: AccessSettings,
        lookup: Lookup,
        docker_for: DockerFor,
        dial: Dial | None,
        tunnel_host: Callable[[str], bool],
    ) -> None:
        self._kube = kube
        self._settings = settings
        self._lookup = lookup
        self._docker_for = docker_for
        self._dial = dial
        self._tunnel_host = tunnel_host
        self._config: RequestHeaderConfig | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.ca_file: Path | None = None

    def make_app(self) -> web.Application:
        app = web.Application()
        base = f"/apis/{protocol.GROUP}/{protocol.VERSION}"
        app.router.add_get("/apis", self._groups)
        app.router.add_get(f"/apis/{protocol.GROUP}", self._group)
        app.router.add_get(base, self._resources)
        app.router.add_get("/healthz", self._healthz)
        item = base + "/namespaces/{namespace}/" + protocol.RESOURCE + "/{name}/"
        app.router.add_get(item + protocol.LOG, self._log)
        app.router.add_get(item + protocol.EXEC, self._exec)
        app.router.add_get(item + protocol.PORTFORWARD, self._portforward)
        app.router.add_get(item + protocol.STATS, self._stats)
        return app

    async def start(self) -> None:
        s = self._settings
        namespace, name = AUTHENTICATION_CONFIGMAP
        try:
            cm = await self._kube.get(CONFIGMAPS, name, namespace=namespace)
        except kube_errors.KubeError as exc:
            raise AccessError(f"cannot read {namespace}/{name} (the front-proxy CA): {exc}") from exc
        self._config = RequestHeaderConfig.from_configmap(cm.get("data") or {})
        tls_dir = s.tls_dir or Path(tempfile.mkdtemp(prefix="dockyard-access-tls-"))
        files = await asyncio.to_thread(ensure_self_signed, tls_dir, server_names=s.server_names)
        self.ca_file = files.ca_cert
        ctx = self._config.server_context(cert_file=str(files.cert), key_file=str(files.key))
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, s.listen_host, s.listen_port, ssl_context=ctx)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else s.listen_port
        log.info("access API listening", host=s.listen_host, port=self.port, group=protocol.GROUP)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- discovery (no user: the aggregator's availability probe has none) -----------------------------------

    async def _groups(self, _: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [protocol.api_group()]})

    async def _group(self, _: web.Request) -> web.Response:
        return web.json_response(protocol.api_group())

    async def _resources(self, _: web.Request) -> web.Response:
        return web.json_response(protocol.api_resource_list())

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    # -- the guard ---------------------------------------------------------------------------------------------

    async def _target(self, request: web.Request, subresource: str) -> Target:
        assert self._config is not None
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        peercert = request.transport.get_extra_info("peercert") if request.transport is not None else None
        try:
            user = authenticate(self._config, peercert, request.headers)
        except AccessError as exc:
            raise _Refused(_status(401, "Unauthorized", str(exc))) from exc
        what = f'{protocol.RESOURCE}.{protocol.GROUP} "{name}"'
        try:
            ok, reason = await authorizing.allowed(
                self._kube, user, namespace=namespace, name=name, subresource=subresource
            )
        except kube_errors.KubeError as exc:
            raise _Refused(_status(503, "ServiceUnavailable", f"cannot authorize: {exc}")) from exc
        if not ok:
            log.info("access denied", user=user.name, namespace=namespace, name=name, subresource=subresource)
            message = (
                f'{what} is forbidden: User "{user.name}" cannot get resource "{protocol.RESOURCE}/{subresource}" '
                f'in API group "{protocol.GROUP}" in the namespace "{namespace}"' + (f": {reason}" if reason else "")
            )
            raise _Refused(_status(403, "Forbidden", message))
        log.info("access", user=user.name, namespace=namespace, name=name, subresource=subresource)
        obj = self._lookup(namespace, name)
        if obj is None:
            raise _Refused(_status(404, "NotFound", f"{what} not found"))
        status = obj.get("status") or {}
        host, cid = status.get("host"), status.get("containerID")
        if not host or not cid:
            raise _Refused(_status(409, "Conflict", f"{what} has no container yet (phase {status.get('phase')})"))
        docker = self._docker_for(host)
        if docker is None:
            raise _Refused(_status(503, "ServiceUnavailable", f"DockerHost {host} is not reachable"))
        return Target(namespace, name, host, cid, docker, str(obj["metadata"].get("uid") or ""))

    # -- log ---------------------------------------------------------------------------------------------------

    async def _log(self, request: web.Request) -> web.StreamResponse:
        try:
            target = await self._target(request, protocol.LOG)
            q = request.query
            follow = _flag(q, "follow")
            tail = _int(q, "tailLines")
            since = _int(q, "sinceSeconds")
            timestamps = _flag(q, "timestamps")
            container = target.container_id
            if _flag(q, "previous"):
                container = await self._previous(target)
        except _Refused as refused:
            return refused.response
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        started = False
        try:
            stream = target.docker.log_stream(
                container,
                follow=follow,
                tail=tail,
                since=None if since is None else int(time.time()) - since,
                timestamps=timestamps,
            )
            async for _, data in stream:
                if not started:
                    await response.prepare(request)
                    started = True
                await response.write(data)
        except docker_errors.DockerNotFoundError:
            if not started:
                return _status(404, "NotFound", f"the container of {target.name} is gone from {target.host}")
        except docker_errors.DockerError as exc:
            if not started:
                return _status(503, "ServiceUnavailable", str(exc))
        except (ConnectionResetError, asyncio.CancelledError):  # the client went away
            raise
        if not started:
            await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    async def _previous(self, target: Target) -> str:
        """The container the last recreate replaced, if the host still has it (kept stopped by the operator)."""
        current = desired.container_name(namespace=target.namespace, name=target.name)
        found = await target.docker.container_by_name(desired.previous_container_name(current))
        # Ours only if it carries this object's uid: a namesake of an earlier object of the same name is not.
        if found is None or ((found.get("Config") or {}).get("Labels") or {}).get(labels.UID) != target.uid:
            raise _Refused(_status(400, "BadRequest", f"previous terminated container of {target.name} not found"))
        return str(found["Id"])

    # -- stats (for `dockyard top`) ----------------------------------------------------------------------------

    async def _stats(self, request: web.Request) -> web.Response:
        try:
            target = await self._target(request, protocol.STATS)
        except _Refused as refused:
            return refused.response
        try:
            stats = await target.docker.stats(target.container_id)
        except docker_errors.DockerError as exc:
            return _status(503, "ServiceUnavailable", str(exc))
        return web.json_response({"host": target.host, "stats": stats})

    # -- exec --------------------------------------------------------------------------------------------------

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        try:
            target = await self._target(request, protocol.EXEC)
            command = request.query.getall("command", [])
            if not command:
                raise _Refused(_status(400, "BadRequest", "exec needs a command"))
            tty, stdin = _flag(request.query, "tty"), _flag(request.query, "stdin")
            width, height = _int(request.query, "width"), _int(request.query, "height")
        except _Refused as refused:
            return refused.response
        ws = web.WebSocketResponse(protocols=(protocol.SUBPROTOCOL,), max_msg_size=_MAX_MESSAGE, heartbeat=30)
        await ws.prepare(request)
        try:
            exec_id = await target.docker.exec_create(target.container_id, command=command, stdin=stdin, tty=tty)
            reader, writer = await target.docker.exec_start(exec_id, tty=tty)
        except docker_errors.DockerError as exc:
            await ws.send_bytes(protocol.status_frame(error=str(exc)))
            await ws.close()
            return ws
        if tty and width and height:
            with contextlib.suppress(docker_errors.DockerError):
                await target.docker.exec_resize(exec_id, width=width, height=height)
        inbound = asyncio.create_task(self._exec_input(ws, writer, target.docker, exec_id, stdin=stdin))
        try:
            frames = None if tty else FrameReader()
            while chunk := await reader.read(65536):
                if frames is None:
                    await ws.send_bytes(protocol.frame(protocol.STDOUT, chunk))
                    continue
                for stream, data in frames.feed(chunk):
                    channel = protocol.STDERR if stream == 2 else protocol.STDOUT
                    await ws.send_bytes(protocol.frame(channel, data))
            code = await self._exit_code(target.docker, exec_id)
            await ws.send_bytes(protocol.status_frame(exit_code=code))
        except (ConnectionResetError, OSError) as exc:
            log.debug("exec stream ended", error=repr(exc))
        finally:
            inbound.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await inbound
            writer.close()
            await ws.close()
        return ws

    async def _exec_input(
        self,
        ws: web.WebSocketResponse,
        writer: asyncio.StreamWriter,
        docker: DockerClient,
        exec_id: str,
        *,
        stdin: bool,
    ) -> None:
        async for msg in ws:
            if msg.type is not WSMsgType.BINARY:
                continue
            try:
                channel, data = protocol.parse(msg.data)
                if channel == protocol.STDIN and stdin:
                    writer.write(data)
                    await writer.drain()
                elif channel == protocol.CLOSE and data[:1] == bytes((protocol.STDIN,)):
                    if writer.can_write_eof():
                        writer.write_eof()
                elif channel == protocol.RESIZE:
                    width, height = protocol.parse_resize(data)
                    await docker.exec_resize(exec_id, width=width, height=height)
            except (ValueError, KeyError, docker_errors.DockerError) as exc:
                log.debug("exec input ignored", error=str(exc))
        # The client went away: the process gets EOF on stdin (and its output has nowhere to go).
        writer.close()

    async def _exit_code(self, docker: DockerClient, exec_id: str) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _EXIT_CODE_WAIT
        while True:
            info = await docker.exec_inspect(exec_id)
            if not info.get("Running") or loop.time() > deadline:
                code = info.get("ExitCode")
                return int(code) if code is not None else 126
            await asyncio.sleep(0.05)

    # -- port-forward ------------------------------------------------------------------------------------------

    async def _portforward(self, request: web.Request) -> web.StreamResponse:
        try:
            target = await self._target(request, protocol.PORTFORWARD)
            port = _int(request.query, "port")
            if port is None or not 0 < port < 65536:
                raise _Refused(_status(400, "BadRequest", "port-forward needs ?port=1..65535"))
            if not self._tunnel_host(target.host) or self._dial is None:
                raise _Refused(_status(400, "BadRequest", f"port-forward needs a tunnel host; {target.host} is not"))
            info = await target.docker.inspect(target.container_id)
            ip = _container_ip(info)
            if not ip:
                raise _Refused(_status(409, "Conflict", f"the container of {target.name} has no IP address"))
            stream = await self._dial(target.host, ip, port, target.container_id)
        except _Refused as refused:
            return refused.response
        except Exception as exc:
            return _status(503, "ServiceUnavailable", f"cannot connect to port {request.query.get('port')}: {exc}")
        ws = web.WebSocketResponse(protocols=(protocol.SUBPROTOCOL,), max_msg_size=_MAX_MESSAGE, heartbeat=30)
        await ws.prepare(request)

        async def upstream() -> None:
            async for msg in ws:
                if msg.type is WSMsgType.BINARY:
                    channel, data = protocol.parse(msg.data)
                    if channel == protocol.STDIN:
                        await stream.write(data)
                    elif channel == protocol.CLOSE:
                        await stream.send_eof()

        sender = asyncio.create_task(upstream())
        try:
            while data := await stream.read(256 * 1024):
                await ws.send_bytes(protocol.frame(protocol.STDOUT, data))
            await ws.send_bytes(protocol.close_frame(protocol.STDOUT))
            await sender  # until the client has sent everything and closes
        except Exception as exc:
            log.debug("port-forward ended", error=repr(exc))
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            if stream.at_eof:
                await stream.aclose()
            else:
                stream.reset()
            await ws.close()
        return ws


def _container_ip(info: JSON) -> str:
    settings = info.get("NetworkSettings") or {}
    if settings.get("IPAddress"):
        return str(settings["IPAddress"])
    for network in (settings.get("Networks") or {}).values():
        if network.get("IPAddress"):
            return str(network["IPAddress"])
    return ""


def _flag(query: Any, key: str) -> bool:
    return str(query.get(key, "")).lower() in ("1", "true", "yes")


def _int(query: Any, key: str) -> int | None:
    raw = query.get(key)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise _Refused(_status(400, "BadRequest", f"{key} must be an integer, not {raw!r}")) from None
