"""The protocol core driven directly: flow control, window growth, closing, resets, limits, ping, go away."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard_mux.proto import (
    Config,
    Connection,
    DataReceived,
    GoAwayReceived,
    LocalProtocolError,
    PingAcknowledged,
    PingReceived,
    RemoteProtocolError,
    StreamAcknowledged,
    StreamEnded,
    StreamLimitError,
    StreamOpened,
    StreamReset,
    StreamState,
    WindowUpdated,
)
from dockyard_mux.proto.frames import Flag, FrameType, GoAwayCode
from dockyard_mux.testing import exchange, frame, handshake

WINDOW = 256 * 1024
DATA = FrameType.DATA
WU = FrameType.WINDOW_UPDATE


def test_open_sends_syn_on_a_window_update_and_the_peer_acks_at_once() -> None:
    client = Connection(client=True)
    server = Connection(client=False)
    assert client.open_stream() == 1
    assert client.open_stream() == 3
    syns = client.data_to_send()
    assert syns == frame(WU, Flag.SYN, 1, 0) + frame(WU, Flag.SYN, 3, 0)
    assert server.receive_data(syns) == [StreamOpened(1), StreamOpened(3)]
    assert server.data_to_send() == frame(WU, Flag.ACK, 1, 0) + frame(WU, Flag.ACK, 3, 0)
    assert server.open_stream() == 2


def test_ack_is_reported_once_even_after_half_close() -> None:
    client = Connection(client=True)
    server = Connection(client=False)
    stream_id = client.open_stream()
    client.half_close(stream_id)
    server.receive_data(client.data_to_send())
    events = client.receive_data(server.data_to_send())
    assert events == [StreamAcknowledged(stream_id)]


def test_any_split_of_the_byte_stream_gives_the_same_events() -> None:
    client = Connection(client=True)
    stream_id = client.open_stream()
    client.send_data(stream_id, b"hello world" * 100)
    client.half_close(stream_id)
    client.ping()
    wire = client.data_to_send()
    whole = Connection(client=False).receive_data(wire)
    split = Connection(client=False)
    events = []
    for i in range(0, len(wire), 7):
        events += split.receive_data(wire[i : i + 7])
    merged = b"".join(e.data for e in events if isinstance(e, DataReceived))
    assert merged == b"hello world" * 100
    assert [e for e in events if not isinstance(e, DataReceived)] == [
        e for e in whole if not isinstance(e, DataReceived)
    ]


# ---------------------------------------------------------------- flow control


def test_flow_control_accounting() -> None:
    client, server, sid = handshake()
    assert client.send_window(sid) == WINDOW
    client.send_data(sid, b"a" * WINDOW)
    assert client.send_window(sid) == 0
    with pytest.raises(LocalProtocolError, match="exceed the send window"):
        client.send_data(sid, b"b")
    events = server.receive_data(client.data_to_send())
    assert sum(len(e.data) for e in events if isinstance(e, DataReceived)) == WINDOW
    window = server.receive_window(sid)
    assert window is not None
    assert (window.available, window.buffered, window.unacked) == (0, WINDOW, 0)
    # Less than half consumed: no update yet.
    server.acknowledge(sid, WINDOW // 2 - 1)
    assert server.data_to_send() == b""
    # Half consumed: one update for everything consumed so far.
    server.acknowledge(sid, 1)
    assert server.data_to_send() == frame(WU, 0, sid, WINDOW // 2)
    assert (window.available, window.buffered, window.unacked) == (WINDOW // 2, WINDOW // 2, 0)
    assert client.receive_data(frame(WU, 0, sid, WINDOW // 2)) == [WindowUpdated(sid, WINDOW // 2)]
    assert client.send_window(sid) == WINDOW // 2


def test_data_beyond_the_window_is_a_protocol_error() -> None:
    _client, server, sid = handshake()
    server.receive_data(frame(DATA, 0, sid, WINDOW, b"x" * WINDOW))
    with pytest.raises(RemoteProtocolError, match="receive window"):
        server.receive_data(frame(DATA, 0, sid, 1, b"y"))
    assert server.data_to_send().endswith(frame(FrameType.GO_AWAY, 0, 0, GoAwayCode.PROTOCOL_ERROR))


def test_oversized_data_frame_is_rejected_from_its_header_alone() -> None:
    server = Connection(client=False, config=Config(max_stream_window=WINDOW))
    with pytest.raises(RemoteProtocolError, match="exceeds any window"):
        server.receive_data(frame(DATA, Flag.SYN, 1, WINDOW + 1)[:12])
    assert server.buffered_input == 0


def test_window_grows_when_consumed_within_a_few_rtts() -> None:
    config = Config(max_stream_window=4 * WINDOW)
    client, server, sid = handshake(server_config=config)
    server.rtt = 0.001
    now = 100.0
    sizes = []
    for _ in range(6):
        window = server.receive_window(sid)
        assert window is not None
        grant = window.available
        client.send_data(sid, b"x" * grant)
        server.receive_data(client.data_to_send())
        server.acknowledge(sid, grant, now=now)
        client.receive_data(server.data_to_send())
        assert client.send_window(sid) == window.available  # both sides agree on the credit
        sizes.append(window.size)
        now += 0.0005  # each window consumed in half an RTT: the window is the bottleneck
    assert sizes[0] == WINDOW  # the first grant only starts the measurement epoch
    assert sizes[-1] == 4 * WINDOW  # doubled up to the ceiling, never beyond
    assert all(b >= a for a, b in itertools.pairwise(sizes))
    assert server.committed_window == 4 * WINDOW


def test_window_does_not_grow_for_a_slow_reader_or_without_rtt() -> None:
    client, server, sid = handshake()
    now = 0.0
    for rtt in (None, 0.001):
        server.rtt = rtt
        for _ in range(4):
            client.send_data(sid, b"x" * client.send_window(sid))
            server.receive_data(client.data_to_send())
            window = server.receive_window(sid)
            assert window is not None
            server.acknowledge(sid, window.buffered, now=now)
            client.receive_data(server.data_to_send())
            now += 1.0  # far more than 4 RTTs between grants
    window = server.receive_window(sid)
    assert window is not None
    assert window.size == WINDOW


def test_window_growth_respects_the_session_cap() -> None:
    config = Config(max_stream_window=16 * WINDOW, max_session_buffer=2 * WINDOW)
    client, server, sid = handshake(server_config=config)
    server.rtt = 1.0
    for step in range(6):
        client.send_data(sid, b"x" * client.send_window(sid))
        server.receive_data(client.data_to_send())
        window = server.receive_window(sid)
        assert window is not None
        server.acknowledge(sid, window.buffered, now=float(step))
        client.receive_data(server.data_to_send())
        assert server.committed_window <= 2 * WINDOW
    window = server.receive_window(sid)
    assert window is not None
    assert window.size == 2 * WINDOW


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 70_000)), max_size=60))
def test_flow_control_invariants_hold_for_any_send_and_consume_sequence(
    steps: list[tuple[bool, int]],
) -> None:
    client, server, sid = handshake()
    sent = consumed = 0
    for is_send, amount in steps:
        if is_send:
            n = min(amount, client.send_window(sid))
            client.send_data(sid, b"s" * n)
            sent += n
            server.receive_data(client.data_to_send())
        else:
            window = server.receive_window(sid)
            assert window is not None
            n = min(amount, window.buffered)
            server.acknowledge(sid, n)
            consumed += n
            client.receive_data(server.data_to_send())
        window = server.receive_window(sid)
        assert window is not None
        assert window.available + window.buffered + window.unacked == window.size == WINDOW
        assert window.buffered == sent - consumed
        assert client.send_window(sid) == window.available  # nothing in flight after each exchange
        assert 0 <= client.send_window(sid) <= WINDOW


# ---------------------------------------------------------------- closing


def test_half_close_client_first_then_server() -> None:
    client, server, sid = handshake()
    client.send_data(sid, b"request")
    client.half_close(sid)
    assert client.stream_state(sid) is StreamState.LOCAL_CLOSED
    with pytest.raises(LocalProtocolError):
        client.send_data(sid, b"more")
    events, _ = exchange(client, server)
    assert events == [DataReceived(sid, b"request"), StreamEnded(sid)]
    assert server.stream_state(sid) is StreamState.REMOTE_CLOSED
    server.send_data(sid, b"response")  # the other direction stays open
    server.half_close(sid)
    assert server.stream_state(sid) is StreamState.CLOSED  # one unread byte count keeps it tracked
    events, _ = exchange(server, client)
    assert events == [DataReceived(sid, b"response"), StreamEnded(sid)]
    client.acknowledge(sid, len(b"response"))
    assert client.stream_state(sid) is None
    server.acknowledge(sid, len(b"request"))
    assert server.stream_state(sid) is None
    assert client.committed_window == server.committed_window == 0


def test_half_close_server_first() -> None:
    client, server, sid = handshake()
    server.half_close(sid)
    events, _ = exchange(server, client)
    assert events == [StreamEnded(sid)]
    client.send_data(sid, b"late but legal")
    events, _ = exchange(client, server)
    assert events == [DataReceived(sid, b"late but legal")]
    client.half_close(sid)
    exchange(client, server)
    server.acknowledge(sid, 14)
    assert client.stream_state(sid) is None
    assert server.stream_state(sid) is None


def test_reset_during_a_blocked_write() -> None:
    client, server, sid = handshake()
    client.send_data(sid, b"x" * WINDOW)
    assert client.send_window(sid) == 0  # a writer would now wait for window
    server.receive_data(client.data_to_send())
    server.reset(sid)
    assert server.data_to_send() == frame(WU, Flag.RST, sid, 0)
    assert server.committed_window == 0  # the reset stream's buffered bytes are released
    assert client.receive_data(frame(WU, Flag.RST, sid, 0)) == [StreamReset(sid)]
    assert client.stream_state(sid) is None
    with pytest.raises(LocalProtocolError, match="not open"):
        client.send_data(sid, b"y")
    # Frames still in flight for the reset stream are ignored, not errors.
    assert server.receive_data(frame(DATA, 0, sid, 5, b"stale")) == []


# ---------------------------------------------------------------- limits


def test_backlog_overflow_resets_new_streams() -> None:
    server = Connection(client=False, config=Config(accept_backlog=2))
    events = server.receive_data(
        frame(WU, Flag.SYN, 1, 0) + frame(WU, Flag.SYN, 3, 0) + frame(DATA, Flag.SYN, 5, 3, b"abc")
    )
    assert events == [StreamOpened(1), StreamOpened(3)]
    assert server.data_to_send() == frame(WU, Flag.ACK, 1, 0) + frame(WU, Flag.ACK, 3, 0) + frame(WU, Flag.RST, 5, 0)
    server.mark_accepted(1)
    assert server.receive_data(frame(WU, Flag.SYN, 7, 0)) == [StreamOpened(7)]


def test_max_streams_bounds_streams_both_ways() -> None:
    """Streams of both directions count; the peer's SYN past the limit is reset, our open raises (the asyncio
    Session queues its openers on stream_limit_reached instead), and a forgotten stream frees its slot."""
    server = Connection(client=False, config=Config(max_streams=3, max_session_buffer=WINDOW))
    assert server.open_stream() == 2
    server.receive_data(frame(WU, Flag.SYN, 1, 0) + frame(WU, Flag.SYN, 3, 0) + frame(WU, Flag.SYN, 5, 0))
    assert server.data_to_send() == (
        frame(WU, Flag.SYN, 2, 0) + frame(WU, Flag.ACK, 1, 0) + frame(WU, Flag.ACK, 3, 0) + frame(WU, Flag.RST, 5, 0)
    )
    assert server.num_streams == 3
    full = server.stream_limit_reached
    assert full
    with pytest.raises(StreamLimitError, match="max_streams"):
        server.open_stream()
    server.reset(1)
    assert not server.stream_limit_reached
    assert server.open_stream() == 4
    # A peer's reset frees a slot too. The budget (one window here) no longer limits admission: three streams
    # with 256 KiB of initial credit each.
    assert server.receive_data(frame(WU, Flag.RST, 3, 0)) == [StreamReset(3)]
    assert server.receive_data(frame(WU, Flag.SYN, 7, 0)) == [StreamOpened(7)]
    assert server.num_streams == 3
    assert server.bytes_at_risk == 3 * WINDOW


def test_admission_no_longer_depends_on_the_session_buffer() -> None:
    """Before max_streams, each stream reserved 256 KiB of max_session_buffer at open, so 64 MiB meant 256
    streams. Now 1000 streams each way fit the defaults, and idle streams charge nothing to the budget."""
    client = Connection(client=True)
    server = Connection(client=False)
    opened: list[int] = []
    for _ in range(10):  # in batches, each accepted before the next arrives (accept_backlog is 256)
        for _ in range(100):
            client.open_stream()
            server.open_stream()
        at_server, at_client = exchange(client, server)
        for conn, events in ((server, at_server), (client, at_client)):
            for event in events:
                assert not isinstance(event, StreamReset)
                if isinstance(event, StreamOpened):
                    conn.mark_accepted(event.stream_id)
                    opened.append(event.stream_id)
        exchange(client, server)  # the ACKs
    assert len(opened) == 2000
    assert client.unacknowledged_opens == server.unacknowledged_opens == 0
    assert client.num_streams == server.num_streams == 2000
    assert client.committed_window == server.committed_window == 0
    assert client.bytes_at_risk == server.bytes_at_risk == 2000 * WINDOW  # the protocol's initial credit


def test_stream_id_rules() -> None:
    server = Connection(client=False)
    with pytest.raises(RemoteProtocolError, match="parity"):
        server.receive_data(frame(WU, Flag.SYN, 2, 0))
    with pytest.raises(RemoteProtocolError, match="stream id 0"):
        Connection(client=False).receive_data(frame(DATA, 0, 0, 0))


def test_stream_ids_exhausted() -> None:
    client = Connection(client=True)
    client._next_id = 2**32 - 1  # test seam: jump to the last id
    assert client.open_stream() == 2**32 - 1
    with pytest.raises(StreamLimitError, match="exhausted"):
        client.open_stream()


def test_ping_flood_is_answered_up_to_the_control_frame_limit() -> None:
    server = Connection(client=False, config=Config(max_queued_control_frames=10))
    events = server.receive_data(b"".join(frame(FrameType.PING, Flag.SYN, 0, i) for i in range(50)))
    assert events == [PingReceived(i) for i in range(10)]
    assert server.pending_bytes == 10 * 12
    server.data_to_send()
    assert len(server.receive_data(frame(FrameType.PING, Flag.SYN, 0, 99))) == 1


# ---------------------------------------------------------------- ping and go away


def test_ping_round_trip() -> None:
    client = Connection(client=True)
    server = Connection(client=False)
    opaque = client.ping()
    assert client.data_to_send() == frame(FrameType.PING, Flag.SYN, 0, opaque)
    assert server.receive_data(frame(FrameType.PING, Flag.SYN, 0, opaque)) == [PingReceived(opaque)]
    reply = server.data_to_send()
    assert reply == frame(FrameType.PING, Flag.ACK, 0, opaque)
    assert client.receive_data(reply) == [PingAcknowledged(opaque)]
    assert client.receive_data(reply) == []  # an unsolicited pong is ignored


def test_ping_limits_and_malformed_pings() -> None:
    client = Connection(client=True, config=Config(max_outstanding_pings=2))
    client.ping()
    client.ping()
    with pytest.raises(LocalProtocolError, match="awaiting"):
        client.ping()
    client.forget_ping(0)
    client.ping()
    for bad in (frame(FrameType.PING, Flag.SYN, 1, 0), frame(FrameType.PING, Flag.SYN | Flag.ACK, 0, 0)):
        with pytest.raises(RemoteProtocolError):
            Connection(client=True).receive_data(bad)


def test_go_away_with_open_streams() -> None:
    client, server, sid = handshake()
    server.go_away()
    server.go_away()  # idempotent
    assert server.data_to_send() == frame(FrameType.GO_AWAY, 0, 0, GoAwayCode.NORMAL)
    assert client.receive_data(frame(FrameType.GO_AWAY, 0, 0, 0)) == [GoAwayReceived(0)]
    with pytest.raises(LocalProtocolError, match="go away"):
        client.open_stream()
    # A SYN that crossed our Go Away is reset.
    server.receive_data(frame(WU, Flag.SYN, 3, 0))
    assert server.data_to_send() == frame(WU, Flag.RST, 3, 0)
    # The open stream still works both ways.
    client.send_data(sid, b"still")
    events, _ = exchange(client, server)
    assert events == [DataReceived(sid, b"still")]
    server.send_data(sid, b"here")
    events, _ = exchange(server, client)
    assert events == [DataReceived(sid, b"here")]
    assert not client.terminated


@pytest.mark.parametrize("code", [1, 2])
def test_go_away_with_an_error_code_terminates(code: int) -> None:
    client = Connection(client=True)
    assert client.receive_data(frame(FrameType.GO_AWAY, 0, 0, code)) == [GoAwayReceived(code)]
    assert client.terminated
    with pytest.raises(LocalProtocolError):
        client.open_stream()


def test_unknown_go_away_code_and_bad_version() -> None:
    with pytest.raises(RemoteProtocolError, match="code"):
        Connection(client=True).receive_data(frame(FrameType.GO_AWAY, 0, 0, 3))
    with pytest.raises(RemoteProtocolError, match="version"):
        Connection(client=True).receive_data(b"\x01" + b"\x00" * 11)
    with pytest.raises(RemoteProtocolError, match="type"):
        Connection(client=True).receive_data(b"\x00\x07" + b"\x00" * 10)


def test_window_does_not_grow_while_the_peer_still_has_credit() -> None:
    """Fast consumption alone is not enough: if the sender never ran out of credit, bytes were queued
    elsewhere (socket buffers, our parser), and a larger window would only deepen that queue."""
    client, server, sid = handshake()
    server.rtt = 1.0
    for step in range(8):
        client.send_data(sid, b"x" * (WINDOW // 2))  # half the credit, never all of it
        server.receive_data(client.data_to_send())
        server.acknowledge(sid, WINDOW // 2, now=step * 0.001)
        client.receive_data(server.data_to_send())
    window = server.receive_window(sid)
    assert window is not None
    assert window.size == WINDOW


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (Flag.SYN, StreamState.ESTABLISHED),
        (Flag.SYN | Flag.FIN, StreamState.REMOTE_CLOSED),
        (Flag.SYN | Flag.RST, None),
        (Flag.SYN | Flag.ACK, "error"),  # the peer cannot acknowledge a stream it opens itself
    ],
)
def test_flags_riding_on_a_syn(flags: int, expected: StreamState | str | None) -> None:
    server = Connection(client=False)
    wire = frame(DATA, flags, 1, 3, b"abc")
    if expected == "error":
        with pytest.raises(RemoteProtocolError, match="recv-ack"):
            server.receive_data(wire)
        return
    events = server.receive_data(wire)
    assert events[:2] == [StreamOpened(1), DataReceived(1, b"abc")]
    assert server.stream_state(1) == expected
    assert server.data_to_send().startswith(frame(WU, Flag.ACK, 1, 0))
