"""Frozen, validated configuration for the tunnel server and the agent.

Every default is documented next to its field with the reason for it. Validation happens in __post_init__ so a
bad value fails where it is built, with a message naming the setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from dockyard_tunnel.errors import ConfigError
from dockyard_tunnel.tls import parse_ca_cert_hash

# Host names double as file names (the per-host Docker bridge socket) and as log fields, so they are
# restricted to lowercase RFC 1123 DNS labels joined by dots, at most 63 characters: short enough for a unix
# socket path.
_HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")

#: The HTTP path of the WebSocket endpoint the agent dials.
CONNECT_PATH = "/v1/connect"
#: The HTTP path that serves the server's CA certificate (public data) so an agent can check it against a pin.
CA_PATH = "/v1/ca.crt"
#: The request header carrying the host name (never the URL: URLs end up in proxy and access logs).
HOST_HEADER = "Dockyard-Host"


def validate_host_name(name: str) -> str:
    """Return `name` if it is a valid Dockyard host name, else raise ConfigError saying what is accepted."""
    if not _HOST_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(
            f"invalid host name {name!r}: use 1-63 lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return name


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSocketConfig:
    """Settings of the WebSocket that carries the mux, the same on both ends."""

    #: Largest WebSocket message accepted and sent. The mux is a byte stream, so bigger writes are split;
    #: 1 MiB bounds the memory one message can pin while keeping per-message overhead negligible.
    max_message_size: int = 1024 * 1024
    #: WebSocket ping interval in seconds; aiohttp closes the socket when a pong is missing for half of it.
    #: This is the fast dead-peer detector below the mux keepalive (which also measures RTT).
    heartbeat: float = 20.0

    def __post_init__(self) -> None:
        if self.max_message_size < 16 * 1024:
            raise ConfigError(f"max_message_size must be >= 16384 bytes, got {self.max_message_size}")
        _positive("heartbeat", self.heartbeat)


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitConfig:
    """Token bucket of failed authentication attempts per source address."""

    #: Failures a source may make in a burst before it gets 429: enough for an operator fixing a typo.
    burst: int = 10
    #: Failures refilled per second (one every 6 s): slows a token guesser to 600 tries an hour per address.
    refill_per_second: float = 1 / 6
    #: Most source addresses tracked at once; the least recently seen are forgotten first, bounding memory.
    max_sources: int = 10_000

    def __post_init__(self) -> None:
        if self.burst < 1:
            raise ConfigError(f"rate limit burst must be >= 1, got {self.burst}")
        _positive("refill_per_second", self.refill_per_second)
        if self.max_sources < 1:
            raise ConfigError(f"max_sources must be >= 1, got {self.max_sources}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """The tunnel server: where it listens, how it secures connections, and its limits."""

    #: Listen address. Loopback by default so that exposing the server is a deliberate choice.
    host: str = "127.0.0.1"
    #: Listen port; 0 picks a free port (useful in tests; read it back from TunnelServer.port).
    port: int = 8443
    #: Serve plain ws:// instead of wss:// (logs a warning). Only for tests and trusted networks.
    insecure: bool = False
    #: Directory holding the self-signed CA and serving certificate (created on first start, keys 0600).
    #: Ignored when cert_file and key_file are given.
    tls_dir: Path | None = None
    #: A serving certificate chain (PEM) and its key from your own CA; both or neither.
    cert_file: Path | None = None
    key_file: Path | None = None
    #: Names and IP addresses put into a self-signed serving certificate's subjectAltName.
    server_names: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")

    DEFAULT_SERVER_NAMES: ClassVar[tuple[str, ...]] = ("localhost", "127.0.0.1", "::1")
    #: Seconds the agent has to send its hello after the WebSocket upgrade.
    handshake_timeout: float = 10.0
    websocket: WebSocketConfig = field(default_factory=WebSocketConfig)
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {self.port}")
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("cert_file and key_file must be given together")
        if not self.insecure and self.cert_file is None and self.tls_dir is None:
            raise ConfigError("TLS needs tls_dir (self-signed) or cert_file and key_file; or set insecure")
        if not self.server_names:
            raise ConfigError("server_names must not be empty")
        _positive("handshake_timeout", self.handshake_timeout)


@dataclass(frozen=True, slots=True, kw_only=True)
class BackoffConfig:
    """Reconnect delays: exponential with full jitter (a random delay in [0, min(cap, initial * 2**n))]."""

    #: Upper bound of the first retry delay: a restarted server is found again within half a second.
    initial: float = 0.5
    #: Upper bound of any delay, so an agent notices a recovered server within 30 s.
    cap: float = 30.0
    #: Growth factor of the bound per consecutive failure.
    multiplier: float = 2.0
    #: A connection that lived this long counts as stable and resets the delay to `initial`.
    stable_after: float = 30.0

    def __post_init__(self) -> None:
        _positive("backoff initial", self.initial)
        _positive("backoff stable_after", self.stable_after)
        if self.cap < self.initial:
            raise ConfigError(f"backoff cap ({self.cap}) must be >= initial ({self.initial})")
        if self.multiplier < 1:
            raise ConfigError(f"backoff multiplier must be >= 1, got {self.multiplier}")


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """The agent: which server it dials, who it is, how it trusts the server, and where Docker is."""

    #: wss://host:port (the path /v1/connect is added); ws:// only with insecure.
    server_url: str
    #: The name this Docker host is known by in Dockyard (a DockerHost resource name).
    host_name: str
    #: The bearer token. Never printed: excluded from repr.
    token: str = field(repr=False)
    #: Trust the server through this CA bundle (PEM) ...
    ca_file: Path | None = None
    #: ... or through a pinned CA public key hash `sha256:<hex>`, as in
    #: `kubeadm join --discovery-token-ca-cert-hash`.
    ca_cert_hash: str | None = None
    #: The local Docker daemon's socket.
    docker_socket: str = "unix:///var/run/docker.sock"
    #: Allow ws:// and skip server verification (logs a warning).
    insecure: bool = False
    #: Seconds to wait for the TCP+TLS+WebSocket connect and the server's welcome.
    connect_timeout: float = 15.0
    #: On SIGTERM, seconds in-flight streams get to finish before they are reset. Ordinary API calls take
    #: well under a second; what is still open after 10 s is a stream (events, logs) that would never end.
    drain_timeout: float = 10.0
    websocket: WebSocketConfig = field(default_factory=WebSocketConfig)
    backoff: BackoffConfig = field(default_factory=BackoffConfig)

    def __post_init__(self) -> None:
        url = urlsplit(self.server_url)
        if url.scheme not in ("wss", "ws") or not url.hostname:
            raise ConfigError(f"server URL must look like wss://HOST[:PORT], got {self.server_url!r}")
        if url.username or url.password or url.query:
            raise ConfigError("server URL must not carry credentials or a query (use the token file)")
        if url.scheme == "ws" and not self.insecure:
            raise ConfigError("ws:// is plain text; use wss:// or pass --insecure explicitly")
        validate_host_name(self.host_name)
        if not self.token or any(c.isspace() for c in self.token):
            raise ConfigError("the token is empty or contains whitespace")
        if self.ca_file is not None and self.ca_cert_hash is not None:
            raise ConfigError("give either a CA file or a CA cert hash, not both")
        if url.scheme == "wss" and not self.insecure and self.ca_file is None and self.ca_cert_hash is None:
            raise ConfigError("wss:// needs --ca-cert-hash sha256:<hex> or --ca-file (or --insecure)")
        if self.ca_cert_hash is not None:
            parse_ca_cert_hash(self.ca_cert_hash)
        if not self.docker_socket.startswith("unix://"):
            raise ConfigError(f"docker socket must be unix:///path, got {self.docker_socket!r}")
        _positive("connect_timeout", self.connect_timeout)
        if self.drain_timeout < 0:
            raise ConfigError(f"drain_timeout must be >= 0, got {self.drain_timeout}")

    @property
    def connect_url(self) -> str:
        """The WebSocket URL of the connect endpoint (no secrets in it)."""
        return self.server_url.rstrip("/") + CONNECT_PATH

    @property
    def ca_url(self) -> str:
        """The https URL of the server's CA certificate, used to check a pinned hash."""
        return "https" + self.server_url.rstrip("/")[len("wss") :] + CA_PATH

    @property
    def docker_socket_path(self) -> str:
        return self.docker_socket[len("unix://") :]
