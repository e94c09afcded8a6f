"""Opening typed streams to a connected host (the `docker` kind is used by dockerapi.bridging)."""

from __future__ import annotations

import asyncio
import ipaddress

from dockyard_mux import MuxError, Session, Stream
from dockyard_tunnel.errors import DialError, HostNotConnectedError
from dockyard_tunnel.server.registry import SessionRegistry
from dockyard_tunnel.stream_headers import TCP_CONNECTED, StreamTarget, TcpTarget, encode_header


async def open_target_stream(registry: SessionRegistry, *, host: str, target: StreamTarget) -> Stream:
    """A new stream to `host` that the agent connects to `target`.

    Raises HostNotConnectedError when the host has no live session. For a `tcp` target the agent answers
    TCP_CONNECTED once connected, or resets the stream if it refuses or cannot dial: dial_tcp waits for that.
    """
    session = registry.require(host)
    try:
        stream = await session.open_stream()
    except MuxError as e:
        raise HostNotConnectedError(host) from e
    try:
        await stream.write(encode_header(target))
    except BaseException:
        stream.reset()
        raise
    return stream


async def dial_tcp(
    registry: SessionRegistry, *, host: str, ip: str, port: int, timeout: float, container: str | None = None
) -> Stream:
    """A stream connected to `ip:port` through `host`'s agent, once the agent says it is connected.

    Raises DialError (nothing reached the target) when the host has no session, the agent refused the address
    or could not connect, or no answer came within `timeout` seconds.
    """
    try:
        session = registry.require(host)
    except HostNotConnectedError as e:
        raise DialError(f"{host}: {e}") from e
    return await dial_on_session(session, ip=ip, port=port, timeout=timeout, what=host, container=container)


async def dial_on_session(
    session: Session, *, ip: str, port: int, timeout: float, what: str = "", container: str | None = None
) -> Stream:
    """dial_tcp on a given session (`what` names its host in errors; `container`, when known, is the Docker id
    the agent must find at `ip`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        target = TcpTarget(ip=ipaddress.ip_address(ip), port=port, container=container)
        # The timeout covers the open too: a session at max_streams queues opens until a slot frees.
        async with asyncio.timeout_at(deadline):
            stream = await session.open_stream()
        try:
            await stream.write(encode_header(target))
        except BaseException:
            stream.reset()
            raise
    except (ValueError, MuxError) as e:
        raise DialError(f"{what}: {e}") from e
    except TimeoutError as e:
        raise DialError(f"{what}: no stream free on the session in time") from e
    try:
        async with asyncio.timeout_at(deadline):
            answer = await stream.read_exactly(1)
    except (MuxError, TimeoutError, asyncio.IncompleteReadError) as e:
        stream.reset()
        reason = "no answer in time" if isinstance(e, TimeoutError) else "refused or not listening"
        raise DialError(f"{what}: {ip}:{port}: {reason}") from e
    except BaseException:  # cancelled while waiting: the agent may have connected; let it let go
        stream.reset()
        raise
    if answer != TCP_CONNECTED:
        stream.reset()
        raise DialError(f"{what}: {ip}:{port}: unexpected answer {answer!r} (an agent of another version?)")
    return stream
