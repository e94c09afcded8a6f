"""The WebSocket transport under the mux, and splicing mux streams to sockets with half-close.

Real components: aiohttp WebSockets on 127.0.0.1, dockyard_mux sessions, kernel socket pairs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from dockyard_mux import Session, Stream, StreamTransport
from dockyard_tunnel.errors import TransportClosedError
from dockyard_tunnel.piping import SpliceFailedError, splice
from dockyard_tunnel.ws import WebSocketTransport

MAX = 16 * 1024


@contextlib.asynccontextmanager
async def ws_pair() -> AsyncIterator[tuple[WebSocketTransport, WebSocketTransport]]:
    """A server-side and a client-side WebSocketTransport connected over 127.0.0.1."""
    server_side: asyncio.Queue[WebSocketTransport] = asyncio.Queue(maxsize=1)
    done = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX, compress=False)
        await ws.prepare(request)
        await server_side.put(WebSocketTransport(ws, max_message_size=MAX))
        await done.wait()
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"http://127.0.0.1:{port}/", max_msg_size=MAX, compress=0) as ws,
        ):
            yield await server_side.get(), WebSocketTransport(ws, max_message_size=MAX)
            done.set()
    finally:
        done.set()
        await runner.cleanup()


async def test_large_sends_are_split_to_the_message_limit_and_arrive_whole() -> None:
    payload = bytes(range(256)) * 1000  # 256 000 bytes, far above one 16 KiB message
    async with ws_pair() as (server, client):
        await server.send(payload)
        received = b""
        while len(received) < len(payload):
            chunk = await client.receive()
            assert 0 < len(chunk) <= MAX
            received += chunk
        assert received == payload


async def test_close_reads_as_eof_and_text_is_a_protocol_violation() -> None:
    async with ws_pair() as (server, client):
        await client._ws.send_str("not mux data")
        with pytest.raises(TransportClosedError, match="unexpected WebSocket TEXT"):
            await server.receive()
        closing = asyncio.create_task(client.close())  # waits for the peer's close reply, sent by receive()
        assert await server.receive() == b""
        await closing
        with pytest.raises(TransportClosedError):
            await client.send(b"after close")


@contextlib.asynccontextmanager
async def mux_pair() -> AsyncIterator[tuple[Session, Session]]:
    a, b = socket.socketpair()
    ra, wa = await asyncio.open_connection(sock=a)
    rb, wb = await asyncio.open_connection(sock=b)
    client = Session(StreamTransport(ra, wa), client=True)
    server = Session(StreamTransport(rb, wb), client=False)
    await client.start()
    await server.start()
    try:
        yield client, server
    finally:
        await client.close()
        await server.close()


async def _socket_pair() -> tuple[
    tuple[asyncio.StreamReader, asyncio.StreamWriter], tuple[asyncio.StreamReader, asyncio.StreamWriter]
]:
    a, b = socket.socketpair()
    return await asyncio.open_connection(sock=a), await asyncio.open_connection(sock=b)


async def test_splice_carries_half_close_both_ways() -> None:
    async with mux_pair() as (client, server):
        (near_r, near_w), (far_r, far_w) = await _socket_pair()
        opened = await server.open_stream()
        accepted_task = asyncio.create_task(client.accept_stream())
        await opened.write(b"request")
        accepted: Stream = await accepted_task
        relay = asyncio.create_task(splice(accepted, near_r, near_w))

        await opened.send_eof()
        # EOF of the stream arrives at the socket as EOF; the socket side can still answer afterwards.
        assert await far_r.read() == b"request"
        far_w.write(b"answer")
        far_w.write_eof()
        answer = b""
        while chunk := await opened.read():
            answer += chunk
        assert answer == b"answer"
        progress = await asyncio.wait_for(relay, 5)
        assert (progress.to_socket, progress.to_stream) == (7, 6)
        await opened.aclose()
        far_w.close()
        near_w.close()


async def test_splice_reports_a_stream_reset_as_a_stream_failure() -> None:
    async with mux_pair() as (client, server):
        (near_r, near_w), (_far_r, far_w) = await _socket_pair()
        opened = await server.open_stream()
        await opened.write(b"x")
        accepted = await client.accept_stream()
        relay = asyncio.create_task(splice(accepted, near_r, near_w))
        opened.reset()
        with pytest.raises(SpliceFailedError) as failed:
            await asyncio.wait_for(relay, 5)
        assert failed.value.side == "stream"
        accepted.reset()
        near_w.close()
        far_w.close()
