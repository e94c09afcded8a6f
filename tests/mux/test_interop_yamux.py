"""Interop with the real hashicorp/yamux v0.1.2 (hack/yamux-peer), both directions, over TCP loopback.

Python client -> Go server: our Session drives hack/yamux-peer's command server.
Go client -> Python server: hack/yamux-peer's scenarios drive dockyard_mux.testing.CommandServer.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard_mux import (
    Config,
    Session,
    SessionClosedError,
    SocketTransport,
    Stream,
    StreamClosedError,
    StreamResetError,
    StreamTransport,
    Transport,
    connect_tcp_session,
)
from dockyard_mux.testing import CommandServer, pattern_chunks, read_line

BIG = 256 * 1024 * 1024
WINDOW = 256 * 1024


@pytest.fixture(params=["stream", "socket"])
async def session(go_server: str, request: pytest.FixtureRequest) -> AsyncIterator[Session]:
    """Our client Session connected to the Go server, over each transport adapter."""
    host, port = go_server.rsplit(":", 1)
    transport: Transport
    if request.param == "stream":
        reader, writer = await asyncio.open_connection(host, int(port), limit=1024 * 1024)
        transport = StreamTransport(reader, writer)
    else:
        transport = await SocketTransport.connect_tcp(host, int(port))
    async with Session(transport, client=True) as session:
        yield session


async def open_command(session: Session, line: str) -> Stream:
    stream = await session.open_stream()
    await stream.write(line.encode() + b"\n")
    return stream


async def read_all(stream: Stream) -> bytes:
    parts = []
    while data := await stream.read():
        parts.append(data)
    return b"".join(parts)


# ---------------------------------------------------------------- Python client -> Go server


async def test_echo_on_100_concurrent_streams(session: Session) -> None:
    async def echo(i: int) -> None:
        payload = os.urandom(64 * 1024 + i)
        stream = await open_command(session, "echo")
        await stream.write(payload)
        await stream.send_eof()
        assert await read_all(stream) == payload
        await stream.aclose()

    await asyncio.gather(*(echo(i) for i in range(100)))
    assert session.num_streams == 0


async def echo_all_at_once(session: Session, n: int, size: int) -> int:
    """Open ``n`` echo streams; each gets one byte echoed, and only once all ``n`` are open at the same time does
    each send the rest of its ``size`` bytes and check the echo. Returns the session's stream count then."""
    opened = 0
    all_open = asyncio.Event()
    at_once = 0

    async def echo(i: int) -> None:
        nonlocal opened, at_once
        payload = os.urandom(size)
        stream = await open_command(session, "echo")
        await stream.write(payload[:1])
        assert await stream.read_exactly(1) == payload[:1]
        opened += 1
        if opened == n:
            at_once = session.num_streams
            all_open.set()
        await all_open.wait()
        await stream.write(payload[1:])
        await stream.send_eof()
        assert await read_all(stream) == payload[1:]
        await stream.aclose()

    await asyncio.wait_for(asyncio.gather(*(echo(i) for i in range(n))), 120)
    return at_once


async def test_1000_concurrent_streams_opened_by_us(session: Session) -> None:
    """Four times the 256 streams the old per-stream reservation of max_session_buffer allowed, against Go's
    default AcceptBacklog of 256 (we keep at most that many of our opens unacknowledged, as yamux does)."""
    assert await echo_all_at_once(session, 1000, 64 * 1024) == 1000
    assert session.num_streams == 0
    assert session._conn.committed_window == 0


async def test_1000_concurrent_streams_over_a_tight_budget(go_server: str) -> None:
    """1000 streams x 300 KiB echoed through a session whose budget is 1 MiB: every stream's initial 256 KiB
    arrives regardless, then re-grants shrink to the floor and wait their turn; hashicorp/yamux copes with the
    small grants, and no stream starves or is reset."""
    host, port = go_server.rsplit(":", 1)
    config = Config(max_session_buffer=1024 * 1024)
    async with await connect_tcp_session(host, int(port), config=config) as tight:
        assert await echo_all_at_once(tight, 1000, 300 * 1024) == 1000
        assert tight.num_streams == 0


async def test_our_open_past_max_streams_waits_for_a_slot(go_server: str) -> None:
    host, port = go_server.rsplit(":", 1)
    async with await connect_tcp_session(host, int(port), config=Config(max_streams=4)) as limited:
        streams = [await open_command(limited, "echo") for _ in range(4)]
        waiting = asyncio.create_task(open_command(limited, "echo"))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        assert limited.num_streams == 4
        # One stream ends both ways (our FIN, Go's FIN after the echo, every byte read): its slot goes to the
        # waiting opener.
        await streams[0].write(b"a")
        await streams[0].send_eof()
        assert await read_all(streams[0]) == b"a"
        fifth = await asyncio.wait_for(waiting, 10)
        await fifth.write(b"hello")
        await fifth.send_eof()
        assert await read_all(fifth) == b"hello"
        for stream in streams[1:]:
            await stream.send_eof()
            assert await read_all(stream) == b""


async def test_256_mib_upload_with_checksum(session: Session) -> None:
    stream = await open_command(session, "sink")
    digest = hashlib.sha256()
    for chunk in pattern_chunks(BIG):
        digest.update(chunk)
        await stream.write(chunk)
    await stream.send_eof()
    assert await read_line(stream) == f"{digest.hexdigest()} {BIG}"


async def test_256_mib_download_with_checksum(session: Session) -> None:
    stream = await open_command(session, f"source {BIG}")
    digest = hashlib.sha256()
    remaining = BIG
    while remaining:
        data = await stream.read(min(remaining, 1 << 20))
        assert data, "early EOF"
        digest.update(data)
        remaining -= len(data)
    assert await stream.read_exactly(32) == digest.digest()
    assert await stream.read() == b""
    # Auto-tuning grew our receive window beyond the protocol's 256 KiB for this fast stream.
    assert session.rtt is not None


async def test_half_close(session: Session) -> None:
    stream = await open_command(session, "halfclose")
    await stream.write(b"x" * 1000)
    await stream.send_eof()
    with pytest.raises(StreamClosedError):
        await stream.write(b"late")
    assert await read_all(stream) == b"got 1000\n"
    assert stream.at_eof


async def test_our_reset_reaches_go(session: Session) -> None:
    stream = await open_command(session, "readreset")
    assert await read_line(stream) == "reading"
    await stream.write(b"some data")
    stream.reset()
    with pytest.raises(StreamResetError) as caught:
        await stream.read()
    assert caught.value.by_peer is False
    report = ""
    for _ in range(50):  # the Go handler records the error asynchronously
        report = (await read_all(await open_command(session, "report"))).decode()
        if report.strip():
            break
        await asyncio.sleep(0.02)
    assert "reset" in report


async def test_go_reset_fails_our_blocked_write(session: Session) -> None:
    # "hold": Go closes without reading; after its 300 ms StreamCloseTimeout it sends RST. Our write is
    # blocked on the exhausted window by then and must fail with a reset by the peer.
    stream = await open_command(session, "hold")
    with pytest.raises(StreamResetError) as caught:
        await asyncio.wait_for(stream.write(b"y" * (4 * WINDOW)), timeout=10)
    assert caught.value.by_peer is True
    assert session.num_streams == 0


async def test_ping(session: Session) -> None:
    rtt = await session.ping()
    assert 0 < rtt < 5
    assert session.rtt == rtt


async def test_go_away_from_go(session: Session) -> None:
    stream = await open_command(session, "goaway")
    assert await read_line(stream) == "ok"
    with pytest.raises(SessionClosedError):
        await session.open_stream()
    await stream.write(b"still here")  # the open stream keeps working both ways
    await stream.send_eof()
    assert await read_all(stream) == b"still here"
    assert not session.closed


async def test_slow_reader_holds_our_writer_back(session: Session) -> None:
    stream = await open_command(session, "stall")
    payload = os.urandom(4 * 1024 * 1024)
    writer = asyncio.create_task(stream.write(payload))
    conn = session._conn
    for _ in range(500):
        if conn.send_window(stream.stream_id) == 0:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert conn.send_window(stream.stream_id) == 0
    assert not writer.done()
    assert session.bytes_sent == WINDOW  # the command line plus data: exactly one window, no more
    assert conn.pending_bytes <= session.config.write_buffer_size
    release = await open_command(session, "release")
    await release.aclose()
    await writer
    await stream.send_eof()
    line = await read_line(stream)
    assert line == f"{hashlib.sha256(payload).hexdigest()} {len(payload)}"


async def test_window_carried_on_go_syn_ack(go_server_big_window: str) -> None:
    host, port = go_server_big_window.rsplit(":", 1)
    async with await connect_tcp_session(host, int(port)) as big:
        stream = await open_command(big, "echo")
        await stream.write(b"x")
        assert await stream.read_exactly(1) == b"x"
        # Go's ACK rode on a window update with delta = 16 MiB - 256 KiB: our credit reflects it.
        assert big._conn.send_window(stream.stream_id) > WINDOW
        payload = os.urandom(4 * 1024 * 1024)
        await asyncio.wait_for(stream.write(payload), 10)  # more than 256 KiB in flight without a grant
        await stream.send_eof()
        assert await read_all(stream) == payload


# ---------------------------------------------------------------- Go client -> Python server


@pytest.fixture
async def python_server() -> AsyncIterator[tuple[str, list[CommandServer]]]:
    servers: list[CommandServer] = []
    tasks: set[asyncio.Task[None]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(StreamTransport(reader, writer), client=False)
        await session.start()
        server = CommandServer(session)
        servers.append(server)
        try:
            await server.run()
        finally:
            await session.close()

    listener = await asyncio.start_server(on_connect, "127.0.0.1", 0, limit=1024 * 1024)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}", servers
    finally:
        listener.close()
        for task in tasks:
            task.cancel()


async def run_go_client(peer: Path, addr: str, scenario: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(peer),
        "-role",
        "client",
        "-addr",
        addr,
        "-scenario",
        scenario,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode()
    assert proc.returncode == 0, text
    assert text.startswith("OK "), text
    return text


@pytest.mark.parametrize(
    ("scenario", "args"),
    [
        ("echo", ("-streams", "100", "-bytes", "65536")),
        ("upload", ("-bytes", str(BIG))),
        ("download", ("-bytes", str(BIG))),
        ("halfclose", ()),
        ("reset", ()),
        ("ping", ()),
        ("goaway", ()),
    ],
)
async def test_go_client_against_python_server(
    yamux_peer: Path, python_server: tuple[str, list[CommandServer]], scenario: str, args: tuple[str, ...]
) -> None:
    addr, _ = python_server
    await run_go_client(yamux_peer, addr, scenario, *args)


async def test_go_client_holds_1000_concurrent_streams(
    yamux_peer: Path, python_server: tuple[str, list[CommandServer]]
) -> None:
    addr, servers = python_server
    # yamux's default StreamCloseTimeout (the peer's flag defaults to 300 ms for the "hold" command): after its
    # half-close, a Go stream otherwise gives up on an echo that 1000 busy streams delay longer than that.
    out = await run_go_client(
        yamux_peer, addr, "concurrent", "-streams", "1000", "-bytes", str(64 * 1024), "-close-timeout", "5m"
    )
    assert "open_at_once=1000" in out
    assert servers[0].peak_streams == 1000


async def test_go_slow_writer_is_held_back_by_python_reader(
    yamux_peer: Path, python_server: tuple[str, list[CommandServer]]
) -> None:
    addr, servers = python_server
    out = await run_go_client(yamux_peer, addr, "slow", "-bytes", str(4 * 1024 * 1024))
    held_at = int(out.split("held_at=")[1])
    assert held_at <= WINDOW
    # Our side buffered no more than one window for the stalled stream.
    assert 0 < servers[0].max_buffered <= WINDOW
