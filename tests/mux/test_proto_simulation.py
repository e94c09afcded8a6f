"""Two conforming protocol cores talking through an arbitrarily chunked pipe never disagree.

Hypothesis drives random commands on both sides and random delivery splits; bytes arrive in order and intact on
every stream that was not reset, windows never go negative, the receive accounting holds on both sides (also
with a budget of one window and a stream limit), and no protocol error is ever raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard_mux.proto import (
    Config,
    Connection,
    DataReceived,
    LocalProtocolError,
    StreamEnded,
    StreamOpened,
    StreamReset,
)
from dockyard_mux.testing import check_receive_accounting


@dataclass
class Side:
    conn: Connection
    wire: bytearray = field(default_factory=bytearray)  # bytes in flight to the other side
    sent: dict[int, bytearray] = field(default_factory=dict)
    received: dict[int, bytearray] = field(default_factory=dict)
    unread: dict[int, int] = field(default_factory=dict)
    ended: set[int] = field(default_factory=set)
    reset: set[int] = field(default_factory=set)


OPS = st.lists(
    st.tuples(
        st.booleans(),  # which side acts
        st.sampled_from(["open", "send", "consume", "fin", "rst", "ping", "deliver"]),
        st.integers(0, 10_000),  # selector / size
    ),
    max_size=80,
)


def deliver(src: Side, dst: Side, amount: int) -> None:
    src.wire += src.conn.data_to_send()
    chunk = bytes(src.wire[: amount + 1])
    del src.wire[: amount + 1]
    for event in dst.conn.receive_data(chunk):
        if isinstance(event, DataReceived):
            dst.received.setdefault(event.stream_id, bytearray()).extend(event.data)
            dst.unread[event.stream_id] = dst.unread.get(event.stream_id, 0) + len(event.data)
        elif isinstance(event, StreamEnded):
            dst.ended.add(event.stream_id)
        elif isinstance(event, StreamReset):
            dst.reset.add(event.stream_id)
        elif isinstance(event, StreamOpened):
            dst.conn.mark_accepted(event.stream_id)


CONFIGS = {
    "defaults": Config(max_data_frame=1000),
    # A budget of one window and few streams: re-grants shrink and wait, SYNs past max_streams are reset.
    "tight": Config(max_data_frame=1000, max_session_buffer=256 * 1024, max_streams=5),
}


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
@settings(max_examples=300, deadline=None)
@given(ops=OPS)
def test_two_peers_agree(config_name: str, ops: list[tuple[bool, str, int]]) -> None:
    config = CONFIGS[config_name]
    a = Side(Connection(client=True, config=config))
    b = Side(Connection(client=False, config=config))
    for left, op, n in ops:
        me, other = (a, b) if left else (b, a)
        conn = me.conn
        ids = sorted(conn.stream_ids)
        pick = ids[n % len(ids)] if ids else None
        if op == "open":
            if conn.stream_limit_reached:
                continue  # the asyncio Session would wait for a slot here
            sid = conn.open_stream()
            me.sent[sid] = bytearray()
        elif op == "send" and pick is not None:
            size = min(n, conn.send_window(pick))
            try:
                conn.send_data(pick, bytes([pick % 251]) * size)
            except LocalProtocolError:
                continue  # our own FIN/state forbids it: LocalProtocolError, nothing queued
            me.sent.setdefault(pick, bytearray()).extend(bytes([pick % 251]) * size)
        elif op == "consume" and me.unread:
            sid = sorted(me.unread)[n % len(me.unread)]
            take = min(me.unread[sid], n)
            me.unread[sid] -= take
            conn.acknowledge(sid, take)
        elif op == "fin" and pick is not None:
            try:
                conn.half_close(pick)
            except LocalProtocolError:
                continue
        elif op == "rst" and pick is not None:
            conn.reset(pick)
            me.reset.add(pick)
        elif op == "ping":
            try:
                conn.ping()
            except LocalProtocolError:
                continue
        elif op == "deliver":
            deliver(me, other, n)
        for side in (a, b):
            for sid in side.conn.stream_ids:
                assert side.conn.send_window(sid) >= 0
            check_receive_accounting(side.conn)
    # Flush everything both ways (consuming all data so windows reopen), then compare.
    for _ in range(4):
        deliver(a, b, 10**9)
        deliver(b, a, 10**9)
    for me, other in ((a, b), (b, a)):
        for sid, data in me.sent.items():
            if sid in me.reset or sid in other.reset:
                assert other.received.get(sid, b"") == bytes(data[: len(other.received.get(sid, b""))])
            else:
                assert bytes(other.received.get(sid, b"")) == bytes(data)
