"""A dockyard_mux Transport over an aiohttp WebSocket (either end).

The mux sees a byte stream: each binary message is a chunk of it, with no relation to mux frames. Outgoing
data is split into messages smaller than `max_message_size` so the peer's receive limit is never hit.
Compression stays off on both ends: aiohttp sends an uncompressed frame with one transport write, so
concurrent senders cannot interleave, while compression adds a lock and an executor hop.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from dockyard_tunnel.errors import TransportClosedError

AnyWebSocket = aiohttp.ClientWebSocketResponse | web.WebSocketResponse


class WebSocketTransport:
    """Implements dockyard_mux.Transport: receive() -> bytes (b"" at close), send(bytes), close()."""

    def __init__(self, ws: AnyWebSocket, *, max_message_size: int) -> None:
        self._ws = ws
        # aiohttp refuses a message whose size is equal to its max_msg_size ("16384 exceeds limit 16384"), so
        # the largest message that gets through the peer's limit is one byte smaller.
        self._max = max_message_size - 1

    async def receive(self) -> bytes:
        while True:
            msg = await self._ws.receive()
            if msg.type is aiohttp.WSMsgType.BINARY:
                data: bytes = msg.data
                if data:  # an empty message carries nothing; b"" would read as EOF to the mux
                    return data
                continue
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return b""
            if msg.type is aiohttp.WSMsgType.ERROR:
                raise TransportClosedError(f"WebSocket failed: {msg.data!r}")
            raise TransportClosedError(f"unexpected WebSocket {msg.type.name} message in the mux byte stream")

    async def send(self, data: bytes) -> None:
        if self._ws.closed:
            raise TransportClosedError("WebSocket is closed")
        try:
            if len(data) <= self._max:
                await self._ws.send_bytes(data)
                return
            view = memoryview(data)
            for start in range(0, len(view), self._max):
                await self._ws.send_bytes(bytes(view[start : start + self._max]))
        except (ConnectionError, aiohttp.ClientError, RuntimeError) as e:
            # aiohttp raises ConnectionResetError / ClientConnectionResetError once the socket is gone, and
            # RuntimeError for a WebSocket that was never prepared or is being closed.
            raise TransportClosedError(f"WebSocket send failed: {e}") from e

    async def close(self) -> None:
        await self._ws.close()
