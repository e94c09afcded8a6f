"""The asyncio adapter: Session and Stream over a Transport."""

from dockyard_mux.aio.sessions import Session, connect_tcp_session, connect_unix_session
from dockyard_mux.aio.streams import Stream
from dockyard_mux.aio.transports import NonBlockingTransport, PushTransport, SocketTransport, StreamTransport, Transport

__all__ = [
    "NonBlockingTransport",
    "PushTransport",
    "Session",
    "SocketTransport",
    "Stream",
    "StreamTransport",
    "Transport",
    "connect_tcp_session",
    "connect_unix_session",
]
