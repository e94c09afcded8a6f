"""Fuzzing the decoder: random and mutated byte streams into Connection.receive_data.

Nothing but RemoteProtocolError may escape, and memory stays bounded: the reassembly buffer never exceeds one
maximal frame, queued replies stay under the control-frame limit, at most max_streams streams exist, and the
receive accounting holds (credit beyond initial windows within max_session_buffer, so everything at risk within
max_session_buffer + streams x 256 KiB; see check_receive_accounting).

The normal run generates DEFAULT_CASES cases (>= 10**5, a few seconds); set DOCKYARD_FUZZ_CASES for a longer run.
"""

from __future__ import annotations

import os
import random

import pytest

from dockyard_mux.proto import Config, Connection, RemoteProtocolError
from dockyard_mux.proto.frames import Flag, FrameType
from dockyard_mux.testing import check_receive_accounting, frame

DEFAULT_CASES = 100_000
CONFIG = Config(
    max_stream_window=512 * 1024,
    max_session_buffer=1024 * 1024,
    accept_backlog=4,
    max_streams=6,
    max_queued_control_frames=32,
)
MAX_INPUT = 12 + CONFIG.max_stream_window
MAX_OUTPUT = 12 * (CONFIG.max_queued_control_frames + 8 * 64)  # replies + ACK/window updates per stream


def corpus() -> list[bytes]:
    """Valid conversations to mutate: opens, data, window updates, closes, resets, pings, go away."""
    seeds = [
        frame(FrameType.WINDOW_UPDATE, Flag.SYN, 1, 0) + frame(FrameType.DATA, 0, 1, 5, b"hello"),
        frame(FrameType.DATA, Flag.SYN, 3, 3, b"abc") + frame(FrameType.WINDOW_UPDATE, Flag.FIN, 3, 0),
        frame(FrameType.WINDOW_UPDATE, Flag.SYN, 5, 1000) + frame(FrameType.WINDOW_UPDATE, Flag.RST, 5, 0),
        frame(FrameType.PING, Flag.SYN, 0, 7) + frame(FrameType.PING, Flag.ACK, 0, 0),
        frame(FrameType.GO_AWAY, 0, 0, 0),
        frame(FrameType.WINDOW_UPDATE, Flag.SYN, 7, 0) + frame(FrameType.DATA, Flag.FIN, 7, 2, b"zz"),
        frame(FrameType.WINDOW_UPDATE, Flag.ACK, 2, 0) + frame(FrameType.WINDOW_UPDATE, 0, 2, 65536),
    ]
    return [b"".join(seeds[i:] + seeds[:i]) for i in range(len(seeds))] + seeds


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if not buf:
            buf += rng.randbytes(rng.randint(1, 24))
        elif choice < 0.4:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        elif choice < 0.55:
            buf[rng.randrange(len(buf))] = rng.choice([0, 1, 2, 3, 4, 0x0F, 0x7F, 0x80, 0xFF])
        elif choice < 0.7:
            pos = rng.randrange(len(buf) + 1)
            buf[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif choice < 0.8:
            pos = rng.randrange(len(buf))
            del buf[pos : pos + rng.randint(1, 16)]
        elif choice < 0.9:
            del buf[rng.randrange(len(buf)) :]
        else:
            other = bytes(buf)
            buf += other[rng.randrange(len(other)) :]
    return bytes(buf)


def feed(rng: random.Random, data: bytes, *, client: bool) -> None:
    conn = Connection(client=client, config=CONFIG)
    pos = 0
    try:
        while pos < len(data):
            step = rng.choice((1, 5, 12, 13, 64, len(data)))
            conn.receive_data(data[pos : pos + step])
            pos += step
            assert conn.buffered_input <= MAX_INPUT
            assert conn.pending_bytes <= MAX_OUTPUT
            check_receive_accounting(conn)
            if rng.random() < 0.05:
                conn.data_to_send()
    except RemoteProtocolError:
        # The defined outcome: a Go Away is queued and the connection is finished.
        assert conn.terminated
        assert conn.buffered_input == 0


def run_cases(cases: int, seed: int) -> None:
    rng = random.Random(seed)
    seeds = corpus()
    for i in range(cases):
        kind = i % 4
        if kind == 0:
            data = rng.randbytes(rng.randint(0, 64))
        elif kind == 1:
            # Random headers with plausible fields (version 0, known types) so deeper paths are reached.
            data = b"".join(
                frame(
                    rng.randrange(4),
                    rng.randrange(16),
                    rng.choice((0, 1, 2, 3, 4, 5, rng.randrange(2**32))),
                    rng.choice((0, 1, 5, 12, 256 * 1024, rng.randrange(2**32))),
                )
                + rng.randbytes(rng.randint(0, 8))
                for _ in range(rng.randint(1, 6))
            )
        else:
            data = mutate(rng, rng.choice(seeds))
        feed(rng, data, client=bool(i & 1))


def test_fuzz_decoder() -> None:
    cases = int(os.environ.get("DOCKYARD_FUZZ_CASES", DEFAULT_CASES))
    assert cases >= 1
    run_cases(cases, seed=int(os.environ.get("DOCKYARD_FUZZ_SEED", "20261126")))


def test_fuzz_large_frames_stay_bounded() -> None:
    """Frames claiming big payloads are buffered up to one maximal frame and no further."""
    conn = Connection(client=False, config=CONFIG)
    conn.receive_data(frame(FrameType.DATA, Flag.SYN, 1, 256 * 1024))
    for _ in range(64):
        conn.receive_data(b"\x00" * 4096)
        assert conn.buffered_input <= MAX_INPUT
    assert conn.buffered_input == 0  # the 256 KiB frame completed and was delivered
    with pytest.raises(RemoteProtocolError, match="exceeds any window"):
        conn.receive_data(frame(FrameType.DATA, 0, 1, CONFIG.max_stream_window + 1))
    assert conn.buffered_input == 0
