"""Every (stream state, incoming frame) pair follows the transition table; anything else is a protocol error."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard_mux.proto import (
    Connection,
    LocalProtocolError,
    RemoteProtocolError,
    StreamInput,
    StreamState,
)
from dockyard_mux.proto.frames import Flag, FrameType
from dockyard_mux.proto.state import TRANSITIONS, next_state
from dockyard_mux.testing import frame

WINDOW = 256 * 1024
SID = 1  # a client-opened stream, seen from the client

WU = FrameType.WINDOW_UPDATE
DATA = FrameType.DATA


def reach(state: str) -> Connection:
    """A client Connection whose stream SID is in ``state`` ("forgotten" = reset and dropped)."""
    conn = Connection(client=True)
    assert conn.open_stream() == SID
    if state == "syn-sent":
        return conn
    conn.receive_data(frame(WU, Flag.ACK, SID, 0))
    if state == "established":
        return conn
    if state == "local-closed":
        conn.half_close(SID)
    elif state == "remote-closed":
        conn.receive_data(frame(WU, Flag.FIN, SID, 0))
    elif state == "closed":
        # One unread byte keeps the closed stream tracked until the application consumes it.
        conn.receive_data(frame(DATA, Flag.FIN, SID, 1, b"x"))
        conn.half_close(SID)
    elif state == "forgotten":
        conn.reset(SID)
    conn.data_to_send()
    return conn


STATES = ["syn-sent", "established", "local-closed", "remote-closed", "closed", "forgotten"]


def test_reach_gives_the_named_states() -> None:
    for name in STATES:
        state = reach(name).stream_state(SID)
        assert (state is None) if name == "forgotten" else (state is not None and state.value == name)


def model(conn: Connection, frame_type: FrameType, flags: int, length: int) -> StreamState | str | None:
    """What the table says should happen: the resulting state, None (forgotten/ignored) or "error"."""
    state = conn.stream_state(SID)
    if state is None:
        return "error" if flags & Flag.SYN else None  # SID has our parity: a peer SYN for it is an error
    if flags & Flag.SYN:
        return "error"  # duplicate SYN
    steps: list[StreamInput] = []
    if flags & Flag.ACK:
        steps.append(StreamInput.RECV_ACK)
    if length:
        steps.append(StreamInput.RECV_DATA if frame_type == DATA else StreamInput.RECV_WINDOW_UPDATE)
    if flags & Flag.RST:
        steps.append(StreamInput.RECV_RST)
    elif flags & Flag.FIN:
        steps.append(StreamInput.RECV_FIN)
    current: StreamState | None = state
    for step in steps:
        assert current is not None
        current = next_state(current, step)
        if current is None:
            return "error"
    window = conn.receive_window(SID)
    assert window is not None
    if frame_type == DATA and length > window.available:
        return "error"
    if frame_type == WU and conn.send_window(SID) + length > 2**32 - 1:
        return "error"
    if current is StreamState.RESET:
        return None
    if current is StreamState.CLOSED and window.buffered + (length if frame_type == DATA else 0) == 0:
        return None
    return current


@given(
    state=st.sampled_from(STATES),
    frame_type=st.sampled_from([DATA, WU]),
    flags=st.integers(0, 15),
    length=st.sampled_from([0, 1, 1000, WINDOW, WINDOW + 1, 2**32 - 1]),
)
def test_every_state_and_stream_frame(state: str, frame_type: FrameType, flags: int, length: int) -> None:
    conn = reach(state)
    if frame_type == DATA and length > 16 * 1024 * 1024:
        length = WINDOW + 1
    expected = model(conn, frame_type, flags, length)
    payload = b"z" * length if frame_type == DATA else b""
    if expected == "error":
        with pytest.raises(RemoteProtocolError):
            conn.receive_data(frame(frame_type, flags, SID, length, payload))
        # A Go Away (protocol error) is queued and the connection refuses further input.
        assert conn.data_to_send().endswith(frame(FrameType.GO_AWAY, 0, 0, 1))
        with pytest.raises(RemoteProtocolError):
            conn.receive_data(b"")
    else:
        conn.receive_data(frame(frame_type, flags, SID, length, payload))
        assert conn.stream_state(SID) == expected


@pytest.mark.parametrize(
    ("state", "frame_bytes"),
    [
        ("remote-closed", frame(DATA, 0, SID, 1, b"x")),  # data after the peer's FIN
        ("remote-closed", frame(WU, Flag.FIN, SID, 0)),  # a second FIN
        ("closed", frame(DATA, 0, SID, 1, b"x")),
        ("established", frame(WU, Flag.SYN, SID, 0)),  # duplicate SYN
    ],
)
def test_named_violations(state: str, frame_bytes: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        reach(state).receive_data(frame_bytes)


@pytest.mark.parametrize(
    ("state", "frame_bytes", "expected"),
    [
        ("remote-closed", frame(WU, 0, SID, 10), StreamState.REMOTE_CLOSED),  # the peer still re-grants
        ("closed", frame(WU, 0, SID, 10), StreamState.CLOSED),
        ("local-closed", frame(DATA, Flag.FIN, SID, 3, b"abc"), None),  # data + FIN in one frame
        ("syn-sent", frame(DATA, Flag.ACK, SID, 3, b"abc"), StreamState.ESTABLISHED),
        ("forgotten", frame(DATA, 0, SID, 3, b"abc"), None),  # in flight when we reset: ignored
    ],
)
def test_named_legal_frames(state: str, frame_bytes: bytes, expected: StreamState | None) -> None:
    conn = reach(state)
    conn.receive_data(frame_bytes)
    if expected is None and state == "local-closed":
        # CLOSED but three unread bytes keep it tracked.
        assert conn.stream_state(SID) is StreamState.CLOSED
    else:
        assert conn.stream_state(SID) == expected


COMMANDS: dict[StreamInput, Callable[[Connection], None]] = {
    StreamInput.SEND_DATA: lambda conn: conn.send_data(SID, b"d"),
    StreamInput.SEND_FIN: lambda conn: conn.half_close(SID),
    StreamInput.SEND_RST: lambda conn: conn.reset(SID),
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_state_and_local_command(state: str, command: StreamInput) -> None:
    conn = reach(state)
    current = conn.stream_state(SID)
    allowed = current is not None and (current, command) in TRANSITIONS
    if command is StreamInput.SEND_RST and current is None:
        COMMANDS[command](conn)  # resetting a forgotten stream is a no-op
        assert conn.data_to_send() == b""
    elif allowed:
        COMMANDS[command](conn)
        assert conn.data_to_send()
    else:
        with pytest.raises(LocalProtocolError):
            COMMANDS[command](conn)
        assert conn.data_to_send() == b""


def test_table_is_closed_over_states() -> None:
    for (state, event), new in TRANSITIONS.items():
        assert isinstance(state, StreamState)
        assert isinstance(event, StreamInput)
        assert isinstance(new, StreamState)
        assert state is not StreamState.RESET, "a reset stream accepts nothing"
    assert next_state(StreamState.REMOTE_CLOSED, StreamInput.RECV_DATA) is None


def test_hot_path_shortcuts_match_the_table() -> None:
    # Connection skips the table lookup for data and window updates on ESTABLISHED streams; these are the
    # entries it relies on.
    established = StreamState.ESTABLISHED
    for event in (StreamInput.RECV_DATA, StreamInput.RECV_WINDOW_UPDATE, StreamInput.SEND_DATA):
        assert TRANSITIONS[(established, event)] is established
