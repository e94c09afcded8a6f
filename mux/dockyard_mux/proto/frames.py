"""The yamux v0 frame header: 12 bytes, big-endian (version, type, flags, stream id, length).

``length`` means a payload length (Data), a window delta (Window Update), an opaque value (Ping) or a Go Away
code.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

PROTOCOL_VERSION: Final = 0
HEADER_SIZE: Final = 12
MAX_UINT32: Final = 0xFFFF_FFFF

HEADER: Final = struct.Struct(">BBHII")


class FrameType(enum.IntEnum):
    DATA = 0
    WINDOW_UPDATE = 1
    PING = 2
    GO_AWAY = 3


class Flag(enum.IntFlag):
    NONE = 0
    SYN = 1
    ACK = 2
    FIN = 4
    RST = 8


ALL_FLAGS: Final = 0xF


class GoAwayCode(enum.IntEnum):
    NORMAL = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


@dataclass(frozen=True, slots=True)
class FrameHeader:
    version: int
    type: int
    flags: int
    stream_id: int
    length: int


class FrameFormatError(ValueError):
    """A header that no yamux v0 peer may send (bad version, unknown type or flag bits)."""


def encode_header(frame_type: FrameType, flags: int, stream_id: int, length: int) -> bytes:
    """Encode one header; raises ValueError (struct.error) for out-of-range fields."""
    return HEADER.pack(PROTOCOL_VERSION, frame_type, flags, stream_id, length)


def decode_header(data: bytes | bytearray | memoryview, offset: int = 0) -> FrameHeader:
    """Decode and validate the header at ``offset``. Raises FrameFormatError for anything outside yamux v0."""
    if len(data) - offset < HEADER_SIZE:
        raise FrameFormatError(f"need {HEADER_SIZE} bytes for a header, have {len(data) - offset}")
    version, frame_type, flags, stream_id, length = HEADER.unpack_from(data, offset)
    check_header(version, frame_type, flags)
    return FrameHeader(version, frame_type, flags, stream_id, length)


def check_header(version: int, frame_type: int, flags: int) -> None:
    if version != PROTOCOL_VERSION:
        raise FrameFormatError(f"unsupported yamux version {version}")
    if frame_type > FrameType.GO_AWAY:
        raise FrameFormatError(f"unknown frame type {frame_type}")
    if flags & ~ALL_FLAGS:
        raise FrameFormatError(f"unknown flag bits {flags:#06x}")
