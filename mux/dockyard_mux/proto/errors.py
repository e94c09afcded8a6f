"""Every error the mux raises. One hierarchy, rooted at MuxError; the asyncio layer re-exports it.

Protocol errors say whose fault it was: LocalProtocolError means our caller asked for something the protocol
forbids (nothing was sent); RemoteProtocolError means the peer broke the protocol (the connection queued a Go
Away carrying ``goaway_code`` and is finished).
"""

from __future__ import annotations

from dockyard_mux.proto.frames import GoAwayCode


class MuxError(Exception):
    """Base class of every error raised by dockyard_mux."""


class ProtocolError(MuxError):
    """The yamux protocol was violated. ``goaway_code`` is the code sent (or to send) in the Go Away frame."""

    def __init__(self, message: str, *, goaway_code: GoAwayCode = GoAwayCode.PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.goaway_code = goaway_code


class LocalProtocolError(ProtocolError):
    """Our side asked for something the protocol does not allow; nothing was queued for the peer."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol; a Go Away with ``goaway_code`` was queued and the connection is
    finished."""


class StreamLimitError(MuxError):
    """No new stream: stream ids are exhausted, or max_streams streams exist (the core), or no slot freed within
    stream_open_timeout (Session.open_stream, which waits for one)."""


class SessionClosedError(MuxError):
    """The session is gone (go away, transport EOF, keepalive timeout, close). ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeepaliveTimeoutError(SessionClosedError):
    """The peer did not answer a keepalive ping in time: it is considered dead."""


class StreamResetError(MuxError):
    """The stream was reset: by the peer (``by_peer`` True) or by our side."""

    def __init__(self, stream_id: int, *, by_peer: bool) -> None:
        who = "the peer" if by_peer else "us"
        super().__init__(f"stream {stream_id} was reset by {who}")
        self.stream_id = stream_id
        self.by_peer = by_peer


class StreamClosedError(MuxError):
    """Writing after our own half-close (send_eof) or close of the stream."""
