"""The tunnel handshake, exchanged as one JSON text message each way right after the WebSocket upgrade.

The agent speaks first (its hello); the server answers with a welcome, or closes the WebSocket with
REFUSED_CLOSE_CODE and a one-line reason the agent logs verbatim. After that, only binary mux data flows.
"""

from __future__ import annotations

import importlib.metadata
from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dockyard_tunnel.errors import HandshakeError

#: The tunnel protocol this release speaks: the handshake, stream headers and the mux on the WebSocket.
PROTOCOL_VERSION = 1
#: Versions this release accepts from a peer. Widened when a release must talk to the previous one.
SUPPORTED_PROTOCOL_VERSIONS = frozenset({1})
#: WebSocket close code for a refused handshake (4000-4999 is the application range of RFC 6455).
REFUSED_CLOSE_CODE = 4400
#: A hello or welcome larger than this is refused unparsed.
MAX_HANDSHAKE_BYTES = 4096

_M = TypeVar("_M", bound=BaseModel)
_Text = Annotated[str, Field(min_length=1, max_length=128)]


class AgentHello(BaseModel):
    """What the agent tells the server about itself; shown in DockerHost status by the operator."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol_version: int
    agent_version: _Text
    hostname: _Text
    docker_version: _Text
    os: _Text
    arch: _Text


class ServerWelcome(BaseModel):
    """The server's answer to an accepted hello."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol_version: int
    server_version: _Text


def release_version() -> str:
    """The installed dockyard distribution's version, or a marker when running from a source tree."""
    try:
        return importlib.metadata.version("dockyard")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _parse(model: type[_M], raw: str | bytes, *, what: str) -> _M:
    if len(raw) > MAX_HANDSHAKE_BYTES:
        raise HandshakeError(f"{what} is {len(raw)} bytes, more than {MAX_HANDSHAKE_BYTES}")
    try:
        return model.model_validate_json(raw)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'message'}: {err['msg']}" for err in e.errors())
        raise HandshakeError(f"invalid {what}: {problems}") from e


def check_protocol_version(version: int, *, peer: str) -> None:
    if version not in SUPPORTED_PROTOCOL_VERSIONS:
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_PROTOCOL_VERSIONS))
        raise HandshakeError(
            f"{peer} speaks tunnel protocol {version}, this side supports {supported}; "
            "run agent and server from compatible releases"
        )


def parse_hello(raw: str | bytes) -> AgentHello:
    """Validate an agent's hello, including its protocol version; HandshakeError says what is wrong."""
    hello = _parse(AgentHello, raw, what="agent hello")
    check_protocol_version(hello.protocol_version, peer="the agent")
    return hello


def parse_welcome(raw: str | bytes) -> ServerWelcome:
    welcome = _parse(ServerWelcome, raw, what="server welcome")
    check_protocol_version(welcome.protocol_version, peer="the server")
    return welcome
