"""dockyard_mux: a yamux-compatible stream multiplexer with a sans-IO protocol core and an asyncio adapter.

The wire format and behaviour are described in mux/SPEC.md.
"""

from dockyard_mux.aio import (
    NonBlockingTransport,
    PushTransport,
    Session,
    SocketTransport,
    Stream,
    StreamTransport,
    Transport,
    connect_tcp_session,
    connect_unix_session,
)
from dockyard_mux.proto.config import Config
from dockyard_mux.proto.errors import (
    KeepaliveTimeoutError,
    LocalProtocolError,
    MuxError,
    ProtocolError,
    RemoteProtocolError,
    SessionClosedError,
    StreamClosedError,
    StreamLimitError,
    StreamResetError,
)

__all__ = [
    "Config",
    "KeepaliveTimeoutError",
    "LocalProtocolError",
    "MuxError",
    "NonBlockingTransport",
    "ProtocolError",
    "PushTransport",
    "RemoteProtocolError",
    "Session",
    "SessionClosedError",
    "SocketTransport",
    "Stream",
    "StreamClosedError",
    "StreamLimitError",
    "StreamResetError",
    "StreamTransport",
    "Transport",
    "connect_tcp_session",
    "connect_unix_session",
]
