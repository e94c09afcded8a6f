"""Session: one multiplexed yamux session over one Transport, driven by asyncio tasks.

Up to three tasks: a reader (transport -> protocol core -> streams; not needed when the transport pushes bytes
through a callback), a writer (protocol core -> transport, used when the transport applies backpressure or has
no non-blocking path) and a timer (RTT probes and keepalive). Every wait is bounded by a window, a buffer size or
a timeout; no queue here grows without a limit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Coroutine
from types import TracebackType

from dockyard_mux.aio.streams import Stream
from dockyard_mux.aio.transports import NonBlockingTransport, PushTransport, SocketTransport, Transport
from dockyard_mux.proto.config import Config
from dockyard_mux.proto.connection import Connection
from dockyard_mux.proto.errors import (
    KeepaliveTimeoutError,
    LocalProtocolError,
    RemoteProtocolError,
    SessionClosedError,
    StreamLimitError,
)
from dockyard_mux.proto.events import (
    DataReceived,
    GoAwayReceived,
    PingAcknowledged,
    StreamAcknowledged,
    StreamEnded,
    StreamOpened,
    StreamReset,
    WindowUpdated,
)
from dockyard_mux.proto.frames import GoAwayCode

_FINAL_FLUSH_TIMEOUT = 1.0  # seconds to deliver a last Go Away before the transport is closed
_RTT_SAMPLES = 8  # window growth uses the minimum of the last few RTTs: queueing inflates single samples
_STARTUP_PROBES = 3


class Session:
    """A yamux session. ``client=True`` opens odd stream ids (the yamux client), False even ids."""

    def __init__(self, transport: Transport, *, client: bool, config: Config | None = None) -> None:
        self._transport = transport
        self._config = config if config is not None else Config()
        self._conn = Connection(client=client, config=self._config)
        self._nowait: NonBlockingTransport | None = transport if isinstance(transport, NonBlockingTransport) else None
        self._push: PushTransport | None = transport if isinstance(transport, PushTransport) else None
        self._streams: dict[int, Stream] = {}
        self._accept_queue: collections.deque[Stream] = collections.deque()
        self._accept_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._space_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        # open_stream() callers waiting for a stream slot, first come first served, and how many of them were
        # woken for a slot they have not taken yet (so one freed slot wakes one opener, not all of them).
        self._open_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._openers_woken = 0
        self._pings: dict[int, asyncio.Future[None]] = {}
        self._wakeup = asyncio.Event()
        self._writer_busy = False
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._rtt: float | None = None
        self._rtt_samples: collections.deque[float] = collections.deque(maxlen=_RTT_SAMPLES)
        self._close_reason: BaseException | None = None
        self._closed_event = asyncio.Event()
        self._finisher: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Session:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the session's tasks (reader, writer, keepalive timer). Idempotent."""
        if self._started:
            return
        if self._close_reason is not None:
            raise self._closed_error()
        self._started = True
        loop = asyncio.get_running_loop()
        tasks: list[tuple[str, Coroutine[None, None, None]]] = [
            ("writer", self._write_loop()),
            ("timer", self._timer_loop()),
        ]
        if self._push is None:
            tasks.append(("reader", self._read_loop()))
        for name, coro in tasks:
            task = loop.create_task(coro, name=f"dockyard-mux-{name}")
            self._tasks.append(task)
        if self._push is not None:
            # Received bytes are processed inside the transport's callback: one task switch less per message.
            self._push.start_receiving(self._on_data, self._on_eof)

    @property
    def closed(self) -> bool:
        return self._close_reason is not None

    @property
    def close_reason(self) -> BaseException | None:
        return self._close_reason

    @property
    def rtt(self) -> float | None:
        """Last measured round-trip time in seconds (probed at start, refreshed by keepalive)."""
        return self._rtt

    @property
    def num_streams(self) -> int:
        """Streams that are neither fully closed nor reset."""
        return len(self._streams)

    @property
    def bytes_sent(self) -> int:
        return self._conn.bytes_sent

    @property
    def bytes_received(self) -> int:
        return self._conn.bytes_received

    @property
    def config(self) -> Config:
        return self._config

    async def open_stream(self) -> Stream:
        """Open a stream (the SYN goes out at once; data may follow before the peer's ACK).

        While ``max_streams`` streams exist, or ``accept_backlog`` of our opens await the peer's ACK, it waits
        (first come, first served) for a slot, up to ``stream_open_timeout``; then it raises StreamLimitError.
        """
        self._check_open()
        conn = self._conn
        if conn.local_goaway or conn.remote_goaway is not None:
            raise SessionClosedError("the session is going away: no new streams")
        if self._open_waiters or self._free_open_slots() <= 0:
            await self._wait_for_open_slot()
        stream_id = conn.open_stream()
        stream = Stream(self, stream_id)
        self._streams[stream_id] = stream
        stream._ack_timer = asyncio.get_running_loop().call_later(
            self._config.stream_open_timeout, stream._open_timed_out
        )
        self._flush()
        return stream

    async def accept_stream(self) -> Stream:
        """The next stream the peer opened; SessionClosedError once the session or stream opening is over."""
        loop = asyncio.get_running_loop()
        while not self._accept_queue:
            self._check_open()
            if self._conn.local_goaway or self._conn.remote_goaway is not None:
                raise SessionClosedError("the session is going away: no new streams will arrive")
            waiter = loop.create_future()
            self._accept_waiters.append(waiter)
            try:
                await waiter
            finally:
                with contextlib.suppress(ValueError):
                    self._accept_waiters.remove(waiter)
        stream = self._accept_queue.popleft()
        self._conn.mark_accepted(stream.stream_id)
        return stream

    async def ping(self) -> float:
        """Round-trip time of one ping, in seconds. Wrap in asyncio.timeout() to bound the wait."""
        self._check_open()
        loop = asyncio.get_running_loop()
        opaque = self._conn.ping()
        waiter = loop.create_future()
        self._pings[opaque] = waiter
        started = loop.time()
        self._flush()
        try:
            await waiter
        finally:
            self._pings.pop(opaque, None)
            self._conn.forget_ping(opaque)
        rtt = loop.time() - started
        self._rtt = rtt
        self._rtt_samples.append(rtt)
        # The minimum is the path's RTT without queueing (a ping behind a bulk transfer, or one taken while
        # the process starts up, measures the queue); growing windows on an inflated RTT only deepens the
        # queue.
        self._conn.rtt = min(self._rtt_samples)
        return rtt

    async def go_away(self) -> None:
        """Graceful: neither side opens new streams; open streams may finish. Close the session afterwards."""
        self._check_open()
        self._conn.go_away(GoAwayCode.NORMAL)
        self._flush()
        for waiter in self._accept_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._wake_openers()

    async def close(self) -> None:
        """Hard close: Go Away (best effort), fail every stream with SessionClosedError, close the transport."""
        if self._close_reason is None:
            self._conn.go_away(GoAwayCode.NORMAL)
            self._abort(SessionClosedError("the session was closed locally"))
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Return once the session has ended, for any reason, and its transport is closed."""
        await self._closed_event.wait()

    # ---------------------------------------------------------------- internals used by Stream

    def _check_open(self) -> None:
        if self._close_reason is not None:
            raise self._closed_error()

    def _closed_error(self) -> SessionClosedError:
        reason = self._close_reason
        error: SessionClosedError
        if isinstance(reason, SessionClosedError):
            error = type(reason)(reason.reason)
        elif isinstance(reason, RemoteProtocolError):
            error = SessionClosedError(f"the peer broke the protocol: {reason}")
        else:
            error = SessionClosedError(f"the session failed: {reason!r}")
        error.__cause__ = reason
        return error

    def _flush(self) -> None:
        """Hand queued frames to the transport: directly when it can take them, else via the writer task."""
        conn = self._conn
        if not conn.pending_bytes or self._close_reason is not None:
            return
        nowait = self._nowait
        if self._writer_busy or nowait is None or not nowait.writable():
            self._wakeup.set()
            return
        try:
            nowait.send_nowait(conn.data_to_send())
        except (OSError, RuntimeError) as exc:
            self._abort(SessionClosedError(f"the transport failed: {exc!r}"))
            return
        if self._space_waiters:
            self._wake_space_waiters()

    async def _reserve_space(self) -> None:
        """Wait (first come, first served) until the session's write buffer has room."""
        if not self._space_waiters and self._conn.pending_bytes < self._config.write_buffer_size:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._space_waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._wake_space_waiters()  # we were woken but will not write: pass the turn on
            else:
                with contextlib.suppress(ValueError):
                    self._space_waiters.remove(waiter)
            raise

    def _wake_space_waiters(self) -> None:
        """Wake the next writer if there is room (or everyone if the session is gone, so they fail)."""
        waiters = self._space_waiters
        if self._close_reason is not None:
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
            return
        while waiters and self._conn.pending_bytes < self._config.write_buffer_size:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _free_open_slots(self) -> int:
        """Streams we could open now, less those promised to openers already woken."""
        conn = self._conn
        config = self._config
        free = min(
            config.max_streams - conn.num_streams,
            # hashicorp/yamux resets SYNs past the streams its application has not accepted (its AcceptBacklog,
            # 256 by default) and limits its own unacknowledged opens the same way; so do we, with ours.
            config.accept_backlog - conn.unacknowledged_opens,
        )
        return free - self._openers_woken

    async def _wait_for_open_slot(self) -> None:
        loop = asyncio.get_running_loop()
        waiters = self._open_waiters
        conn = self._conn
        timeout = self._config.stream_open_timeout
        keep_turn = False
        try:
            async with asyncio.timeout(timeout):
                while True:
                    waiter = loop.create_future()
                    if keep_turn:
                        waiters.appendleft(waiter)  # woken, but the slot went to a peer's stream: stay first
                    else:
                        waiters.append(waiter)
                    try:
                        await waiter
                    except BaseException:
                        if waiter.done() and not waiter.cancelled():
                            self._openers_woken -= 1
                            self._wake_openers()  # we were woken but will not open: pass the slot on
                        else:
                            with contextlib.suppress(ValueError):
                                waiters.remove(waiter)
                        raise
                    self._openers_woken -= 1
                    self._check_open()
                    if conn.local_goaway or conn.remote_goaway is not None:
                        raise SessionClosedError("the session is going away: no new streams")
                    if self._free_open_slots() > 0:
                        return
                    keep_turn = True
        except TimeoutError:
            raise StreamLimitError(
                f"no stream slot within stream_open_timeout ({timeout} s): {conn.num_streams} streams are open "
                f"(max_streams {self._config.max_streams}), {conn.unacknowledged_opens} of ours unacknowledged"
            ) from None

    def _wake_openers(self) -> None:
        """Wake one waiting opener per free slot (every one if the session is ending, so they fail)."""
        waiters = self._open_waiters
        conn = self._conn
        if self._close_reason is not None or conn.local_goaway or conn.remote_goaway is not None:
            free = len(waiters)
        else:
            free = self._free_open_slots()
        while waiters and free > 0:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._openers_woken += 1
                free -= 1

    def _stream_finished(self, stream: Stream) -> None:
        self._streams.pop(stream.stream_id, None)
        if stream.is_reset and self._accept_queue and stream in self._accept_queue:
            # Reset before anyone accepted it: drop it, or a peer opening and resetting streams in a loop
            # would grow the queue without bound (the core already stopped counting it against the backlog).
            self._accept_queue.remove(stream)

    # ---------------------------------------------------------------- tasks

    async def _read_loop(self) -> None:
        try:
            while self._close_reason is None:
                data = await self._transport.receive()
                if not data:
                    self._abort(SessionClosedError("the peer closed the transport"))
                    return
                self._process(data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._abort(SessionClosedError(f"receiving from the transport failed: {exc!r}"))

    def _on_data(self, data: bytes) -> None:
        """PushTransport callback."""
        if self._close_reason is not None:
            return
        try:
            self._process(data)
        except Exception as exc:
            self._abort(SessionClosedError(f"processing received bytes failed: {exc!r}"))

    def _on_eof(self, exc: BaseException | None) -> None:
        """PushTransport callback: the connection ended (``exc`` says why, None for a clean EOF)."""
        if exc is None:
            self._abort(SessionClosedError("the peer closed the transport"))
        else:
            self._abort(SessionClosedError(f"the transport failed: {exc!r}"))

    def _process(self, data: bytes) -> None:
        """Feed received bytes to the core and hand the resulting events to streams and waiters."""
        conn = self._conn
        streams = self._streams
        try:
            events = conn.receive_data(data)
        except RemoteProtocolError as exc:
            self._abort(exc)
            return
        for event in events:
            if type(event) is DataReceived:
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream._feed(event.data)
                else:
                    conn.acknowledge(event.stream_id, len(event.data))
            elif type(event) is WindowUpdated:
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream._window_opened()
            else:
                self._dispatch_rare(event)
        if self._close_reason is None:
            self._flush()
        if self._open_waiters:
            # ACKs, FINs and RSTs free slots for waiting openers.
            self._wake_openers()

    def _dispatch_rare(self, event: object) -> None:
        streams = self._streams
        if isinstance(event, StreamOpened):
            opened = Stream(self, event.stream_id)
            streams[event.stream_id] = opened
            self._accept_queue.append(opened)
            while self._accept_waiters:
                acceptor = self._accept_waiters.popleft()
                if not acceptor.done():
                    acceptor.set_result(None)
                    break
            return
        if isinstance(event, PingAcknowledged):
            pinger = self._pings.get(event.opaque)
            if pinger is not None and not pinger.done():
                pinger.set_result(None)
            return
        if isinstance(event, GoAwayReceived):
            if event.code != GoAwayCode.NORMAL:
                name = GoAwayCode(event.code).name.lower().replace("_", " ")
                self._abort(SessionClosedError(f"the peer ended the session with go away ({name})"))
                return
            for acceptor in self._accept_waiters:
                if not acceptor.done():
                    acceptor.set_result(None)
            return
        if not isinstance(event, StreamEnded | StreamReset | StreamAcknowledged):
            return  # PingReceived: the core already queued the answer
        stream = streams.get(event.stream_id)
        if stream is None:
            return
        if isinstance(event, StreamEnded):
            stream._feed_eof()
        elif isinstance(event, StreamReset):
            stream._mark_reset(by_peer=True)
        else:
            stream._acknowledged()

    async def _write_loop(self) -> None:
        conn = self._conn
        transport = self._transport
        timeout = self._config.connection_write_timeout
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while conn.pending_bytes:
                    data = conn.data_to_send()
                    self._writer_busy = True
                    self._wake_space_waiters()
                    try:
                        async with asyncio.timeout(timeout):
                            await transport.send(data)
                    finally:
                        self._writer_busy = False
                self._wake_space_waiters()
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self._abort(SessionClosedError(f"a transport send blocked for more than {timeout} s"))
        except Exception as exc:
            self._abort(SessionClosedError(f"sending to the transport failed: {exc!r}"))

    async def _timer_loop(self) -> None:
        config = self._config
        # A few probes at start give the RTT that receive-window growth needs.
        with contextlib.suppress(TimeoutError, SessionClosedError):
            async with asyncio.timeout(config.keepalive_timeout):
                for _ in range(_STARTUP_PROBES):
                    await self.ping()
        if not config.enable_keepalive:
            return
        while True:
            await asyncio.sleep(config.keepalive_interval)
            try:
                async with asyncio.timeout(config.keepalive_timeout):
                    await self.ping()
            except LocalProtocolError:
                continue  # the application has max_outstanding_pings in flight: those probe the peer already
            except TimeoutError:
                self._abort(
                    KeepaliveTimeoutError(
                        f"the peer did not answer a keepalive ping within {config.keepalive_timeout} s"
                    )
                )
                return
            except SessionClosedError:
                return

    def _abort(self, reason: BaseException) -> None:
        """End the session once: fail every waiter, stop the tasks, flush a last Go Away, close the
        transport."""
        if self._close_reason is not None:
            return
        self._close_reason = reason
        for stream in list(self._streams.values()):
            stream._session_closed()
        for stream in self._accept_queue:
            stream._session_closed()
        self._streams.clear()
        for acceptor in self._accept_waiters:
            if not acceptor.done():
                acceptor.set_result(None)  # the acceptor wakes and raises SessionClosedError itself
        for pinger in self._pings.values():
            if not pinger.done():
                pinger.set_exception(self._closed_error())
        self._wake_space_waiters()
        self._wake_openers()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self._finisher = asyncio.get_running_loop().create_task(self._finish(current))

    async def _finish(self, current: asyncio.Task[object] | None) -> None:
        try:
            others = [task for task in self._tasks if task is not current]
            await asyncio.gather(*others, return_exceptions=True)
            data = self._conn.data_to_send()
            if data:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(_FINAL_FLUSH_TIMEOUT):
                        await self._transport.send(data)
            with contextlib.suppress(Exception):
                # Bounded even for a transport whose close() would wait for a peer that stopped reading.
                async with asyncio.timeout(2 * _FINAL_FLUSH_TIMEOUT):
                    await self._transport.close()
        finally:
            self._closed_event.set()


async def connect_tcp_session(host: str, port: int, *, client: bool = True, config: Config | None = None) -> Session:
    """Connect over TCP and return a started Session (the yamux client side by default)."""
    session = Session(await SocketTransport.connect_tcp(host, port), client=client, config=config)
    await session.start()
    return session


async def connect_unix_session(path: str, *, client: bool = True, config: Config | None = None) -> Session:
    """Connect over a unix socket and return a started Session."""
    session = Session(await SocketTransport.connect_unix(path), client=client, config=config)
    await session.start()
    return session
