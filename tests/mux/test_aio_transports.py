"""The transport adapters on their own, over real loopback sockets."""

from __future__ import annotations

import asyncio

from dockyard_mux import NonBlockingTransport, PushTransport, SocketTransport, StreamTransport, Transport


async def test_socket_transport_pull_mode_then_push_mode() -> None:
    accepted: asyncio.Future[SocketTransport] = asyncio.get_running_loop().create_future()
    server = await asyncio.get_running_loop().create_server(
        lambda: SocketTransport(on_connect=accepted.set_result, read_high_water=1024), "127.0.0.1", 0
    )
    client = await SocketTransport.connect_tcp("127.0.0.1", server.sockets[0].getsockname()[1])
    peer = await accepted
    assert isinstance(peer, Transport)
    assert isinstance(peer, NonBlockingTransport)
    assert isinstance(peer, PushTransport)
    # Pull: bytes are held until receive() takes them; reading pauses past read_high_water and resumes.
    payload = bytes(range(256)) * 64
    await client.send(payload)
    got = b""
    while len(got) < len(payload):
        got += await peer.receive()
    assert got == payload
    # Push: what arrives before start_receiving is delivered first, then the EOF.
    client.send_nowait(b"early")
    await asyncio.sleep(0.05)
    chunks: list[bytes] = []
    ended: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    peer.start_receiving(chunks.append, ended.set_result)
    await client.close()
    assert await asyncio.wait_for(ended, 5) is None
    assert b"".join(chunks) == b"early"
    assert await peer.receive() == b""
    await peer.close()
    server.close()


async def test_stream_transport_round_trip_and_eof() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = StreamTransport(reader, writer)
        while data := await transport.receive():
            await transport.send(data)
        await transport.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    client = StreamTransport(reader, writer)
    assert isinstance(client, NonBlockingTransport)
    assert not isinstance(client, PushTransport)
    assert client.writable()
    client.send_nowait(b"hello")
    assert await client.receive() == b"hello"
    writer.write_eof()
    assert await client.receive() == b""
    await client.close()
    server.close()
