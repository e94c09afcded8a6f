"""The handshake messages and the protocol version check."""

from __future__ import annotations

import json

import pytest

from dockyard_tunnel.errors import HandshakeError
from dockyard_tunnel.handshake import PROTOCOL_VERSION, AgentHello, parse_hello, parse_welcome

HELLO = {
    "protocol_version": PROTOCOL_VERSION,
    "agent_version": "0.1.0",
    "hostname": "vm-1",
    "docker_version": "20.10.24",
    "os": "linux",
    "arch": "x86_64",
}


def test_valid_hello_round_trips() -> None:
    hello = parse_hello(json.dumps(HELLO))
    assert hello == AgentHello(**HELLO)  # type: ignore[arg-type]


def test_version_mismatch_is_refused_with_a_clear_reason() -> None:
    with pytest.raises(HandshakeError, match="the agent speaks tunnel protocol 99, this side supports 1"):
        parse_hello(json.dumps({**HELLO, "protocol_version": 99}))
    with pytest.raises(HandshakeError, match="the server speaks tunnel protocol 2"):
        parse_welcome(json.dumps({"protocol_version": 2, "server_version": "9"}))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "invalid agent hello"),
        (json.dumps({**HELLO, "extra": 1}), "extra"),
        (json.dumps({k: v for k, v in HELLO.items() if k != "arch"}), "arch"),
        (json.dumps({**HELLO, "hostname": ""}), "hostname"),
        (json.dumps({**HELLO, "hostname": "x" * 5000}), "more than 4096"),
    ],
)
def test_invalid_hello(raw: str, message: str) -> None:
    with pytest.raises(HandshakeError, match=message):
        parse_hello(raw)
