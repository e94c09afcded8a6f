"""The session receive budget (max_session_buffer) in the protocol core: lazy charging of the initial credit,
shrinking re-grants over the budget down to the floor (min_stream_window), withheld grants handed out round
robin as reads free room, and no stream left without credit while its application reads."""

from __future__ import annotations

from hypothesis import event, given, settings
from hypothesis import strategies as st

from dockyard_mux.proto import Config, Connection, StreamEnded, StreamState
from dockyard_mux.proto.frames import HEADER_SIZE, Flag, FrameType, decode_header
from dockyard_mux.testing import check_receive_accounting, exchange, frame

WINDOW = 256 * 1024
FLOOR = 16 * 1024
KIB = 1024
WU = FrameType.WINDOW_UPDATE
TIGHT = Config(max_session_buffer=WINDOW)  # the smallest budget Config allows: one initial window


def open_streams(n: int, config: Config | None = None) -> tuple[Connection, Connection, list[int]]:
    """A client (the sender) and a server (the receiver, with ``config``) with ``n`` established streams."""
    client = Connection(client=True)
    server = Connection(client=False, config=config)
    ids = [client.open_stream() for _ in range(n)]
    exchange(client, server)
    return client, server, ids


def send(client: Connection, server: Connection, stream_id: int, n: int) -> None:
    client.send_data(stream_id, b"x" * n)
    server.receive_data(client.data_to_send())
    check_receive_accounting(server)


def read(server: Connection, stream_id: int, n: int) -> None:
    server.acknowledge(stream_id, n)
    check_receive_accounting(server)


def grants(server: Connection, client: Connection) -> list[tuple[int, int]]:
    """The window updates the server queued, as (stream id, delta), after delivering them to the client."""
    wire = server.data_to_send()
    client.receive_data(wire)
    found = []
    for offset in range(0, len(wire), HEADER_SIZE):
        header = decode_header(wire, offset)
        if header.type == WU and header.flags == 0:
            found.append((header.stream_id, header.length))
    return found


def held(server: Connection, stream_id: int) -> int:
    """Bytes at risk on one stream: unread plus the peer's credit."""
    recv = server.receive_window(stream_id)
    assert recv is not None
    return recv.available + recv.buffered


def test_the_initial_credit_is_charged_only_as_the_peer_uses_it() -> None:
    client, server, (s1, _s2, _s3) = open_streams(3)
    assert server.committed_window == 0  # idle streams cost the budget nothing...
    assert server.bytes_at_risk == 3 * WINDOW  # ...though the peer may send their initial windows at any time
    send(client, server, s1, 1000)
    assert server.committed_window == 1000  # held, so charged
    read(server, s1, 1000)
    assert server.committed_window == 0  # read, not re-granted yet (less than half a window)
    assert grants(server, client) == []
    send(client, server, s1, WINDOW - 1000)  # the peer used up its initial credit
    assert server.committed_window == WINDOW - 1000
    read(server, s1, WINDOW - 1000)
    assert grants(server, client) == [(s1, WINDOW)]  # under the budget: a normal full re-grant
    assert server.committed_window == WINDOW  # granted credit counts from now on
    assert server.bytes_at_risk == 3 * WINDOW


def test_over_the_budget_a_due_regrant_shrinks_to_the_floor() -> None:
    client, server, (hog, reader) = open_streams(2, TIGHT)
    send(client, server, hog, WINDOW)  # never read: holds the whole budget
    send(client, server, reader, WINDOW)  # the initial credit cannot be refused: over the budget now
    assert server.committed_window == 2 * WINDOW
    read(server, reader, WINDOW)
    # Due, but a full re-grant would break the budget: the window shrinks to the floor, the rest is withheld.
    assert grants(server, client) == [(reader, FLOOR)]
    assert list(server.withheld_streams) == [reader]
    assert held(server, reader) == FLOOR
    assert server.committed_window == WINDOW + FLOOR
    send(client, server, reader, FLOOR)
    read(server, reader, 7 * KIB)
    assert grants(server, client) == []  # 9 KiB still held: more than half the floor
    read(server, reader, 1 * KIB)
    assert grants(server, client) == [(reader, 8 * KIB)]  # topped back up to the floor, not byte by byte
    assert held(server, reader) == FLOOR


def test_withheld_grants_are_released_round_robin_as_reads_free_room() -> None:
    client, server, (hog, b, c) = open_streams(3, TIGHT)
    send(client, server, hog, WINDOW)
    for stream_id in (b, c):
        send(client, server, stream_id, WINDOW)
        read(server, stream_id, WINDOW)
    assert grants(server, client) == [(b, FLOOR), (c, FLOOR)]
    assert list(server.withheld_streams) == [b, c]  # in the order they became due
    assert server.committed_window == WINDOW + 2 * FLOOR
    # The hog's application reads 100 KiB (not yet a re-grant of its own): that room goes to the first in line,
    # which still wants more and so goes to the back.
    read(server, hog, 100 * KIB)
    assert grants(server, client) == [(b, 68 * KIB)]
    assert list(server.withheld_streams) == [c, b]
    # Now the hog's own re-grant is due (half its window read). It still holds 56 KiB, so no floor grant: it
    # queues behind the others (first come, first served), and the 100 KiB of room go to the next in line.
    read(server, hog, 100 * KIB)
    assert grants(server, client) == [(c, 100 * KIB)]
    assert list(server.withheld_streams) == [b, hog, c]
    # Everything read: the hog is topped up to the floor, and the remaining room goes to the head of the line.
    read(server, hog, 56 * KIB)
    assert grants(server, client) == [(hog, FLOOR), (b, 40 * KIB)]
    assert list(server.withheld_streams) == [hog, c, b]
    assert server.committed_window == WINDOW


def test_a_reader_keeps_moving_while_a_stream_that_does_not_read_holds_the_budget() -> None:
    """No deadlock: the floor is granted whatever the budget, so the reader completes; and once the hog reads,
    the reader's withheld credit comes back."""
    client, server, (hog, reader) = open_streams(2, TIGHT)
    send(client, server, hog, WINDOW)
    total = 4 * 1024 * 1024
    sent = rounds = 0
    while sent < total:
        rounds += 1
        assert rounds < 2 * total // (FLOOR // 2)
        n = min(client.send_window(reader), total - sent)
        assert n > 0, "the reader was left without credit"
        send(client, server, reader, n)
        sent += n
        read(server, reader, n)
        for stream_id, delta in grants(server, client):
            assert stream_id == reader
            assert delta >= FLOOR // 2
        assert server.committed_window <= WINDOW + FLOOR
    assert list(server.withheld_streams) == [reader]
    # The hog reads: the reader, first in line, gets an equal share of the freed room (the hog, now due
    # itself, gets the floor and the rest).
    read(server, hog, WINDOW)
    assert grants(server, client) == [(hog, FLOOR), (reader, WINDOW // 2), (hog, WINDOW // 2 - 2 * FLOOR)]
    assert list(server.withheld_streams) == [hog]
    assert client.send_window(reader) == FLOOR + WINDOW // 2
    assert server.committed_window == WINDOW


def test_the_peers_fin_ends_the_charge_for_its_credit() -> None:
    client, server, (hog, reader, done) = open_streams(3, TIGHT)
    send(client, server, done, WINDOW)
    read(server, done, WINDOW)
    assert grants(server, client) == [(done, WINDOW)]
    assert server.committed_window == WINDOW  # the re-granted credit is at risk...
    assert server.receive_data(frame(WU, Flag.FIN, done, 0)) == [StreamEnded(done)]
    assert server.committed_window == 0  # ...until the peer says it will send no more
    check_receive_accounting(server)
    send(client, server, hog, WINDOW)
    send(client, server, reader, WINDOW)
    read(server, reader, WINDOW)
    assert list(server.withheld_streams) == [reader]
    client.half_close(reader)
    server.receive_data(client.data_to_send())
    assert list(server.withheld_streams) == []  # a stream that ended needs no grant
    assert server.committed_window == WINDOW  # the hog's unread bytes only
    check_receive_accounting(server)


def test_growth_waits_for_the_budget() -> None:
    """A stream whose window is the bottleneck grows only with room under the budget: not into what another
    stream holds, and further once that is freed."""
    config = Config(max_session_buffer=2 * WINDOW, max_stream_window=4 * WINDOW)
    client, server, (hog, fast) = open_streams(2, config)
    server.rtt = 1.0
    send(client, server, hog, WINDOW // 2)
    now = 0.0
    for _ in range(4):
        n = client.send_window(fast)
        send(client, server, fast, n)
        server.acknowledge(fast, n, now=now)
        check_receive_accounting(server)
        grants(server, client)
        now += 0.001
    recv = server.receive_window(fast)
    assert recv is not None
    assert recv.size == WINDOW + WINDOW // 2  # grew by the room the hog left, and no further
    server.reset(hog)
    for _ in range(4):
        n = client.send_window(fast)
        send(client, server, fast, n)
        server.acknowledge(fast, n, now=now)
        check_receive_accounting(server)
        grants(server, client)
        now += 0.001
    assert recv.size > WINDOW + WINDOW // 2


OPS = st.lists(
    st.tuples(
        st.sampled_from(["send", "send", "read", "read", "reset", "fin", "open"]),
        st.integers(0, 7),  # which stream
        st.integers(1, 600_000),  # how many bytes
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(OPS, st.integers(0, 3))
def test_accounting_holds_and_every_reader_finishes(ops: list[tuple[str, int, int]], hogs: int) -> None:
    """Random sends, reads, resets and FINs on a few streams under a small budget: the accounting invariants
    hold after every step; then ``hogs`` streams stop reading for good and every other open stream still
    moves 1 MiB in a bounded number of rounds (no starvation, no deadlock)."""
    client, server, ids = open_streams(4, Config(max_session_buffer=WINDOW, max_stream_window=4 * WINDOW))
    server.rtt = 0.01
    now = 0.0
    for op, pick, amount in ops:
        now += 0.001
        live = sorted(server.stream_ids)
        stream_id = live[pick % len(live)] if live else None
        if op == "open" or stream_id is None:
            ids.append(client.open_stream())
            exchange(client, server)
        elif op == "send":
            n = min(amount, client.send_window(stream_id))
            if n and client.stream_state(stream_id) in (StreamState.ESTABLISHED, StreamState.REMOTE_CLOSED):
                send(client, server, stream_id, n)
        elif op == "read":
            server.acknowledge(stream_id, amount, now=now)
        elif op == "reset":
            server.reset(stream_id)
        elif op == "fin" and client.stream_state(stream_id) in (StreamState.ESTABLISHED, StreamState.REMOTE_CLOSED):
            client.half_close(stream_id)
            server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
        check_receive_accounting(server)
    # Streams the client may still send on (neither reset nor half-closed by it).
    sendable = [
        s
        for s in sorted(server.stream_ids)
        if client.stream_state(s) in (StreamState.ESTABLISHED, StreamState.REMOTE_CLOSED)
    ]
    stuck, readers = sendable[:hogs], sendable[hogs:]
    left = dict.fromkeys(readers, 1024 * 1024)
    for stream_id in readers:  # unread bytes from the random phase are read first
        recv = server.receive_window(stream_id)
        assert recv is not None
        server.acknowledge(stream_id, recv.buffered, now=now)
    client.receive_data(server.data_to_send())
    scarce = False
    for _ in range(2 * 1024 * 1024 // (FLOOR // 2)):
        if not any(left.values()):
            break
        scarce = scarce or bool(server.withheld_streams)
        for stream_id in readers:
            n = min(left[stream_id], client.send_window(stream_id))
            if n:
                send(client, server, stream_id, n)
                left[stream_id] -= n
            server.acknowledge(stream_id, n, now=now)
        for stream_id in stuck:  # the hogs' peers send what they may; their applications read nothing
            n = client.send_window(stream_id)
            if n:
                send(client, server, stream_id, n)
        client.receive_data(server.data_to_send())
        check_receive_accounting(server)
        now += 0.001
    assert not any(left.values()), f"readers starved: {left}"
    event(f"readers: {len(readers)}, hogs: {len(stuck)}, over the budget while draining: {scarce}")
