"""The CLI side of the access API: `dockyard logs|exec|port-forward|top`, speaking to kube-apiserver with the
user's own kubeconfig credentials (so their RBAC applies, and any credential kubectl can use works)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import stat
import sys
import termios
import tty as ttys
from collections.abc import Iterator
from typing import Any, BinaryIO

import aiohttp

from dockyard_operator.access import protocol
from dockyard_operator.access.errors import AccessError, UsageError
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import DOCKERCONTAINERS

#: kubectl-style kinds before the slash: a DockerContainer, or an owner whose containers are chosen from.
_KINDS = {
    **dict.fromkeys(("dc", "dockercontainer", "dockercontainers"), "DockerContainer"),
    **dict.fromkeys(("ddeploy", "dockerdeployment", "dockerdeployments"), "DockerDeployment"),
    **dict.fromkeys(("dj", "dockerjob", "dockerjobs"), "DockerJob"),
}


def parse_target(target: str) -> tuple[str, str]:
    """(kind, NAME) from `dc/NAME`, `ddeploy/NAME`, `dj/NAME` (or a bare NAME: a DockerContainer, as kubectl
    takes a bare Pod name)."""
    kind, sep, name = target.partition("/")
    if not sep:
        kind, name = "dc", target
    found = _KINDS.get(kind.lower().removesuffix(".dockyard.dev"))
    if found is None:
        raise UsageError(f"{target!r}: expected dc/NAME, ddeploy/NAME or dj/NAME")
    if not name:
        raise UsageError(f"{target!r}: no name after the slash")
    return found, name


def _rank(obj: dict[str, Any]) -> tuple[bool, bool, str]:
    """kubectl's choice among a controller's Pods: ready first, then running, then the newest."""
    status = obj.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return ready, bool(status.get("containerID")), str(obj["metadata"].get("creationTimestamp") or "")


async def resolve(kube: KubeClient, namespace: str, kind: str, name: str) -> list[str]:
    """The DockerContainers a target means, best first: itself, or the ones its controller owns (a
    DockerDeployment's replicas, a DockerJob's attempts)."""
    if kind == "DockerContainer":
        return [name]
    items = (await kube.list(DOCKERCONTAINERS, namespace=namespace)).get("items") or []
    owned = [
        o
        for o in items
        if any(
            r.get("controller") and r.get("kind") == kind and r.get("name") == name
            for r in o["metadata"].get("ownerReferences") or []
        )
    ]
    if not owned:
        raise AccessError(f"{kind} {namespace}/{name} has no DockerContainers")
    return [o["metadata"]["name"] for o in sorted(owned, key=_rank, reverse=True)]


# -- logs ------------------------------------------------------------------------------------------------------


async def logs(
    kube: KubeClient,
    namespace: str,
    name: str,
    *,
    follow: bool = False,
    tail: int | None = None,
    since: int | None = None,
    timestamps: bool = False,
    previous: bool = False,
    out: BinaryIO,
) -> None:
    query: dict[str, str | int | bool] = {"follow": follow, "timestamps": timestamps, "previous": previous}
    if tail is not None:
        query["tailLines"] = tail
    if since is not None:
        query["sinceSeconds"] = since
    async for chunk in kube.stream(protocol.path(namespace, name, protocol.LOG), query=query):
        out.write(chunk)
        out.flush()


async def logs_all(kube: KubeClient, namespace: str, names: list[str], *, out: BinaryIO, **options: Any) -> None:
    """Every container's log at once, each line prefixed with `[dc/NAME] `, interleaved as lines arrive."""

    class _Prefixed:
        def __init__(self, name: str) -> None:
            self.prefix, self.pending = f"[dc/{name}] ".encode(), b""

        def write(self, data: bytes) -> None:
            *lines, self.pending = (self.pending + data).split(b"\n")
            for line in lines:
                out.write(self.prefix + line + b"\n")

        def flush(self) -> None:
            out.flush()

    async def one(name: str) -> None:
        sink = _Prefixed(name)
        await logs(kube, namespace, name, out=sink, **options)  # type: ignore[arg-type]
        if sink.pending:
            out.write(sink.prefix + sink.pending + b"\n")
            out.flush()

    async with asyncio.TaskGroup() as group:
        for name in names:
            group.create_task(one(name))


# -- exec ------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _raw_terminal(fd: int) -> Iterator[None]:
    saved = termios.tcgetattr(fd)
    try:
        ttys.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _terminal_size() -> tuple[int, int]:
    size = os.get_terminal_size(sys.stdin.fileno())
    return size.columns, size.lines


async def _pump_stdin(ws: aiohttp.ClientWebSocketResponse, fd: int) -> None:
    """Copy our stdin to the process; at EOF, half-close its stdin (`echo x | dockyard exec -i dc/x -- cat`)."""
    loop = asyncio.get_running_loop()
    if stat.S_ISREG(os.fstat(fd).st_mode):  # epoll cannot watch a regular file; reading one never blocks
        while data := os.read(fd, 65536):
            await ws.send_bytes(protocol.frame(protocol.STDIN, data))
    else:
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=16)

        def readable() -> None:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            if not data:
                loop.remove_reader(fd)
            queue.put_nowait(data)
            if queue.full():  # back-pressure: stop reading until the socket took what we have
                loop.remove_reader(fd)

        loop.add_reader(fd, readable)
        try:
            while True:
                data = await queue.get()
                if not data:
                    break
                await ws.send_bytes(protocol.frame(protocol.STDIN, data))
                if queue.qsize() == 0:
                    with contextlib.suppress(ValueError):
                        loop.remove_reader(fd)
                    loop.add_reader(fd, readable)
        finally:
            loop.remove_reader(fd)
    await ws.send_bytes(protocol.close_frame(protocol.STDIN))


async def exec_(kube: KubeClient, namespace: str, name: str, command: list[str], *, stdin: bool, tty: bool) -> int:
    """Run `command` in the container; returns its exit code."""
    if not command:
        raise UsageError("exec needs a command after --")
    if tty and not os.isatty(sys.stdin.fileno()):
        print("Unable to use a TTY - input is not a terminal or the right kind of file", file=sys.stderr)
        tty = False
    query = [("command", c) for c in command] + [("stdin", "1" if stdin else "0"), ("tty", "1" if tty else "0")]
    if tty:
        width, height = _terminal_size()
        query += [("width", str(width)), ("height", str(height))]
    ws = await kube.websocket(
        protocol.path(namespace, name, protocol.EXEC), query=query, protocols=(protocol.SUBPROTOCOL,)
    )
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    with _raw_terminal(sys.stdin.fileno()) if tty else contextlib.nullcontext():
        try:
            if stdin:
                tasks.append(loop.create_task(_pump_stdin(ws, sys.stdin.fileno())))
            if tty:

                def resized() -> None:
                    w, h = _terminal_size()
                    tasks.append(loop.create_task(ws.send_bytes(protocol.resize_frame(w, h))))

                loop.add_signal_handler(signal.SIGWINCH, resized)
            return await _exec_output(ws)
        finally:
            if tty:
                loop.remove_signal_handler(signal.SIGWINCH)
            for task in tasks:
                task.cancel()
            await ws.close()


async def _exec_output(ws: aiohttp.ClientWebSocketResponse) -> int:
    stdout, stderr = sys.stdout.buffer, sys.stderr.buffer
    async for msg in ws:
        if msg.type is not aiohttp.WSMsgType.BINARY:
            continue
        channel, data = protocol.parse(msg.data)
        if channel == protocol.STDOUT:
            stdout.write(data)
            stdout.flush()
        elif channel == protocol.STDERR:
            stderr.write(data)
            stderr.flush()
        elif channel == protocol.STATUS:
            status = json.loads(data)
            if "error" in status:
                raise AccessError(str(status["error"]))
            return int(status.get("exitCode", 0))
    raise AccessError("the connection ended before the process did")


# -- port-forward ----------------------------------------------------------------------------------------------


def parse_ports(spec: str) -> tuple[int, int]:
    """`8080:80`, `80` (the same port locally) or `:80` (any free local port) -> (local, remote)."""
    local, sep, remote = spec.partition(":")
    if not sep:
        local, remote = spec, spec
    try:
        lport, rport = int(local or 0), int(remote)
    except ValueError:
        raise UsageError(f"{spec!r}: ports are LOCAL:REMOTE numbers, e.g. 8080:80") from None
    if not (0 <= lport < 65536 and 0 < rport < 65536):
        raise UsageError(f"{spec!r}: a port is 1-65535")
    return lport, rport


async def _forward(
    kube: KubeClient, path: str, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        ws = await kube.websocket(path, query=[("port", str(port))], protocols=(protocol.SUBPROTOCOL,))
    except Exception as exc:  # one failed connection must not end the forward
        print(f"error: forwarding to port {port}: {exc}", file=sys.stderr)
        writer.close()
        return

    async def upstream() -> None:
        while data := await reader.read(256 * 1024):
            await ws.send_bytes(protocol.frame(protocol.STDIN, data))
        await ws.send_bytes(protocol.close_frame(protocol.STDIN))

    sender = asyncio.create_task(upstream())
    try:
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.BINARY:
                continue
            channel, data = protocol.parse(msg.data)
            if channel == protocol.STDOUT:
                writer.write(data)
                await writer.drain()
            elif channel == protocol.CLOSE:
                if writer.can_write_eof():
                    writer.write_eof()
                await sender
                break
    except (ConnectionError, OSError):
        pass
    finally:
        sender.cancel()
        await ws.close()
        writer.close()


async def port_forward(
    kube: KubeClient,
    namespace: str,
    name: str,
    ports: list[tuple[int, int]],
    *,
    address: str,
    ready: asyncio.Event | None = None,
) -> None:
    """Listen on address:LOCAL for each pair and carry every connection to REMOTE in the container, until
    cancelled. Each connection is its own WebSocket (and mux stream), so a slow one never stalls another."""
    path = protocol.path(namespace, name, protocol.PORTFORWARD)
    # The DockerContainer must exist and be readable before we claim to forward anything.
    await kube.get(DOCKERCONTAINERS, name, namespace=namespace)
    servers = []
    for local, remote in ports:

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter, remote: int = remote) -> None:
            await _forward(kube, path, remote, r, w)

        server = await asyncio.start_server(handle, address, local)
        bound = server.sockets[0].getsockname()[1]
        print(f"Forwarding from {address}:{bound} -> {remote}", flush=True)
        servers.append(server)
    if ready is not None:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        for server in servers:
            server.close()


# -- top -------------------------------------------------------------------------------------------------------


def usage_of(stats: dict[str, Any]) -> tuple[float, int, int, int]:
    """(CPU cores, memory bytes, network rx, network tx) from one Docker stats sample, as `docker stats` counts:
    memory without the page cache (inactive_file), CPU over the sample's interval."""
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    used = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    system = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    cores = used / system * online if system > 0 and used > 0 else 0.0
    memory = stats.get("memory_stats") or {}
    inner = memory.get("stats") or {}
    cache = inner.get("inactive_file", inner.get("total_inactive_file", 0))
    mem = max(int(memory.get("usage", 0)) - int(cache), 0)
    rx = sum(int(n.get("rx_bytes", 0)) for n in (stats.get("networks") or {}).values())
    tx = sum(int(n.get("tx_bytes", 0)) for n in (stats.get("networks") or {}).values())
    return cores, mem, rx, tx


async def top(kube: KubeClient, namespace: str, name: str | None) -> list[tuple[str, str, float, int, int, int]]:
    """(name, host, cores, memory, rx, tx) per running DockerContainer (one, or every one in the namespace)."""
    if name is not None:
        items = [await kube.get(DOCKERCONTAINERS, name, namespace=namespace)]
    else:
        items = list((await kube.list(DOCKERCONTAINERS, namespace=namespace)).get("items") or [])
    running = [o for o in items if (o.get("status") or {}).get("containerID")]

    async def one(obj: dict[str, Any]) -> tuple[str, str, float, int, int, int]:
        n = obj["metadata"]["name"]
        body = await kube.request("GET", protocol.path(namespace, n, protocol.STATS))
        return (n, str(body.get("host", "")), *usage_of(body.get("stats") or {}))

    return list(await asyncio.gather(*(one(o) for o in running)))
