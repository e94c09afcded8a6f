"""The yamux protocol as a pure state machine: bytes in, events out; commands in, bytes out.

Standard library only. No asyncio, no sockets, no clock reads: callers pass the time when it matters.
"""

from dockyard_mux.proto.config import Config
from dockyard_mux.proto.connection import Connection
from dockyard_mux.proto.errors import (
    LocalProtocolError,
    MuxError,
    ProtocolError,
    RemoteProtocolError,
    StreamLimitError,
)
from dockyard_mux.proto.events import (
    DataReceived,
    Event,
    GoAwayReceived,
    PingAcknowledged,
    PingReceived,
    StreamAcknowledged,
    StreamEnded,
    StreamOpened,
    StreamReset,
    WindowUpdated,
)
from dockyard_mux.proto.frames import FrameHeader, FrameType, GoAwayCode, decode_header, encode_header
from dockyard_mux.proto.state import StreamInput, StreamState

__all__ = [
    "Config",
    "Connection",
    "DataReceived",
    "Event",
    "FrameHeader",
    "FrameType",
    "GoAwayCode",
    "GoAwayReceived",
    "LocalProtocolError",
    "MuxError",
    "PingAcknowledged",
    "PingReceived",
    "ProtocolError",
    "RemoteProtocolError",
    "StreamAcknowledged",
    "StreamEnded",
    "StreamInput",
    "StreamLimitError",
    "StreamOpened",
    "StreamReset",
    "StreamState",
    "WindowUpdated",
    "decode_header",
    "encode_header",
]
