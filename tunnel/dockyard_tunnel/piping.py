"""Copying bytes both ways between a mux stream and a socket, with half-close in both directions.

Half-close matters: `docker exec` with stdin only finishes when stdin's EOF crosses the tunnel, and an HTTP
client may half-close after its request. So EOF on one side becomes FIN on the other and the opposite
direction keeps flowing until it ends too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Literal

from dockyard_mux import MuxError, Stream
from dockyard_tunnel.stream_headers import TCP_CONNECTED

CHUNK = 256 * 1024


def bad_gateway_response(message: str) -> bytes:
    """A complete HTTP 502 answer with a Docker-style JSON error body, so aiodocker shows `message`."""
    body = json.dumps({"message": message}).encode()
    head = (
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + body


Direction = Literal["to_stream", "to_socket"]


@dataclass(slots=True)
class SpliceProgress:
    """What a splice moved so far; read by its owner while it runs (for example to find idle connections)."""

    to_stream: int = 0
    to_socket: int = 0
    #: The direction of the most recent bytes. An HTTP/1.1 client waits for the answer after each request,
    #: also on a kept-alive connection, so for the side facing the client, "to_stream" last means a request is
    #: waiting with no byte of its answer sent yet; for the side facing the server it means the answer went out.
    last_direction: Direction | None = None
    last_activity: float = field(default_factory=time.monotonic)

    def _moved(self, direction: Direction, n: int) -> None:
        if direction == "to_stream":
            self.to_stream += n
        else:
            self.to_socket += n
        self.last_direction = direction
        self.last_activity = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_activity


class SpliceFailedError(Exception):
    """One side of a splice failed; `side` says which and `cause` why; `progress` what had moved."""

    def __init__(self, *, side: Literal["stream", "socket"], cause: BaseException, progress: SpliceProgress) -> None:
        super().__init__(f"{side} side failed: {cause!r}")
        self.side: Literal["stream", "socket"] = side
        self.cause = cause
        self.progress = progress


async def _socket_to_stream(reader: asyncio.StreamReader, stream: Stream, progress: SpliceProgress) -> None:
    while True:
        try:
            data = await reader.read(CHUNK)
        except OSError as e:
            raise SpliceFailedError(side="socket", cause=e, progress=progress) from e
        try:
            if not data:
                await stream.send_eof()
                return
            await stream.write(data)
        except MuxError as e:
            raise SpliceFailedError(side="stream", cause=e, progress=progress) from e
        progress._moved("to_stream", len(data))


async def _stream_to_socket(stream: Stream, writer: asyncio.StreamWriter, progress: SpliceProgress) -> None:
    while True:
        try:
            data = await stream.read(CHUNK)
        except MuxError as e:
            raise SpliceFailedError(side="stream", cause=e, progress=progress) from e
        try:
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()
        except OSError as e:
            raise SpliceFailedError(side="socket", cause=e, progress=progress) from e
        progress._moved("to_socket", len(data))


async def splice(
    stream: Stream,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    progress: SpliceProgress | None = None,
) -> SpliceProgress:
    """Copy both ways until both directions reached EOF; return what moved.

    On failure of either side the other direction is cancelled and SpliceFailedError is raised; the caller
    owns cleanup (reset the stream, abort or answer on the socket). Cancellation propagates unchanged.
    """
    progress = progress or SpliceProgress()
    up = asyncio.ensure_future(_socket_to_stream(reader, stream, progress))
    down = asyncio.ensure_future(_stream_to_socket(stream, writer, progress))
    try:
        pending: set[asyncio.Future[None]] = {up, down}
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if error is not None:
                    raise error
    finally:
        unfinished = [task for task in (up, down) if not task.done()]
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        for task in (up, down):
            # Both sides can fail in the same round (a reset socket fails the read and the write): the one not
            # raised above is still retrieved, or asyncio reports it as never retrieved.
            if task.done() and not task.cancelled():
                task.exception()
    return progress


async def relay(stream: Stream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> SpliceProgress:
    """splice(), then close both sides: cleanly after both EOFs, or by reset and abort when a side failed (also
    when cancelled, which then propagates). Returns what moved either way; never raises SpliceFailedError."""
    progress = SpliceProgress()
    try:
        await splice(stream, reader, writer, progress=progress)
    except SpliceFailedError:
        stream.reset()
        writer.transport.abort()
        return progress
    except BaseException:
        stream.reset()
        writer.transport.abort()
        raise
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    with contextlib.suppress(MuxError):
        await stream.aclose()
    return progress


async def answer_and_relay(stream: Stream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The answering side of a `tcp` or `import` stream once its socket is connected: TCP_CONNECTED (the dialer
    learns that nothing was sent before it), then relay(). A peer gone before the answer: reset and abort."""
    try:
        await stream.write(TCP_CONNECTED)
    except MuxError:
        stream.reset()
        writer.transport.abort()
        return
    await relay(stream, reader, writer)


async def read_to_eof(stream: Stream, *, limit: int) -> bytes:
    """Everything the peer sends up to its FIN (a small document); ValueError past `limit` bytes."""
    data = bytearray()
    while chunk := await stream.read(CHUNK):
        data += chunk
        if len(data) > limit:
            raise ValueError(f"more than {limit} bytes")
    return bytes(data)
