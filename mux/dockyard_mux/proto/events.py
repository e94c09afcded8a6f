"""What Connection.receive_data reports. Frozen, slotted, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StreamOpened:
    """The peer opened a stream and it was admitted (we queued its ACK)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamAcknowledged:
    """The peer acknowledged a stream we opened."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Payload for a stream. The bytes count against its receive window until acknowledged as consumed."""

    stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class WindowUpdated:
    """The peer granted ``delta`` more bytes of send window on a stream."""

    stream_id: int
    delta: int


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The peer half-closed the stream (FIN): no more data will arrive on it."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamReset:
    """The peer reset the stream (RST). Unread data is void."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class PingReceived:
    """The peer pinged; the reply is already queued."""

    opaque: int


@dataclass(frozen=True, slots=True)
class PingAcknowledged:
    """The peer answered our ping with this opaque value."""

    opaque: int


@dataclass(frozen=True, slots=True)
class GoAwayReceived:
    """The peer will accept no new streams. A non-normal code also ends the connection."""

    code: int


Event = (
    StreamOpened
    | StreamAcknowledged
    | DataReceived
    | WindowUpdated
    | StreamEnded
    | StreamReset
    | PingReceived
    | PingAcknowledged
    | GoAwayReceived
)
