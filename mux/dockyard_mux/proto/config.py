"""The one configuration object of the mux (protocol core and asyncio session alike)."""

from __future__ import annotations

import math
from dataclasses import dataclass

INITIAL_STREAM_WINDOW = 256 * 1024
"""Fixed by yamux v0: every stream starts with this receive window in both directions."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Limits and timers. Every field has a default; __post_init__ rejects nonsense with a ValueError.

    Times are seconds.
    """

    accept_backlog: int = 256
    """Streams the peer opened that we have not accepted yet. Past this, new streams are reset (RST).

    Also the number of our own opens that may await the peer's ACK at once (Session.open_stream waits for more),
    as hashicorp/yamux does with its AcceptBacklog: a yamux peer resets SYNs beyond the streams its application
    has not accepted yet, so an opener that bursts past the peer's backlog has its streams reset."""

    max_streams: int = 4096
    """Streams tracked at once, counting both directions: from SYN until forgotten (FIN both ways with every
    received byte read, or reset). A stream the peer opens past it is reset (RST); Session.open_stream waits, first
    come first served, up to stream_open_timeout for a slot and then raises StreamLimitError.

    Every stream is born with 256 KiB of receive credit the peer may use at once (yamux fixes it), so this is what
    bounds that part of memory: max_streams x 256 KiB (1 GiB at the default) on top of max_session_buffer in the
    worst case (mux/SPEC.md, section 7)."""

    enable_keepalive: bool = True
    """Ping the peer every ``keepalive_interval``; no answer within ``keepalive_timeout`` ends the session."""

    keepalive_interval: float = 30.0
    keepalive_timeout: float = 10.0

    connection_write_timeout: float = 10.0
    """A single transport send blocked longer than this ends the session (the peer is not reading at all)."""

    initial_stream_window: int = INITIAL_STREAM_WINDOW
    """Fixed by the protocol; present so it is visible, validated to equal 256 KiB."""

    max_stream_window: int = 16 * 1024 * 1024
    """Ceiling for receive-window auto-tuning of one stream (a window only grows while it is the
    bottleneck)."""

    max_session_buffer: int = 64 * 1024 * 1024
    """Budget for receive-side memory, summed over all streams: bytes received and not read yet plus credit we
    granted (re-grants and window growth). A stream's initial 256 KiB counts only as the peer uses it, so idle
    streams cost nothing here (max_streams bounds that credit instead).

    Re-grants and window growth happen only while the total stays within it. Above it, a stream's window shrinks
    (a read is re-granted only down to min_stream_window of credit plus unread bytes) and the withheld credit is
    granted, round robin, as other streams' reads bring the total back under the budget.
    """

    min_stream_window: int = 16 * 1024
    """Floor of that shrinking: a stream whose application reads always gets its credit plus unread bytes topped
    back up to this, even above max_session_buffer, so no reader waits forever on streams that do not read (and no
    stream is left without credit while another holds the budget). At most 128 KiB (half the initial window)."""

    max_data_frame: int = 64 * 1024
    """Largest payload we put in one data frame, so a bulk stream yields the wire between frames."""

    write_buffer_size: int = 256 * 1024
    """Bytes queued for the transport before stream writers wait (the session's share of backpressure)."""

    max_outstanding_pings: int = 16
    """Our pings awaiting an answer; more is a local error."""

    max_queued_control_frames: int = 4096
    """Pong/RST frames queued but not yet taken by data_to_send(). Past it, ping replies are dropped rather
    than growing memory for a peer that pings faster than it reads."""

    stream_open_timeout: float = 75.0
    """A stream we opened that the peer has not acknowledged in this time is reset."""

    stream_close_timeout: float = 300.0
    """Stream.aclose() waits this long for the peer's FIN, then resets the stream."""

    def __post_init__(self) -> None:
        if self.accept_backlog < 1:
            raise ValueError(f"accept_backlog must be >= 1, got {self.accept_backlog}")
        for name in (
            "keepalive_interval",
            "keepalive_timeout",
            "connection_write_timeout",
            "stream_open_timeout",
            "stream_close_timeout",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number of seconds, got {value!r}")
        if self.initial_stream_window != INITIAL_STREAM_WINDOW:
            raise ValueError(f"initial_stream_window is fixed by yamux at {INITIAL_STREAM_WINDOW}")
        if not INITIAL_STREAM_WINDOW <= self.max_stream_window <= 0xFFFF_FFFF:
            raise ValueError(f"max_stream_window must be in [{INITIAL_STREAM_WINDOW}, 2**32-1]")
        if self.max_streams < 1:
            raise ValueError(f"max_streams must be >= 1, got {self.max_streams}")
        if self.max_session_buffer < INITIAL_STREAM_WINDOW:
            raise ValueError(f"max_session_buffer must be >= {INITIAL_STREAM_WINDOW}")
        if not 1 <= self.min_stream_window <= INITIAL_STREAM_WINDOW // 2:
            # A larger floor would top up a stream before its normal half-window re-grant is even due.
            raise ValueError(f"min_stream_window must be in [1, {INITIAL_STREAM_WINDOW // 2}]")
        if not 1 <= self.max_data_frame <= INITIAL_STREAM_WINDOW:
            raise ValueError(f"max_data_frame must be in [1, {INITIAL_STREAM_WINDOW}]")
        if self.write_buffer_size < 1:
            raise ValueError("write_buffer_size must be >= 1")
        if self.max_outstanding_pings < 1 or self.max_queued_control_frames < 1:
            raise ValueError("max_outstanding_pings and max_queued_control_frames must be >= 1")
