"""Connection: one yamux session as a pure state machine (the h11/h2 shape).

Feed received bytes to ``receive_data`` and get events back; call commands (open_stream, send_data,
half_close, reset, acknowledge, ping, go_away) and collect the bytes to write with ``data_to_send``. Nothing
here blocks, sleeps, reads a clock or touches a socket, so every path can be driven directly by tests.

Memory is bounded on the receive side by construction: a data frame longer than max_stream_window is rejected
from its header alone, the reassembly buffer never holds more than one frame, at most Config.max_streams streams
exist, and credit beyond each stream's first 256 KiB is granted only within Config.max_session_buffer. So what
the peer may have in flight to us plus what we hold unread never exceeds max_session_buffer + max_streams x
256 KiB (mux/SPEC.md, section 7, derives it).

The budget is charged lazily: a stream's implicit initial credit counts only as the peer uses it, and unread
plus granted bytes count after that. Over the budget, due re-grants are withheld (the stream's credit shrinks)
down to a floor of Config.min_stream_window, and withheld grants are handed out round robin as reads free room.
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

_RELEASE_QUANTUM: Final = INITIAL_STREAM_WINDOW // 2
"""Smallest share of freed room a withheld stream is offered per turn (if it needs that much): the half window
a normal re-grant carries, so handing out withheld credit costs no more window updates than normal traffic."""

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
        self._opening = 0  # streams we opened that the peer has not acknowledged (ACK) yet
        self._committed = 0  # sum of ReceiveWindow.committed over streams: what max_session_buffer bounds
        # Streams with a due re-grant withheld because the session is over its budget, in the order they are
        # served (round robin: a stream that still wants more goes to the back). A dict is an ordered set here.
        self._withheld: dict[int, _StreamRecord] = {}
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
        """What is charged to max_session_buffer: unread bytes plus the peer's credit, except the part of each
        stream's initial 256 KiB that the peer has not used yet."""
        return self._committed

    @property
    def bytes_at_risk(self) -> int:
        """Everything the receive side may have to hold: unread bytes plus all credit the peer still has
        (including unused initial credit). Computed by walking the streams; for tests and diagnostics."""
        return sum(rec.recv.available + rec.recv.buffered for rec in self._streams.values())

    @property
    def withheld_streams(self) -> tuple[int, ...]:
        """Streams whose due re-grant waits for room under max_session_buffer, in the order they will be
        served."""
        return tuple(self._withheld)

    @property
    def num_streams(self) -> int:
        """Tracked streams, both directions: what Config.max_streams bounds."""
        return len(self._streams)

    @property
    def unacknowledged_opens(self) -> int:
        """Streams we opened that the peer has not acknowledged yet."""
        return self._opening

    @property
    def stream_limit_reached(self) -> bool:
        """True when open_stream() would raise StreamLimitError for lack of a slot (max_streams streams exist).
        An adapter queues its openers on this instead."""
        return len(self._streams) >= self.config.max_streams

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
        if len(self._streams) >= self.config.max_streams:
            raise StreamLimitError(f"{len(self._streams)} streams are open (max_streams)")
        stream_id = self._next_id
        self._next_id += 2
        # The peer may send the initial window at once, but it is charged to the budget only as it is used.
        self._streams[stream_id] = _StreamRecord(StreamState.SYN_SENT, INITIAL_STREAM_WINDOW)
        self._opening += 1
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
        if n > recv.buffered:
            n = recv.buffered
            if not n:
                return
        recv.buffered -= n
        committed = self._committed - n
        self._committed = committed
        if rec.state not in _PEER_SENDING:
            # The peer sent FIN: it will never use a re-grant, so the window shrinks instead.
            recv.size -= n
            if rec.state is StreamState.CLOSED and recv.buffered == 0:
                self._forget(stream_id, rec)
            elif self._withheld:
                self._release_withheld()
            return
        unacked = recv.unacked + n
        recv.unacked = unacked
        if unacked < recv.size >> 1:
            if self._withheld:
                self._release_withheld()
            return
        headroom = self.config.max_session_buffer - committed - unacked
        if headroom >= 0 and not self._withheld:
            # Under the budget and nobody waiting: the normal full re-grant, with growth if the window is the
            # bottleneck.
            growth = recv.growth(now=now, rtt=self.rtt, max_size=self.config.max_stream_window, headroom=headroom)
            delta = unacked + growth
            recv.size += growth
            recv.unacked = 0
            recv.available += delta
            self._committed = committed + delta
            self._queue(_WINDOW_UPDATE, 0, stream_id, delta)
            return
        self._regrant_scarce(stream_id, rec)

    def _regrant_scarce(self, stream_id: int, rec: _StreamRecord) -> None:
        """A re-grant is due but the session is over its budget (or others wait): top the stream up to the floor,
        queue the rest, and serve the queue with whatever room there is."""
        recv = rec.recv
        floor = self.config.min_stream_window
        held = recv.available + recv.buffered
        # Topped up only once it fell to half the floor, so a stream read a byte at a time does not send a window
        # update per byte. The floor is granted even over the budget: it is what keeps a reading stream moving
        # when streams that do not read hold the budget (no deadlock), and it stays within the stream's first
        # 256 KiB, which the memory bound counts per stream anyway.
        if held <= floor >> 1:
            self._grant(stream_id, recv, min(floor - held, recv.unacked))
        if stream_id not in self._withheld and recv.unacked >= recv.size >> 1:
            self._withheld[stream_id] = rec
        self._release_withheld()

    def _grant(self, stream_id: int, recv: ReceiveWindow, delta: int) -> None:
        recv.unacked -= delta
        recv.available += delta
        self._committed += delta
        self._queue(_WINDOW_UPDATE, 0, stream_id, delta)

    def _release_withheld(self) -> None:
        """Hand room under the budget to streams with withheld re-grants, round robin.

        Each turn offers a stream an equal share of the room (at least _RELEASE_QUANTUM); one that still wants
        more goes to the back. Grants smaller than the floor are not worth a frame: they wait for more room.
        """
        queue = self._withheld
        budget = self.config.max_session_buffer
        floor = self.config.min_stream_window
        while queue:
            room = budget - self._committed
            if room < floor:
                return
            stream_id = next(iter(queue))
            rec = queue.pop(stream_id)
            recv = rec.recv
            if recv.unacked < recv.size >> 1:
                continue  # floor grants made it no longer due; its next read queues it again if need be
            share = max(_RELEASE_QUANTUM, room // (len(queue) + 1))
            self._grant(stream_id, recv, min(recv.unacked, share, room))
            if recv.unacked >= recv.size >> 1:
                queue[stream_id] = rec

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
        self._committed -= rec.recv.committed
        self._unaccepted.discard(stream_id)
        if not rec.acked:
            self._opening -= 1
        if self._withheld:
            self._withheld.pop(stream_id, None)
            self._release_withheld()

    def _peer_finished(self, stream_id: int, rec: _StreamRecord) -> None:
        """The peer sent FIN: it may send nothing more, so its remaining credit and our withheld grant are no
        longer at risk. The window keeps only the unread bytes."""
        recv = rec.recv
        self._committed -= recv.available - recv.initial
        recv.size = recv.buffered
        recv.available = recv.initial = recv.unacked = 0
        if self._withheld:
            self._withheld.pop(stream_id, None)
            self._release_withheld()

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
                self._opening -= 1
                events.append(StreamAcknowledged(stream_id))
        if length:
            if frame_type == _DATA:
                # Fast path for the common case; it is the table's (ESTABLISHED, RECV_DATA) entry.
                if rec.state is not _ESTABLISHED:
                    self._step(stream_id, rec, StreamInput.RECV_DATA)
                recv = rec.recv
                initial = recv.initial
                if not recv.receive(length):
                    raise self._fail(f"stream {stream_id}: {length} bytes exceed the receive window ({recv.available})")
                # Bytes that came out of the initial credit are now held: from here on they count.
                self._committed += initial - recv.initial
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
            else:
                self._peer_finished(stream_id, rec)

    def _admit(self, stream_id: int, events: list[Event]) -> _StreamRecord | None:
        if (
            self.local_goaway
            or len(self._unaccepted) >= self.config.accept_backlog
            or len(self._streams) >= self.config.max_streams
        ):
            self._queue_control(_WINDOW_UPDATE, _RST, stream_id, 0)
            return None
        # Its initial credit is charged to the budget only as the peer uses it (see ReceiveWindow.initial).
        rec = _StreamRecord(StreamState.SYN_RECEIVED, INITIAL_STREAM_WINDOW)
        self._streams[stream_id] = rec
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
