"""The one seam under a Session, and its adapter for asyncio streams (TCP and unix sockets)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable
from typing import Protocol, runtime_checkable

DEFAULT_READ_SIZE = 256 * 1024
DEFAULT_WRITE_HIGH_WATER = 1024 * 1024
CLOSE_TIMEOUT = 1.0  # seconds close() waits for buffered bytes to drain before it aborts the connection


@runtime_checkable
class Transport(Protocol):
    """An ordered, reliable byte pipe. Message transports (WebSocket) qualify: boundaries do not matter."""

    async def receive(self) -> bytes:
        """The next chunk of bytes from the peer; b"" means EOF (the peer closed)."""
        ...

    async def send(self, data: bytes) -> None:
        """Send all of ``data``; may block for backpressure."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class NonBlockingTransport(Transport, Protocol):
    """Optional extension: a transport that can take bytes without awaiting while it is not backed up.

    The Session uses it to write from the caller's task and skip a hop through its writer task, which matters
    for
    small-message latency.
    """

    def writable(self) -> bool:
        """True when send_nowait() may be called (no backpressure right now)."""
        ...

    def send_nowait(self, data: bytes) -> None: ...


class StreamTransport:
    """Transport over an asyncio (StreamReader, StreamWriter) pair from open_connection / start_server."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        read_size: int = DEFAULT_READ_SIZE,
        write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
    ) -> None:
        if read_size < 1 or write_high_water < 1:
            raise ValueError("read_size and write_high_water must be positive")
        self._reader = reader
        self._writer = writer
        self._read_size = read_size
        self._high_water = write_high_water
        self._transport = writer.transport
        # A larger high-water mark lets a bulk stream keep the socket busy without bouncing through drain().
        with contextlib.suppress(AttributeError, NotImplementedError):
            self._transport.set_write_buffer_limits(high=write_high_water)

    async def receive(self) -> bytes:
        return await self._reader.read(self._read_size)

    async def send(self, data: bytes) -> None:
        if self._transport.is_closing():
            raise ConnectionResetError("the transport is closed")
        self._writer.write(data)
        await self._writer.drain()

    def writable(self) -> bool:
        return not self._transport.is_closing() and self._transport.get_write_buffer_size() < self._high_water

    def send_nowait(self, data: bytes) -> None:
        if self._transport.is_closing():
            raise ConnectionResetError("the transport is closed")
        self._writer.write(data)

    async def close(self) -> None:
        """Close after flushing what is buffered, but abort if that takes longer than CLOSE_TIMEOUT (a peer that
        stopped reading would otherwise hold the connection open forever)."""
        self._writer.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._writer.wait_closed()
        except TimeoutError:
            self._transport.abort()
        except OSError:
            pass


@runtime_checkable
class PushTransport(Transport, Protocol):
    """Optional extension: a transport that delivers received bytes by calling back, as they arrive.

    The Session then processes input inside the callback instead of a reader task (one task switch less per
    message). Memory stays bounded without read backpressure: the protocol's windows bound what a peer may send.
    """

    def start_receiving(self, on_data: Callable[[bytes], None], on_eof: Callable[[BaseException | None], None]) -> None:
        """From now on call ``on_data`` for every received chunk and ``on_eof`` once when the connection ends."""
        ...


class SocketTransport(asyncio.Protocol):
    """Transport over an asyncio socket connection (TCP or unix) as an asyncio Protocol: push-based receive,
    non-blocking send. Use ``connect_tcp``/``connect_unix``, or ``loop.create_server(lambda:
    SocketTransport(on_connect=...))`` on the accepting side.

    ``receive()`` works too (for code that pulls): until start_receiving() is called, received bytes are held
    (reading pauses past ``read_high_water``) and handed out by receive().
    """

    def __init__(
        self,
        *,
        on_connect: Callable[[SocketTransport], object] | None = None,
        write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
        read_high_water: int = DEFAULT_READ_SIZE * 4,
    ) -> None:
        if write_high_water < 1 or read_high_water < 1:
            raise ValueError("write_high_water and read_high_water must be positive")
        self._on_connect = on_connect
        self._write_high_water = write_high_water
        self._read_high_water = read_high_water
        self._transport: asyncio.Transport | None = None
        self._on_data: Callable[[bytes], None] | None = None
        self._on_eof: Callable[[BaseException | None], None] | None = None
        self._held: collections.deque[bytes] = collections.deque()
        self._held_size = 0
        self._ended = False
        self._end_error: BaseException | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._waiters: list[asyncio.Future[None]] = []
        self._lost = asyncio.get_running_loop().create_future()

    @classmethod
    async def connect_tcp(cls, host: str, port: int) -> SocketTransport:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, host, port)
        return protocol

    @classmethod
    async def connect_unix(cls, path: str) -> SocketTransport:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_unix_connection(cls, path)
        return protocol

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.set_write_buffer_limits(high=self._write_high_water)
        if self._on_connect is not None:
            self._on_connect(self)

    def data_received(self, data: bytes) -> None:
        if self._on_data is not None:
            self._on_data(data)
            return
        self._held.append(data)
        self._held_size += len(data)
        if self._held_size >= self._read_high_water and self._transport is not None:
            self._transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self._end(None)
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc)
        self._writing_paused = False
        self._wake()
        if not self._lost.done():
            self._lost.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake()

    # Transport, NonBlockingTransport, PushTransport

    def start_receiving(self, on_data: Callable[[bytes], None], on_eof: Callable[[BaseException | None], None]) -> None:
        self._on_data = on_data
        self._on_eof = on_eof
        while self._held:
            on_data(self._held.popleft())
        self._held_size = 0
        if self._reading_paused and self._transport is not None:
            self._transport.resume_reading()
            self._reading_paused = False
        if self._ended:
            on_eof(self._end_error)

    async def receive(self) -> bytes:
        while not self._held:
            if self._ended:
                if self._end_error is not None:
                    raise ConnectionResetError(f"the connection was lost: {self._end_error!r}")
                return b""
            await self._wait()
        data = self._held.popleft()
        self._held_size -= len(data)
        if self._reading_paused and self._held_size < self._read_high_water // 2 and self._transport is not None:
            self._transport.resume_reading()
            self._reading_paused = False
        return data

    async def send(self, data: bytes) -> None:
        self.send_nowait(data)
        while self._writing_paused:
            await self._wait()
        if self._transport is None or self._transport.is_closing():
            raise ConnectionResetError("the transport is closed")

    def writable(self) -> bool:
        transport = self._transport
        return transport is not None and not self._writing_paused and not transport.is_closing()

    def send_nowait(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the transport is closed")
        transport.write(data)

    async def close(self) -> None:
        """Close after flushing what is buffered; abort after CLOSE_TIMEOUT (see StreamTransport.close)."""
        if self._transport is not None:
            self._transport.close()
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await asyncio.shield(self._lost)
            except TimeoutError:
                self._transport.abort()
                await self._lost

    def _end(self, exc: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._end_error = exc
        self._wake()
        if self._on_eof is not None:
            self._on_eof(exc)

    async def _wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if not waiter.done():
                self._waiters.remove(waiter)

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
