"""Opening typed streams to a connected host (the `docker` kind is used by dockerapi.bridging)."""

from __future__ import annotations

from dockyard_mux import MuxError, Stream
from dockyard_tunnel.errors import HostNotConnectedError
from dockyard_tunnel.server.registry import SessionRegistry
from dockyard_tunnel.stream_headers import StreamTarget, encode_header


async def open_target_stream(registry: SessionRegistry, *, host: str, target: StreamTarget) -> Stream:
    """A new stream to `host` that the agent connects to `target`.

    Raises HostNotConnectedError when the host has no live session. For a `tcp` target the agent resets the
    stream if it refuses or cannot dial, which the caller sees as StreamResetError on its first read.
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
