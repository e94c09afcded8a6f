"""Stream: one bidirectional byte stream of a Session."""

from __future__ import annotations

import asyncio
import collections
from types import TracebackType
from typing import TYPE_CHECKING

from dockyard_mux.proto.errors import StreamClosedError, StreamResetError

if TYPE_CHECKING:
    from dockyard_mux.aio.sessions import Session


def _wake(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
    waiters.clear()


async def _wait(loop: asyncio.AbstractEventLoop, waiters: list[asyncio.Future[None]]) -> None:
    """Wait for the next _wake(waiters). Several tasks may wait at once (one future each, so cancelling one
    waiter never disturbs the others)."""
    waiter = loop.create_future()
    waiters.append(waiter)
    try:
        await waiter
    finally:
        if not waiter.done():
            waiters.remove(waiter)


class Stream:
    """A yamux stream. Reads return what has arrived (b"" at EOF); writes wait for send window.

    Cancelling a read loses nothing (bytes stay buffered); cancelling a write may leave a prefix of the data
    sent, as with any socket.
    """

    __slots__ = (
        "_ack_timer",
        "_buffered",
        "_chunks",
        "_eof",
        "_fin_sent",
        "_loop",
        "_offset",
        "_read_waiters",
        "_reset_error",
        "_session",
        "_window_waiters",
        "stream_id",
    )

    def __init__(self, session: Session, stream_id: int) -> None:
        self.stream_id = stream_id
        self._session = session
        self._loop = asyncio.get_running_loop()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._offset = 0
        self._buffered = 0
        self._eof = False
        self._fin_sent = False
        self._reset_error: StreamResetError | None = None
        self._read_waiters: list[asyncio.Future[None]] = []
        self._window_waiters: list[asyncio.Future[None]] = []
        self._ack_timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return (
            f"<Stream {self.stream_id} buffered={self._buffered} eof={self._eof} fin_sent={self._fin_sent}"
            f" reset={self._reset_error is not None}>"
        )

    # ---------------------------------------------------------------- public

    @property
    def at_eof(self) -> bool:
        """True when the peer half-closed and every received byte has been read."""
        return self._eof and not self._buffered

    @property
    def is_reset(self) -> bool:
        return self._reset_error is not None

    async def read(self, max_bytes: int = 65536) -> bytes:
        """Up to ``max_bytes`` bytes; b"" at EOF. Raises StreamResetError, or SessionClosedError once the
        session is gone and nothing is left to read."""
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        while not self._buffered:
            if self._reset_error is not None:
                raise StreamResetError(self.stream_id, by_peer=self._reset_error.by_peer)
            if self._eof:
                return b""
            if self._session.closed:
                raise self._session._closed_error()
            await _wait(self._loop, self._read_waiters)
        return self._take(max_bytes)

    async def read_exactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; asyncio.IncompleteReadError if EOF comes first."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        parts: list[bytes] = []
        got = 0
        while got < n:
            chunk = await self.read(n - got)
            if not chunk:
                raise asyncio.IncompleteReadError(b"".join(parts), n)
            parts.append(chunk)
            got += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of ``data``, waiting for send window and for the session's write buffer (backpressure)."""
        payload = data if isinstance(data, bytes) else bytes(data)
        total = len(payload)
        if not total:
            self._check_writable()
            return
        session = self._session
        conn = session._conn
        step = session._config.max_data_frame
        if (
            total <= step
            and not session._space_waiters
            and conn.pending_bytes < session._config.write_buffer_size
            and conn.send_window(self.stream_id) >= total
            and self._reset_error is None
            and not self._fin_sent
            and session._close_reason is None
        ):
            # Fast path for a small write that fits: the loop below would take the same steps, with more calls.
            conn.send_data(self.stream_id, payload)
            session._flush()
            return
        view = memoryview(payload) if total > step else None
        offset = 0
        while offset < total:
            self._check_writable()
            if not conn.send_window(self.stream_id):
                await self._wait_window()
                continue
            await session._reserve_space()
            try:
                self._check_writable()
            except BaseException:
                session._wake_space_waiters()
                raise
            window = conn.send_window(self.stream_id)
            if not window:
                session._wake_space_waiters()
                continue
            n = min(window, total - offset, step)
            if view is None and n == total:
                conn.send_data(self.stream_id, payload)
            else:
                if view is None:
                    view = memoryview(payload)
                conn.send_data(self.stream_id, view[offset : offset + n])
            offset += n
            session._flush()
            if session._space_waiters:
                session._wake_space_waiters()

    async def send_eof(self) -> None:
        """Half-close: send FIN. Reading stays possible. Idempotent."""
        if self._reset_error is not None:
            raise StreamResetError(self.stream_id, by_peer=self._reset_error.by_peer)
        if self._fin_sent:
            return
        if self._session.closed:
            raise self._session._closed_error()
        self._fin_sent = True
        session = self._session
        session._conn.half_close(self.stream_id)
        session._flush()
        if self._eof:
            session._stream_finished(self)
        if session._open_waiters:
            session._wake_openers()

    def reset(self) -> None:
        """Abort both directions (RST). Never blocks; unread data is dropped."""
        if self._reset_error is not None or (self._fin_sent and self._eof):
            return
        self._mark_reset(by_peer=False)
        session = self._session
        if not session.closed:
            session._conn.reset(self.stream_id)
            session._flush()
            if session._open_waiters:
                session._wake_openers()

    async def aclose(self) -> None:
        """Send FIN if not sent, then wait (up to stream_close_timeout) for the peer's FIN, discarding what
        still arrives so the peer can finish; reset the stream on timeout."""
        if self._reset_error is not None or self._session.closed:
            return
        await self.send_eof()
        try:
            async with asyncio.timeout(self._session._config.stream_close_timeout):
                while not self._eof and self._reset_error is None and not self._session.closed:
                    self._discard()
                    await _wait(self._loop, self._read_waiters)
                self._discard()
        except TimeoutError:
            self.reset()

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            await self.aclose()
        else:
            self.reset()

    # ---------------------------------------------------------------- internals

    def _check_writable(self) -> None:
        if self._reset_error is not None:
            raise StreamResetError(self.stream_id, by_peer=self._reset_error.by_peer)
        if self._fin_sent:
            raise StreamClosedError(f"stream {self.stream_id} was half-closed by us; writing is over")
        if self._session.closed:
            raise self._session._closed_error()

    async def _wait_window(self) -> None:
        await _wait(self._loop, self._window_waiters)

    def _take(self, max_bytes: int) -> bytes:
        chunks = self._chunks
        first = chunks[0]
        offset = self._offset
        if offset == 0 and len(first) <= max_bytes and (len(chunks) == 1 or len(first) * 2 >= max_bytes):
            # Whole-chunk fast path: no copy.
            chunks.popleft()
            data = first
        else:
            parts: list[bytes] = []
            need = max_bytes
            while need and chunks:
                chunk = chunks[0]
                available = len(chunk) - offset
                if available <= need:
                    parts.append(chunk[offset:] if offset else chunk)
                    chunks.popleft()
                    offset = 0
                    need -= available
                else:
                    parts.append(chunk[offset : offset + need])
                    offset += need
                    need = 0
            self._offset = offset
            data = parts[0] if len(parts) == 1 else b"".join(parts)
        n = len(data)
        self._buffered -= n
        session = self._session
        if session._close_reason is None:
            conn = session._conn
            conn.acknowledge(self.stream_id, n, now=self._loop.time())
            if conn.pending_bytes:
                session._flush()
            if session._open_waiters:
                session._wake_openers()  # reading the last bytes of a closed stream frees its slot
        return data

    def _discard(self) -> None:
        if self._buffered:
            n = self._buffered
            self._chunks.clear()
            self._offset = 0
            self._buffered = 0
            session = self._session
            if not session.closed:
                session._conn.acknowledge(self.stream_id, n, now=self._loop.time())
                session._flush()
                if session._open_waiters:
                    session._wake_openers()

    # Called by the Session's reader.

    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        _wake(self._read_waiters)

    def _feed_eof(self) -> None:
        self._eof = True
        _wake(self._read_waiters)
        if self._fin_sent:
            self._session._stream_finished(self)

    def _window_opened(self) -> None:
        _wake(self._window_waiters)

    def _acknowledged(self) -> None:
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None

    def _open_timed_out(self) -> None:
        self._ack_timer = None
        self.reset()

    def _mark_reset(self, *, by_peer: bool) -> None:
        self._reset_error = StreamResetError(self.stream_id, by_peer=by_peer)
        self._chunks.clear()
        self._buffered = 0
        self._offset = 0
        self._acknowledged()
        _wake(self._read_waiters)
        _wake(self._window_waiters)
        self._session._stream_finished(self)

    def _session_closed(self) -> None:
        self._acknowledged()
        _wake(self._read_waiters)
        _wake(self._window_waiters)
