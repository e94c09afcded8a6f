"""The asyncio Session and Stream over real TCP loopback (and a unix socket)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from dockyard_mux import (
    Config,
    KeepaliveTimeoutError,
    Session,
    SessionClosedError,
    SocketTransport,
    Stream,
    StreamClosedError,
    StreamLimitError,
    StreamResetError,
    StreamTransport,
    connect_tcp_session,
    connect_unix_session,
)
from dockyard_mux.proto.frames import Flag, FrameType
from dockyard_mux.testing import SessionPair, check_receive_accounting, frame, open_pair

WINDOW = 256 * 1024


async def read_all(stream: Stream) -> bytes:
    parts = []
    while data := await stream.read():
        parts.append(data)
    return b"".join(parts)


async def eventually(predicate: Callable[[], bool], *, timeout: float = 5.0) -> None:
    """Poll until ``predicate`` holds (state settles asynchronously); fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        # The state belongs to other tasks and has no event to wait on; polling is simplest.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


# ---------------------------------------------------------------- streams


async def test_open_accept_echo_and_eof(pair: SessionPair) -> None:
    stream = await pair.client.open_stream()
    await stream.write(b"hello")
    peer = await pair.server.accept_stream()
    assert peer.stream_id == stream.stream_id == 1
    assert await peer.read_exactly(5) == b"hello"
    await peer.write(b"world")
    await peer.send_eof()
    assert await read_all(stream) == b"world"
    assert stream.at_eof
    assert await stream.read() == b""  # EOF is sticky
    await stream.send_eof()
    assert await peer.read() == b""
    await eventually(lambda: pair.client.num_streams == 0 and pair.server.num_streams == 0)
    assert pair.client.bytes_sent == 5
    assert pair.client.bytes_received == 5


async def test_read_exactly_raises_on_early_eof(pair: SessionPair) -> None:
    stream = await pair.client.open_stream()
    await stream.write(b"abc")
    await stream.send_eof()
    peer = await pair.server.accept_stream()
    with pytest.raises(asyncio.IncompleteReadError) as caught:
        await peer.read_exactly(10)
    assert caught.value.partial == b"abc"


async def test_server_opens_even_ids_and_many_streams_interleave(pair: SessionPair) -> None:
    async def serve() -> None:
        for _ in range(20):
            peer = await pair.client.accept_stream()
            data = await read_all(peer)
            await peer.write(data[::-1])
            await peer.send_eof()

    server_task = asyncio.create_task(serve())

    async def one(i: int) -> None:
        stream = await pair.server.open_stream()
        assert stream.stream_id % 2 == 0
        payload = os.urandom(1000 + i * 5000)
        await stream.write(payload)
        await stream.send_eof()
        assert await read_all(stream) == payload[::-1]

    await asyncio.gather(*(one(i) for i in range(20)))
    await server_task


async def test_half_close_in_both_directions(pair: SessionPair) -> None:
    stream = await pair.client.open_stream()
    await stream.write(b"req")
    await stream.send_eof()
    await stream.send_eof()  # idempotent
    with pytest.raises(StreamClosedError):
        await stream.write(b"x")
    peer = await pair.server.accept_stream()
    assert await read_all(peer) == b"req"
    # The server direction is still open after the client's FIN, and vice versa.
    await peer.write(b"resp-1")
    assert await stream.read_exactly(6) == b"resp-1"
    await peer.send_eof()
    assert await stream.read() == b""


async def test_reset_by_peer_and_locally(pair: SessionPair) -> None:
    stream = await pair.client.open_stream()
    await stream.write(b"x")
    peer = await pair.server.accept_stream()
    assert await peer.read() == b"x"
    peer.reset()
    peer.reset()  # idempotent, never blocks
    with pytest.raises(StreamResetError) as local:
        await peer.read()
    assert local.value.by_peer is False
    with pytest.raises(StreamResetError) as remote:
        await stream.read()
    assert remote.value.by_peer is True
    with pytest.raises(StreamResetError):
        await stream.write(b"y")
    await eventually(lambda: pair.client.num_streams == 0)


async def test_reset_during_a_blocked_write(pair: SessionPair) -> None:
    stream = await pair.client.open_stream()
    writer = asyncio.create_task(stream.write(b"z" * (4 * WINDOW)))
    peer = await pair.server.accept_stream()
    await eventually(lambda: pair.client._conn.send_window(stream.stream_id) == 0)
    assert not writer.done()
    peer.reset()
    with pytest.raises(StreamResetError) as caught:
        await writer
    assert caught.value.by_peer is True


async def test_backpressure_holds_the_writer_at_the_window(pair: SessionPair) -> None:
    stream = await pair.client.open_stream()
    payload = os.urandom(3 * WINDOW)
    writer = asyncio.create_task(stream.write(payload))
    peer = await pair.server.accept_stream()
    await eventually(lambda: pair.client._conn.send_window(stream.stream_id) == 0)
    await asyncio.sleep(0.05)
    assert not writer.done()
    assert pair.client.bytes_sent == WINDOW
    assert peer._buffered == WINDOW  # the receiver holds exactly one window, no more
    got = await peer.read_exactly(len(payload))
    await writer
    assert got == payload


async def test_cancelled_read_loses_nothing(pair: SessionPair) -> None:
    stream = await pair.client.open_stream()
    await stream.write(b"first")
    peer = await pair.server.accept_stream()
    assert await peer.read() == b"first"
    reader = asyncio.create_task(peer.read())
    await asyncio.sleep(0.01)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    await stream.write(b"second")
    assert await peer.read() == b"second"


async def test_cancelled_write_leaves_the_stream_usable(pair: SessionPair) -> None:
    stream = await pair.client.open_stream()
    writer = asyncio.create_task(stream.write(b"a" * (2 * WINDOW)))
    peer = await pair.server.accept_stream()
    await eventually(lambda: pair.client._conn.send_window(stream.stream_id) == 0)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    # The acknowledged prefix is intact; the stream keeps working.
    assert await peer.read_exactly(WINDOW) == b"a" * WINDOW
    await stream.write(b"after")
    assert await peer.read_exactly(5) == b"after"


async def test_stream_context_manager_resets_on_error_and_closes_cleanly(pair: SessionPair) -> None:
    stream = await pair.client.open_stream()
    await stream.write(b"x")
    peer = await pair.server.accept_stream()

    async def fail_inside() -> None:
        async with stream:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fail_inside()
    assert stream.is_reset
    with pytest.raises(StreamResetError):
        await read_all(peer)

    async with await pair.client.open_stream() as clean:
        await clean.write(b"done")
        closing = asyncio.create_task(clean.aclose())
        other = await pair.server.accept_stream()
        assert await read_all(other) == b"done"
        assert not closing.done()  # aclose waits for the peer's FIN
        await other.send_eof()
        await closing


async def test_aclose_resets_after_the_close_timeout() -> None:
    pair = await open_pair(client_config=Config(stream_close_timeout=0.1))
    try:
        stream = await pair.client.open_stream()
        await stream.aclose()
        assert stream.is_reset
        peer = await pair.server.accept_stream()
        with pytest.raises(StreamResetError):
            await asyncio.wait_for(peer.write(b"x" * (2 * WINDOW)), 5)
    finally:
        await pair.client.close()
        await pair.server.close()


async def test_small_stream_is_not_starved_by_a_saturated_one(pair: SessionPair) -> None:
    bulk = await pair.client.open_stream()
    stop = asyncio.Event()

    async def pump() -> None:
        chunk = b"b" * 65536
        while not stop.is_set():
            await bulk.write(chunk)

    async def drain(peer: Stream) -> None:
        while await peer.read(1 << 20):
            pass

    pumping = asyncio.create_task(pump())
    bulk_peer = await pair.server.accept_stream()
    draining = asyncio.create_task(drain(bulk_peer))
    small = await pair.client.open_stream()
    await small.write(b"?")
    small_peer = await pair.server.accept_stream()
    assert await small_peer.read_exactly(1) == b"?"
    for _ in range(50):
        await small.write(b"p" * 64)
        await small_peer.write(await small_peer.read_exactly(64))
        assert await small.read_exactly(64) == b"p" * 64
    assert not pumping.done()  # the bulk stream was still saturating the session the whole time
    stop.set()
    await pumping
    await bulk.send_eof()
    await draining


# ---------------------------------------------------------------- session


async def test_backlog_overflow_resets_new_streams() -> None:
    pair = await open_pair(server_config=Config(accept_backlog=2))
    try:
        streams = [await pair.client.open_stream() for _ in range(3)]
        with pytest.raises(StreamResetError) as caught:
            await asyncio.wait_for(streams[2].read(), 5)
        assert caught.value.by_peer is True
        accepted = await pair.server.accept_stream()
        assert accepted.stream_id == streams[0].stream_id
    finally:
        await pair.client.close()
        await pair.server.close()


async def test_max_streams_resets_the_peers_streams_past_it() -> None:
    pair = await open_pair(server_config=Config(max_streams=2, max_session_buffer=WINDOW))
    try:
        streams = [await pair.client.open_stream() for _ in range(3)]
        with pytest.raises(StreamResetError) as caught:
            await asyncio.wait_for(streams[2].read(), 5)
        assert caught.value.by_peer is True
        for stream in streams[:2]:
            await stream.write(b"x" * WINDOW)  # both admitted streams get their full initial window...
        # ...though together that is twice the budget: the protocol's initial credit cannot be refused.
        await eventually(lambda: pair.server._conn.committed_window == 2 * WINDOW)
        check_receive_accounting(pair.server._conn)
    finally:
        await pair.client.close()
        await pair.server.close()


async def test_session_budget_every_reader_finishes_beside_one_that_never_reads() -> None:
    """The server's budget is one window and a stream it never reads fills it: eight other streams still move
    2 MiB each (their re-grants shrink to the floor and take turns), and the accounting holds throughout."""
    pair = await open_pair(server_config=Config(max_session_buffer=WINDOW))
    conn = pair.server._conn
    try:
        hog = await pair.client.open_stream()
        await hog.write(b"h" * WINDOW)
        await pair.server.accept_stream()  # accepted, never read
        payload = os.urandom(2 * 1024 * 1024)

        async def upload() -> None:
            stream = await pair.client.open_stream()
            await stream.write(payload)
            await stream.send_eof()
            assert await read_all(stream) == b"ok"

        async def download() -> None:
            stream = await pair.server.accept_stream()
            assert await read_all(stream) == payload
            await stream.write(b"ok")
            await stream.send_eof()

        scarce = False

        async def watch() -> None:
            nonlocal scarce
            while True:
                check_receive_accounting(conn)
                scarce = scarce or bool(conn.withheld_streams)
                await asyncio.sleep(0.001)

        watcher = asyncio.create_task(watch())
        try:
            await asyncio.wait_for(asyncio.gather(*(upload() for _ in range(8)), *(download() for _ in range(8))), 30)
        finally:
            watcher.cancel()
        assert scarce  # the floor and the withheld queue were really exercised
        await eventually(lambda: conn.num_streams == 1)
        assert conn.committed_window == WINDOW  # what remains is the hog's unread window
    finally:
        await pair.client.close()
        await pair.server.close()


async def test_open_waits_for_a_free_slot_first_come_first_served() -> None:
    pair = await open_pair(client_config=Config(max_streams=2))
    try:
        first = await pair.client.open_stream()
        second = await pair.client.open_stream()
        third = asyncio.create_task(pair.client.open_stream())
        fourth = asyncio.create_task(pair.client.open_stream())
        await asyncio.sleep(0.05)
        assert not third.done()
        assert not fourth.done()
        # The first stream ends both ways: its slot goes to the opener that has waited longest.
        peer = await pair.server.accept_stream()
        await peer.send_eof()
        await first.send_eof()
        assert await first.read() == b""
        opened = await asyncio.wait_for(third, 5)
        assert opened.stream_id == 5
        await asyncio.sleep(0.05)
        assert not fourth.done()
        second.reset()  # a reset frees a slot at once
        assert (await asyncio.wait_for(fourth, 5)).stream_id == 7
        await opened.write(b"works")
        await opened.send_eof()
        accepted = await pair.server.accept_stream()
        while accepted.stream_id != opened.stream_id:  # stream 3, unless its reset already dropped it
            accepted = await pair.server.accept_stream()
        assert await read_all(accepted) == b"works"
    finally:
        await pair.client.close()
        await pair.server.close()


async def test_open_past_max_streams_times_out_with_stream_limit_error() -> None:
    pair = await open_pair(client_config=Config(max_streams=1, stream_open_timeout=0.2))
    try:
        await pair.client.open_stream()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(StreamLimitError, match="max_streams 1"):
            await pair.client.open_stream()
        assert loop.time() - started >= 0.19
        assert not pair.client._open_waiters
        assert pair.client.num_streams == 1
    finally:
        await pair.client.close()
        await pair.server.close()


async def test_a_cancelled_opener_passes_its_slot_on_and_closing_fails_the_rest() -> None:
    pair = await open_pair(client_config=Config(max_streams=1))
    try:
        held = await pair.client.open_stream()
        cancelled = asyncio.create_task(pair.client.open_stream())
        woken = asyncio.create_task(pair.client.open_stream())
        last = asyncio.create_task(pair.client.open_stream())
        await asyncio.sleep(0.02)
        held.reset()  # wakes the first opener for the freed slot...
        cancelled.cancel()  # ...which is cancelled before it runs: the slot passes to the next in line
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert (await asyncio.wait_for(woken, 5)).stream_id == 3
        await asyncio.sleep(0.02)
        assert not last.done()
        await pair.client.close()
        with pytest.raises(SessionClosedError):
            await asyncio.wait_for(last, 5)
    finally:
        await pair.client.close()
        await pair.server.close()


async def test_our_unacknowledged_opens_are_limited_like_yamux() -> None:
    """hashicorp/yamux resets SYNs past the streams its application has not accepted yet (AcceptBacklog, 256)
    and never has more of its own opens unacknowledged; we hold ours to accept_backlog too."""
    peer_writer: asyncio.Future[asyncio.StreamWriter] = asyncio.get_running_loop().create_future()

    async def silent_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer_writer.set_result(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass  # reads our frames, answers only what the test writes
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    server = await asyncio.start_server(silent_peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    config = Config(accept_backlog=2, enable_keepalive=False)
    async with Session(StreamTransport(reader, writer), client=True, config=config) as session:
        await session.open_stream()
        await session.open_stream()
        third = asyncio.create_task(session.open_stream())
        await asyncio.sleep(0.05)
        assert not third.done()
        assert session._conn.unacknowledged_opens == 2
        (await peer_writer).write(frame(FrameType.WINDOW_UPDATE, Flag.ACK, 1, 0))
        assert (await asyncio.wait_for(third, 5)).stream_id == 5
    server.close()
    await server.wait_closed()


async def test_ping_and_rtt(pair: SessionPair) -> None:
    await eventually(lambda: pair.client.rtt is not None)  # the start-up probe
    rtt = await pair.client.ping()
    assert 0 < rtt < 5
    assert pair.client.rtt == rtt


async def test_go_away_lets_open_streams_finish(pair: SessionPair) -> None:
    stream = await pair.client.open_stream()
    await stream.write(b"before")
    peer = await pair.server.accept_stream()
    await pair.server.go_away()
    with pytest.raises(SessionClosedError, match="going away"):
        await pair.server.accept_stream()
    with pytest.raises(SessionClosedError, match="going away"):
        await pair.server.open_stream()
    await eventually(lambda: pair.client._conn.remote_goaway is not None)
    with pytest.raises(SessionClosedError, match="going away"):
        await pair.client.open_stream()
    await stream.write(b" and after")
    await stream.send_eof()
    assert await read_all(peer) == b"before and after"
    await peer.write(b"reply")
    await peer.send_eof()
    assert await read_all(stream) == b"reply"
    assert not pair.client.closed
    assert not pair.server.closed


async def test_close_fails_every_stream_on_both_sides(pair: SessionPair) -> None:
    stream = await pair.client.open_stream()
    await stream.write(b"x")
    peer = await pair.server.accept_stream()
    assert await peer.read() == b"x"
    blocked_read = asyncio.create_task(stream.read())
    blocked_accept = asyncio.create_task(pair.client.accept_stream())
    await asyncio.sleep(0.01)
    await pair.client.close()
    assert pair.client.closed
    for task in (blocked_read, blocked_accept):
        with pytest.raises(SessionClosedError):
            await task
    with pytest.raises(SessionClosedError):
        await stream.write(b"y")
    with pytest.raises(SessionClosedError):
        await pair.client.open_stream()
    # The peer sees the transport end.
    with pytest.raises(SessionClosedError):
        await asyncio.wait_for(peer.read(), 5)
    await asyncio.wait_for(pair.server.wait_closed(), 5)
    assert isinstance(pair.server.close_reason, SessionClosedError)


@contextlib.asynccontextmanager
async def raw_peer(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A plain TCP server running ``handler``; yields a connected client (reader, writer)."""
    handlers: list[asyncio.Task[None]] = []
    writers: list[asyncio.StreamWriter] = []

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        await handler(reader, writer)

    server = await asyncio.start_server(run, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        server.close()
        writer.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        for peer_writer in writers:
            peer_writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        for peer_writer in writers:
            with contextlib.suppress(OSError):
                await peer_writer.wait_closed()


async def test_keepalive_timeout_detects_a_dead_peer() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads, never answers
        writer.close()

    config = Config(keepalive_interval=0.05, keepalive_timeout=0.1)
    async with raw_peer(silent) as (reader, writer):
        session = Session(StreamTransport(reader, writer), client=True, config=config)
        await session.start()
        stream = await session.open_stream()
        await asyncio.wait_for(session.wait_closed(), 5)
        assert isinstance(session.close_reason, KeepaliveTimeoutError)
        with pytest.raises(KeepaliveTimeoutError):
            await stream.read()


async def test_remote_protocol_error_sends_go_away_and_fails_callers() -> None:
    received = asyncio.get_running_loop().create_future()

    async def bad(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x07" + b"\x00" * 11)  # version 7
        received.set_result(await reader.read())  # everything until our session closes the connection

    async with raw_peer(bad) as (reader, writer):
        session = Session(StreamTransport(reader, writer), client=True, config=Config(enable_keepalive=False))
        await session.start()
        await asyncio.wait_for(session.wait_closed(), 5)
        reason = session.close_reason
        assert reason is not None
        assert type(reason).__name__ == "RemoteProtocolError"
        with pytest.raises(SessionClosedError, match="broke the protocol"):
            await session.open_stream()
        data = await asyncio.wait_for(received, 5)
        assert data.endswith(frame(FrameType.GO_AWAY, 0, 0, 1))


async def test_unacknowledged_stream_is_reset_after_the_open_timeout() -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if data[:2] == bytes([0, FrameType.PING]):
                writer.write(frame(FrameType.PING, Flag.ACK, 0, int.from_bytes(data[8:12], "big")))

    config = Config(stream_open_timeout=0.1, enable_keepalive=False)
    async with (
        raw_peer(mute) as (reader, writer),
        Session(StreamTransport(reader, writer), client=True, config=config) as session,
    ):
        stream = await session.open_stream()
        with pytest.raises(StreamResetError) as caught:
            await asyncio.wait_for(stream.read(), 5)
        assert caught.value.by_peer is False


async def test_transport_eof_ends_the_session() -> None:
    async def closer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async with raw_peer(closer) as (reader, writer):
        session = Session(StreamTransport(reader, writer), client=True)
        await session.start()
        await asyncio.wait_for(session.wait_closed(), 5)
        assert isinstance(session.close_reason, SessionClosedError)
        assert "closed the transport" in session.close_reason.reason


async def test_helpers_over_tcp_and_unix_socket() -> None:
    finished: list[Session] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with Session(StreamTransport(reader, writer), client=False) as server:
            stream = await server.accept_stream()
            await stream.write(await read_all(stream))
            await stream.send_eof()
            await server.wait_closed()
            finished.append(server)

    tcp = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "mux.sock")
        unix = await asyncio.start_unix_server(on_connect, path)
        try:
            for session in (
                await connect_tcp_session("127.0.0.1", tcp.sockets[0].getsockname()[1]),
                await connect_unix_session(path),
            ):
                async with session:
                    stream = await session.open_stream()
                    await stream.write(b"ping over " + str(type(session)).encode())
                    await stream.send_eof()
                    assert (await read_all(stream)).startswith(b"ping over")
            await eventually(lambda: len(finished) == 2)  # both server sessions saw the client leave
        finally:
            tcp.close()
            unix.close()


async def test_streams_reset_before_accept_do_not_pile_up(pair: SessionPair) -> None:
    for _ in range(300):  # more than the accept backlog
        stream = await pair.client.open_stream()
        stream.reset()
    survivor = await pair.client.open_stream()
    await survivor.write(b"kept")
    # Frames arrive in order: once the survivor is known, every earlier SYN and RST has been processed.
    await eventually(lambda: survivor.stream_id in pair.server._streams)
    assert [s.stream_id for s in pair.server._accept_queue] == [survivor.stream_id]
    accepted = await pair.server.accept_stream()
    assert await accepted.read_exactly(4) == b"kept"


async def test_concurrent_readers_and_writers_on_one_stream(pair: SessionPair) -> None:
    stream = await pair.client.open_stream()
    await stream.write(b"!")
    peer = await pair.server.accept_stream()
    assert await peer.read() == b"!"
    readers = [asyncio.create_task(peer.read(1)) for _ in range(3)]
    await asyncio.sleep(0.01)
    readers[0].cancel()  # cancelling one waiter must not disturb the others
    await stream.write(b"ab")
    results = await asyncio.gather(*readers[1:])
    assert sorted(results) == [b"a", b"b"]
    # Two writers blocked on the same exhausted window both complete once it reopens.
    writers = [asyncio.create_task(stream.write(b"w" * WINDOW)) for _ in range(2)]
    assert len(await peer.read_exactly(2 * WINDOW)) == 2 * WINDOW
    await asyncio.gather(*writers)


@pytest.mark.parametrize("adapter", ["stream", "socket"])
async def test_a_peer_that_stops_reading_trips_the_write_timeout(adapter: str) -> None:
    deaf_writers: list[asyncio.StreamWriter] = []

    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Accepts the connection and never reads a byte; a small receive buffer makes the pipe fill quickly.
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        deaf_writers.append(writer)

    server = await asyncio.start_server(deaf, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport: StreamTransport | SocketTransport
    if adapter == "stream":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        transport = StreamTransport(reader, writer)
    else:
        transport = await SocketTransport.connect_tcp("127.0.0.1", port)
    config = Config(connection_write_timeout=0.3, enable_keepalive=False)
    session = Session(transport, client=True, config=config)
    await session.start()
    try:

        async def fill() -> None:
            stream = await session.open_stream()
            with contextlib.suppress(SessionClosedError):
                await stream.write(b"f" * WINDOW)  # data may flow before the ACK, up to one window

        # 128 windows (32 MiB) are far more than the socket buffers and the transport's 1 MiB buffer hold.
        fillers = [asyncio.create_task(fill()) for _ in range(128)]
        await asyncio.wait_for(session.wait_closed(), 20)  # close() aborts a connection that cannot drain
        await asyncio.gather(*fillers)
        assert isinstance(session.close_reason, SessionClosedError)
        assert "blocked for more than 0.3 s" in session.close_reason.reason
    finally:
        await session.close()
        server.close()
        for deaf_writer in deaf_writers:
            deaf_writer.close()
