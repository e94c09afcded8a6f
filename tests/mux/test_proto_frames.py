"""The 12-byte big-endian yamux v0 header codec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard_mux.proto import FrameHeader, FrameType, decode_header, encode_header
from dockyard_mux.proto.frames import FrameFormatError, GoAwayCode


def test_known_encoding() -> None:
    # Version 0, type WindowUpdate, flags SYN, stream 1, delta 0: what hashicorp/yamux sends to open a stream.
    assert encode_header(FrameType.WINDOW_UPDATE, 1, 1, 0) == bytes.fromhex("00 01 0001 00000001 00000000")
    assert encode_header(FrameType.GO_AWAY, 0, 0, GoAwayCode.PROTOCOL_ERROR) == bytes.fromhex(
        "00 03 0000 00000000 00000001"
    )


@given(
    st.sampled_from(list(FrameType)),
    st.integers(0, 15),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)
def test_round_trip(frame_type: FrameType, flags: int, stream_id: int, length: int) -> None:
    data = encode_header(frame_type, flags, stream_id, length)
    assert len(data) == 12
    assert decode_header(data) == FrameHeader(0, frame_type, flags, stream_id, length)


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("01 00 0000 00000001 00000000"),  # version 1
        bytes.fromhex("00 04 0000 00000001 00000000"),  # type 4
        bytes.fromhex("00 00 0010 00000001 00000000"),  # flag bit 0x10
        b"\x00" * 11,  # short
    ],
)
def test_invalid_headers(data: bytes) -> None:
    with pytest.raises(FrameFormatError):
        decode_header(data)
