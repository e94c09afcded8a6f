"""The public surface of dockyard_mux is exactly what /tmp/mux-api.md promised (plus listed additions)."""

from __future__ import annotations

import inspect

import dockyard_mux
from dockyard_mux import (
    Config,
    KeepaliveTimeoutError,
    LocalProtocolError,
    MuxError,
    ProtocolError,
    RemoteProtocolError,
    Session,
    SessionClosedError,
    Stream,
    StreamClosedError,
    StreamResetError,
)

EXPECTED = {
    "Config",
    "KeepaliveTimeoutError",
    "LocalProtocolError",
    "MuxError",
    "NonBlockingTransport",
    "PushTransport",
    "ProtocolError",
    "RemoteProtocolError",
    "Session",
    "SessionClosedError",
    "SocketTransport",
    "Stream",
    "StreamClosedError",
    "StreamLimitError",
    "StreamResetError",
    "StreamTransport",
    "Transport",
    "connect_tcp_session",
    "connect_unix_session",
}


def test_all_is_exactly_the_public_api() -> None:
    assert set(dockyard_mux.__all__) == EXPECTED
    assert len(dockyard_mux.__all__) == len(EXPECTED)
    for name in EXPECTED:
        assert getattr(dockyard_mux, name) is not None


def test_error_hierarchy() -> None:
    for error in (ProtocolError, SessionClosedError, StreamResetError, StreamClosedError):
        assert issubclass(error, MuxError)
    assert issubclass(LocalProtocolError, ProtocolError)
    assert issubclass(RemoteProtocolError, ProtocolError)
    assert issubclass(KeepaliveTimeoutError, SessionClosedError)
    assert SessionClosedError("why").reason == "why"
    assert StreamResetError(3, by_peer=True).by_peer is True
    assert RemoteProtocolError("x").goaway_code == 1


def test_session_and_stream_signatures() -> None:
    params = inspect.signature(Session.__init__).parameters
    assert list(params) == ["self", "transport", "client", "config"]
    assert params["client"].kind is inspect.Parameter.KEYWORD_ONLY
    for name in ("open_stream", "accept_stream", "ping", "go_away", "close", "wait_closed", "start"):
        assert inspect.iscoroutinefunction(getattr(Session, name)), name
    for name in ("closed", "close_reason", "rtt", "num_streams", "bytes_sent", "bytes_received"):
        assert isinstance(getattr(Session, name), property), name
    for name in ("read", "read_exactly", "write", "send_eof", "aclose"):
        assert inspect.iscoroutinefunction(getattr(Stream, name)), name
    assert not inspect.iscoroutinefunction(Stream.reset)
    assert inspect.signature(Stream.read).parameters["max_bytes"].default == 65536
    assert isinstance(Stream.at_eof, property)


def test_config_defaults_match_the_contract() -> None:
    config = Config()
    assert config.accept_backlog == 256
    assert config.enable_keepalive is True
    assert config.keepalive_interval == 30.0
    assert config.connection_write_timeout == 10.0
    assert config.initial_stream_window == 256 * 1024
    assert config.max_stream_window == 16 * 1024 * 1024
    assert config.stream_open_timeout == 75.0
    assert config.stream_close_timeout == 300.0
    assert config.max_session_buffer >= config.initial_stream_window
    assert config.max_streams == 4096  # 1000+ concurrent connections per agent session, with room to spare
    assert config.min_stream_window == 16 * 1024
