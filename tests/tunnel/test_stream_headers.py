"""The typed header at the start of every server-opened stream."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard_tunnel.errors import StreamHeaderError
from dockyard_tunnel.stream_headers import (
    DockerTarget,
    ImportsTarget,
    ImportTarget,
    StatsTarget,
    TcpTarget,
    encode_header,
    parse_header,
    read_header,
)


class BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def read_exactly(self, n: int) -> bytes:
        if len(self.data) < n:
            raise asyncio.IncompleteReadError(self.data, n)
        out, self.data = self.data[:n], self.data[n:]
        return out


async def test_read_header_leaves_the_payload() -> None:
    reader = BytesReader(encode_header(DockerTarget()) + b"GET /_ping HTTP/1.1\r\n")
    assert await read_header(reader) == DockerTarget()
    assert reader.data == b"GET /_ping HTTP/1.1\r\n"


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("tcp 10.1.2.3:8080", TcpTarget(ip=ipaddress.ip_address("10.1.2.3"), port=8080)),
        ("tcp [fd00::1]:443", TcpTarget(ip=ipaddress.ip_address("fd00::1"), port=443)),
        ("docker", DockerTarget()),
        ("imports", ImportsTarget()),
        ("stats", StatsTarget()),
        (
            "tcp 10.1.2.3:80 0123456789ab",
            TcpTarget(ip=ipaddress.ip_address("10.1.2.3"), port=80, container="0123456789ab"),
        ),
        ("import shop/pg:5432", ImportTarget(namespace="shop", service="pg", port=5432)),
    ],
)
def test_valid_headers(text: str, target: object) -> None:
    assert parse_header(text.encode()) == target


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"dockers", "unknown stream kind"),
        (b"docker extra", "takes no argument"),
        (b"tcp example.com:80", "must be an IP address"),
        (b"tcp 10.0.0.1", "HOST:PORT"),
        (b"tcp 10.0.0.1:0", "1..65535"),
        (b"tcp 10.0.0.1:70000", "1..65535"),
        (b"tcp 10.0.0.1:-1", "must be a number"),
        (b"tcp fd00::1:80", "must be bracketed"),
        (b"tcp [10.0.0.1]:80", "only for IPv6"),
        (b"tcp 10.0.0.1:80\n", "control characters"),
        (b"\xff", "not ASCII"),
        (b"imports now", "takes no argument"),
        (b"stats all", "takes no argument"),
        (b"tcp 10.0.0.1:80 not-an-id", "Docker container id"),
        (b"import pg:5432", "NAMESPACE/SERVICE:PORT"),
        (b"import shop/pg", "NAMESPACE/SERVICE:PORT"),
        (b"import Shop/pg:5432", "must be a DNS label"),
        (b"import shop/pg:0", "1..65535"),
    ],
)
def test_invalid_headers_get_clear_errors(body: bytes, message: str) -> None:
    with pytest.raises(StreamHeaderError, match=message):
        parse_header(body)


async def test_truncated_and_empty_headers() -> None:
    with pytest.raises(StreamHeaderError, match="ended inside its header"):
        await read_header(BytesReader(b"\x06dock"))
    with pytest.raises(StreamHeaderError, match="empty"):
        await read_header(BytesReader(b"\x00"))
    with pytest.raises(StreamHeaderError, match="ended inside its header"):
        await read_header(BytesReader(b""))


@given(
    ip=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)),
    port=st.integers(min_value=1, max_value=65535),
)
def test_tcp_headers_round_trip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> None:
    target = TcpTarget(ip=ip, port=port)
    encoded = encode_header(target)
    assert encoded[0] == len(encoded) - 1 <= 255
    assert parse_header(encoded[1:]) == target


@given(st.binary(max_size=300))
def test_parser_never_fails_with_anything_but_stream_header_error(body: bytes) -> None:
    with contextlib.suppress(StreamHeaderError):
        parse_header(body)
