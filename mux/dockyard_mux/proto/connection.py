"""Connection: one yamux session as a pure state machine (the h11/h2 shape).

Feed received bytes to ``receive_data`` and get events back; call commands (open_stream, send_data,
half_close, reset, acknowledge, ping, go_away) and collect the bytes to write with ``data_to_send``. Nothing
here blocks, sleeps, reads a clock or touches a socket, so every path can be driven directly by tests.

Memory is bounded on the receive side by construction: a data frame longer than max_stream_window is rejected
from its header alone, the reassembly buffer never holds more than one frame, and the sum of receive windows
(what the peer may have in flight plus what we hold unread) never exceeds Config.max_session_buffer.
"""

from __future__ import annotations

from typing import Final

from dockyard_mux.proto.config import INITIAL_STREAM_WINDOW, Config
from dockyard_mux.proto.errors import LocalProtocolError, RemoteProtocolError, StreamLimitError
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
from dockyard_mux.proto.frames import (
    ALL_FLAGS,
    HEADER,
    HEADER_SIZE,
    MAX_UINT32,
    Flag,
    FrameType,
    GoAwayCode,
)
from dockyard_mux.proto.state import TRANSITIONS, StreamInput, StreamState
from dockyard_mux.proto.windows import ReceiveWindow, SendWindow

_DATA: Final = int(FrameType.DATA)
_WINDOW_UPDATE: Final = int(FrameType.WINDOW_UPDATE)
_PING: Final = int(FrameType.PING)
_GO_AWAY: Final = int(FrameType.GO_AWAY)
_SYN: Final = int(Flag.SYN)
_ACK: Final = int(Flag.ACK)
_FIN: Final = int(Flag.FIN)
_RST: Final = int(Flag.RST)

# States in which the peer may still send us data, so consumed bytes are re-granted. A tuple on purpose: membership
# tests by identity, where a set would call Enum.__hash__ (Python code) on the hot path.
_PEER_SENDING: Final = (
    StreamState.ESTABLISHED,
    StreamState.LOCAL_CLOSED,
    StreamState.SYN_SENT,
    StreamState.SYN_RECEIVED,
)
_ESTABLISHED: Final = StreamState.ESTABLISHED


class _StreamRecord:
    __slots__ = ("acked", "recv", "send", "state")

    def __init__(self, state: StreamState, window: int) -> None:
        self.state = state
        self.acked = state is not StreamState.SYN_SENT
        self.send = SendWindow(window)
        self.recv = ReceiveWindow(window)


class Connection:
    """The protocol state of one yamux session. ``client`` opens odd stream ids, the server even ones."""

    def __init__(self, *, client: bool, config: Config | None = None) -> None:
        self.config = config if config is not None else Config()
        self.client = client
        self.rtt: float | None = None
        """Latest round-trip estimate in seconds, set by the caller; drives receive-window growth."""
        self.bytes_sent = 0
        self.bytes_received = 0
        self.local_goaway = False
        self.remote_goaway: GoAwayCode | None = None
        self._next_id = 1 if client else 2
        self._streams: dict[int, _StreamRecord] = {}
        self._unaccepted: set[int] = set()
        self._committed = 0  # sum of receive-window sizes (bytes in flight to us + unread), see Config
        self._inbuf = bytearray()
        self._out: list[bytes | memoryview] = []
        self._out_size = 0
        self._control_queued = 0
        self._pings: set[int] = set()
        self._next_ping = 0
        self._error: RemoteProtocolError | None = None

    # ---------------------------------------------------------------- inspection

    @property
    def terminated(self) -> bool:
        """True after the peer broke the protocol (we queued Go Away) or sent a non-normal Go Away."""
        return self._error is not None or (self.remote_goaway is not None and self.remote_goaway != GoAwayCode.NORMAL)

    @property
    def pending_bytes(self) -> int:
        """Bytes queued for the peer and not yet taken by data_to_send()."""
        return self._out_size

    @property
    def committed_window(self) -> int:
        """Sum of receive windows over tracked streams: the bound on bytes we may have to hold."""
        return self._committed

    @property
    def buffered_input(self) -> int:
        """Bytes of an incomplete frame held for reassembly."""
        return len(self._inbuf)

    def stream_state(self, stream_id: int) -> StreamState | None:
        rec = self._streams.get(stream_id)
        return None if rec is None else rec.state

    def send_window(self, stream_id: int) -> int:
        rec = self._streams.get(stream_id)
        return 0 if rec is None else rec.send.available

    def receive_window(self, stream_id: int) -> ReceiveWindow | None:
        rec = self._streams.get(stream_id)
        return None if rec is None else rec.recv

    @property
    def stream_ids(self) -> frozenset[int]:
        return frozenset(self._streams)

    @property
    def unaccepted(self) -> int:
        return len(self._unaccepted)

    # ---------------------------------------------------------------- output

    def data_to_send(self) -> bytes:
        """All queued bytes, in order, joined once; the queue is then empty."""
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        self._out_size = 0
        self._control_queued = 0
        return data

    def _queue(self, frame_type: int, flags: int, stream_id: int, length: int) -> None:
        self._out.append(HEADER.pack(0, frame_type, flags, stream_id, length))
        self._out_size += HEADER_SIZE

    # ---------------------------------------------------------------- commands

    def open_stream(self) -> int:
        """Queue a SYN for a new stream and return its id."""
        if self.terminated:
            raise LocalProtocolError("the connection is terminated")
        if self.local_goaway or self.remote_goaway is not None:
            raise LocalProtocolError("no new streams after go away")
        if self._next_id > MAX_UINT32:
            raise StreamLimitError("stream ids are exhausted")
        if self._committed + INITIAL_STREAM_WINDOW > self.config.max_session_buffer:
            raise StreamLimitError("a new stream's receive window would exceed max_session_buffer")
        stream_id = self._next_id
        self._next_id += 2
        self._streams[stream_id] = _StreamRecord(StreamState.SYN_SENT, INITIAL_STREAM_WINDOW)
        self._committed += INITIAL_STREAM_WINDOW
        # Like hashicorp/yamux, the SYN rides on a window update with delta 0 (our window stays the initial
        # one).
        self._queue(_WINDOW_UPDATE, _SYN, stream_id, 0)
        return stream_id

    def send_data(self, stream_id: int, data: bytes | memoryview) -> None:
        """Queue ``data`` (at most send_window(stream_id) bytes) as one or more data frames."""
        rec = self._streams.get(stream_id)
        if rec is None or rec.state is not _ESTABLISHED:
            rec = self._local(stream_id, StreamInput.SEND_DATA)
        n = len(data)
        if n > rec.send.available:
            raise LocalProtocolError(f"{n} bytes exceed the send window ({rec.send.available}) of stream {stream_id}")
        rec.send.available -= n
        self.bytes_sent += n
        step = self.config.max_data_frame
        out = self._out
        pack = HEADER.pack
        for offset in range(0, n, step):
            chunk = data[offset : offset + step]
            out.append(pack(0, _DATA, 0, stream_id, len(chunk)))
            out.append(chunk)
        self._out_size += n + HEADER_SIZE * ((n + step - 1) // step)

    def half_close(self, stream_id: int) -> None:
        """Queue FIN: we send no more on this stream; the peer may keep sending."""
        rec = self._local(stream_id, StreamInput.SEND_FIN)
        self._queue(_WINDOW_UPDATE, _FIN, stream_id, 0)
        if rec.state is StreamState.CLOSED and rec.recv.buffered == 0:
            self._forget(stream_id, rec)

    def reset(self, stream_id: int) -> None:
        """Queue RST and forget the stream. Resetting an unknown or finished stream does nothing."""
        rec = self._streams.get(stream_id)
        if rec is None:
            return
        self._local(stream_id, StreamInput.SEND_RST)
        self._queue(_WINDOW_UPDATE, _RST, stream_id, 0)
        self._forget(stream_id, rec)

    def acknowledge(self, stream_id: int, n: int, *, now: float | None = None) -> None:
        """The application consumed ``n`` received bytes of a stream; re-grant window when due.

        ``now`` (monotonic seconds) enables window growth together with ``rtt``.
        """
        rec = self._streams.get(stream_id)
        if rec is None or n <= 0:
            return
        recv = rec.recv
        if rec.state not in _PEER_SENDING:
            # The peer sent FIN: it will never use a re-grant, so the window shrinks instead.
            n = min(n, recv.buffered)
            recv.buffered -= n
            recv.size -= n
            self._committed -= n
            if rec.state is StreamState.CLOSED and recv.buffered == 0:
                self._forget(stream_id, rec)
            return
        old_size = recv.size
        delta = recv.consume(
            n,
            now=now,
            rtt=self.rtt,
            max_size=self.config.max_stream_window,
            headroom=self.config.max_session_buffer - self._committed,
        )
        self._committed += recv.size - old_size
        if delta:
            self._queue(_WINDOW_UPDATE, 0, stream_id, delta)

    def mark_accepted(self, stream_id: int) -> None:
        """The application accepted a stream the peer opened: it no longer counts against the backlog."""
        self._unaccepted.discard(stream_id)

    def ping(self) -> int:
        """Queue a ping and return its opaque value (PingAcknowledged carries it back)."""
        if len(self._pings) >= self.config.max_outstanding_pings:
            raise LocalProtocolError(f"{len(self._pings)} pings are already awaiting an answer")
        opaque = self._next_ping
        self._next_ping = (opaque + 1) & MAX_UINT32
        self._pings.add(opaque)
        self._queue(_PING, _SYN, 0, opaque)
        return opaque

    def forget_ping(self, opaque: int) -> None:
        """Stop waiting for an answer to a ping (the caller timed out)."""
        self._pings.discard(opaque)

    def go_away(self, code: GoAwayCode = GoAwayCode.NORMAL) -> None:
        """Queue Go Away: the peer may open no more streams. Idempotent."""
        if self.local_goaway:
            return
        self.local_goaway = True
        self._queue(_GO_AWAY, 0, 0, int(code))

    def _local(self, stream_id: int, event: StreamInput) -> _StreamRecord:
        rec = self._streams.get(stream_id)
        if rec is None:
            raise LocalProtocolError(f"stream {stream_id} is not open")
        new = TRANSITIONS.get((rec.state, event))
        if new is None:
            raise LocalProtocolError(f"stream {stream_id}: cannot {event.value} in state {rec.state.value}")
        rec.state = new
        return rec

    def _forget(self, stream_id: int, rec: _StreamRecord) -> None:
        del self._streams[stream_id]
        self._committed -= rec.recv.size
        self._unaccepted.discard(stream_id)

    # ---------------------------------------------------------------- input

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Parse ``data`` (any split of the byte stream) and return the events it completes.

        Raises RemoteProtocolError when the peer broke the protocol; a Go Away (protocol error) is then queued
        and every later call raises the same error.
        """
        if self._error is not None:
            raise self._error
        events: list[Event] = []
        if self._inbuf:
            self._inbuf += data
            buf: bytes | bytearray = self._inbuf
        else:
            buf = data if isinstance(data, bytes) else bytes(data)
        size = len(buf)
        pos = 0
        max_frame = self.config.max_stream_window
        unpack = HEADER.unpack_from
        with memoryview(buf) as view:
            while size - pos >= HEADER_SIZE:
                version, frame_type, flags, stream_id, length = unpack(buf, pos)
                if version != 0:
                    raise self._fail(f"unsupported yamux version {version}")
                if frame_type == _DATA:
                    if length > max_frame:
                        raise self._fail(f"data frame of {length} bytes exceeds any window we grant")
                    end = pos + HEADER_SIZE + length
                    if end > size:
                        break
                    payload = bytes(view[pos + HEADER_SIZE : end]) if length else b""
                    pos = end
                    self._on_stream_frame(_DATA, flags, stream_id, length, payload, events)
                    continue
                pos += HEADER_SIZE
                if frame_type == _WINDOW_UPDATE:
                    self._on_stream_frame(_WINDOW_UPDATE, flags, stream_id, length, b"", events)
                elif frame_type == _PING:
                    self._on_ping(flags, stream_id, length, events)
                elif frame_type == _GO_AWAY:
                    self._on_go_away(flags, stream_id, length, events)
                else:
                    raise self._fail(f"unknown frame type {frame_type}")
        if buf is self._inbuf:
            del self._inbuf[:pos]
        elif pos < size:
            self._inbuf += buf[pos:]
        return events

    def _fail(self, message: str) -> RemoteProtocolError:
        error = RemoteProtocolError(message, goaway_code=GoAwayCode.PROTOCOL_ERROR)
        self._error = error
        self._inbuf = bytearray()
        if not self.local_goaway:
            self.local_goaway = True
            self._queue(_GO_AWAY, 0, 0, int(GoAwayCode.PROTOCOL_ERROR))
        return error

    def _step(self, stream_id: int, rec: _StreamRecord, event: StreamInput) -> None:
        new = TRANSITIONS.get((rec.state, event))
        if new is None:
            raise self._fail(f"stream {stream_id}: {event.value} is not allowed in state {rec.state.value}")
        rec.state = new

    def _on_stream_frame(
        self, frame_type: int, flags: int, stream_id: int, length: int, payload: bytes, events: list[Event]
    ) -> None:
        if flags & ~ALL_FLAGS:
            raise self._fail(f"unknown flag bits {flags:#06x}")
        if stream_id == 0:
            raise self._fail("data and window update frames must not use stream id 0")
        rec = self._streams.get(stream_id)
        if flags & _SYN:
            if rec is not None:
                raise self._fail(f"duplicate SYN for stream {stream_id}")
            if (stream_id & 1) == (1 if self.client else 0):
                raise self._fail(f"the peer opened stream {stream_id}, which has our parity")
            rec = self._admit(stream_id, events)
            if rec is None:
                return
            self._apply_flags(frame_type, flags, stream_id, length, payload, rec, events)
            if self._streams.get(stream_id) is rec:
                new = TRANSITIONS.get((rec.state, StreamInput.SEND_ACK))
                if new is not None:
                    rec.state = new
            return
        if rec is None:
            # A stream we already reset or finished: the frame was in flight. yamux drops it too.
            return
        self._apply_flags(frame_type, flags, stream_id, length, payload, rec, events)

    def _apply_flags(
        self,
        frame_type: int,
        flags: int,
        stream_id: int,
        length: int,
        payload: bytes,
        rec: _StreamRecord,
        events: list[Event],
    ) -> None:
        if flags & _ACK:
            self._step(stream_id, rec, StreamInput.RECV_ACK)
            if not rec.acked:
                rec.acked = True
                events.append(StreamAcknowledged(stream_id))
        if length:
            if frame_type == _DATA:
                # Fast path for the common case; it is the table's (ESTABLISHED, RECV_DATA) entry.
                if rec.state is not _ESTABLISHED:
                    self._step(stream_id, rec, StreamInput.RECV_DATA)
                if not rec.recv.receive(length):
                    raise self._fail(
                        f"stream {stream_id}: {length} bytes exceed the receive window ({rec.recv.available})"
                    )
                self.bytes_received += length
                events.append(DataReceived(stream_id, payload))
            else:
                if rec.state is not _ESTABLISHED:
                    self._step(stream_id, rec, StreamInput.RECV_WINDOW_UPDATE)
                if rec.send.available + length > MAX_UINT32:
                    raise self._fail(f"stream {stream_id}: window update overflows 2**32-1")
                rec.send.available += length
                events.append(WindowUpdated(stream_id, length))
        if flags & _RST:
            # RST wins over a FIN in the same frame: the stream is aborted either way.
            self._step(stream_id, rec, StreamInput.RECV_RST)
            self._forget(stream_id, rec)
            events.append(StreamReset(stream_id))
            return
        if flags & _FIN:
            self._step(stream_id, rec, StreamInput.RECV_FIN)
            events.append(StreamEnded(stream_id))
            if rec.state is StreamState.CLOSED and rec.recv.buffered == 0:
                self._forget(stream_id, rec)

    def _admit(self, stream_id: int, events: list[Event]) -> _StreamRecord | None:
        if (
            self.local_goaway
            or len(self._unaccepted) >= self.config.accept_backlog
            or self._committed + INITIAL_STREAM_WINDOW > self.config.max_session_buffer
        ):
            self._queue_control(_WINDOW_UPDATE, _RST, stream_id, 0)
            return None
        rec = _StreamRecord(StreamState.SYN_RECEIVED, INITIAL_STREAM_WINDOW)
        self._streams[stream_id] = rec
        self._committed += INITIAL_STREAM_WINDOW
        self._unaccepted.add(stream_id)
        # ACK at once rather than on accept: hashicorp/yamux tears the whole session down when an opened
        # stream stays unacknowledged for StreamOpenTimeout, and the backlog already bounds what we hold. The
        # state moves on (SEND_ACK) once the rest of the SYN frame is applied.
        self._queue(_WINDOW_UPDATE, _ACK, stream_id, 0)
        events.append(StreamOpened(stream_id))
        return rec

    def _queue_control(self, frame_type: int, flags: int, stream_id: int, length: int) -> bool:
        """Queue a reply the peer provoked; refuse past max_queued_control_frames (bounded memory)."""
        if self._control_queued >= self.config.max_queued_control_frames:
            return False
        self._control_queued += 1
        self._queue(frame_type, flags, stream_id, length)
        return True

    def _on_ping(self, flags: int, stream_id: int, opaque: int, events: list[Event]) -> None:
        if stream_id != 0:
            raise self._fail("ping frames must use stream id 0")
        if flags == _SYN:
            if self._queue_control(_PING, _ACK, 0, opaque):
                events.append(PingReceived(opaque))
        elif flags == _ACK:
            if opaque in self._pings:
                self._pings.discard(opaque)
                events.append(PingAcknowledged(opaque))
        else:
            raise self._fail(f"ping with flags {flags:#x} (must be exactly SYN or ACK)")

    def _on_go_away(self, flags: int, stream_id: int, code: int, events: list[Event]) -> None:
        if stream_id != 0 or flags != 0:
            raise self._fail("go away frames must use stream id 0 and no flags")
        if code > GoAwayCode.INTERNAL_ERROR:
            raise self._fail(f"unknown go away code {code}")
        self.remote_goaway = GoAwayCode(code)
        events.append(GoAwayReceived(code))
