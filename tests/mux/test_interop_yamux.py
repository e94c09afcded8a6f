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


async def test_go_slow_writer_is_held_back_by_python_reader(
    yamux_peer: Path, python_server: tuple[str, list[CommandServer]]
) -> None:
    addr, servers = python_server
    out = await run_go_client(yamux_peer, addr, "slow", "-bytes", str(4 * 1024 * 1024))
    held_at = int(out.split("held_at=")[1])
    assert held_at <= WINDOW
    # Our side buffered no more than one window for the stalled stream.
    assert 0 < servers[0].max_buffered <= WINDOW
