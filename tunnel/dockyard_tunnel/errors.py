"""Errors raised by dockyard_tunnel. Every error the tunnel raises derives from TunnelError.

Foreign exceptions (aiohttp, ssl, OSError) are translated at the module that meets them, with
`raise ... from e`, so callers only need to know this vocabulary.
"""

from __future__ import annotations


class TunnelError(Exception):
    """Base class of every tunnel error."""


class ConfigError(TunnelError, ValueError):
    """A configuration value is invalid; the message names the setting and what is accepted."""


class TLSSetupError(TunnelError):
    """Certificates could not be created, loaded or verified (bad file, wrong CA pin, unreadable key)."""


class CAPinMismatchError(TLSSetupError):
    """The CA presented by the server does not match the pinned `sha256:<hex>` hash."""


class StreamHeaderError(TunnelError):
    """A stream header is malformed, too long or of an unknown kind."""


class HandshakeError(TunnelError):
    """The agent's hello or the server's welcome is invalid or incompatible (say, a protocol version)."""


class ConnectRefusedError(TunnelError):
    """The tunnel server refused the agent's connection (bad token, rate limited, version, TLS mismatch)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HostNotConnectedError(TunnelError):
    """No agent is connected for this host name right now."""

    def __init__(self, host: str) -> None:
        super().__init__(f"Docker host {host!r} is not connected to the tunnel server")
        self.host = host


class TransportClosedError(TunnelError):
    """The WebSocket under a mux session failed or carried something other than binary mux data."""


class LocalDockerError(TunnelError):
    """The agent could not get an answer from its local Docker daemon."""


class AuthenticatorNotReadyError(TunnelError):
    """The authenticator cannot decide yet (its host tokens are still being loaded, e.g. right after a failover).

    The server answers 503 with Retry-After and does not count the attempt as a failure: a whole fleet reconnecting
    to a fresh operator must not be rate-limited for the operator's own start-up.
    """


class DialError(TunnelError):
    """A `tcp` stream did not connect: the host has no session, the agent refused the address, or its dial failed
    or took too long. Nothing was sent to the target, so the caller may try another."""
