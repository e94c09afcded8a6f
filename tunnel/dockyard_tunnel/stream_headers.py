"""The typed header that starts every stream the server opens to an agent.

Wire format: one length byte N (1..255), then N bytes of ASCII text, one of
    `docker`              pipe the stream to the agent's local Docker API socket
    `tcp HOST:PORT [ID]`  dial HOST:PORT; HOST is an IPv4 literal or a bracketed IPv6 literal; with ID, only if the
                          container at HOST has that Docker id (prefix). Once connected, the
                          agent sends one byte TCP_CONNECTED before the target's bytes; a refused or failed dial
                          resets the stream instead. So the opener knows the target was reached (or was never
                          touched, and another may be tried) before it sends a byte of its own.
    `imports`             (server to agent) a JSON document follows, up to the server's FIN: the Service imports
                          the agent serves (ImportListeners); the agent answers one JSON document and closes
    `stats`               (server to agent) the agent answers one JSON document (container_stats.StatsDocument):
                          one-shot stats of every running managed container and its own counters, then closes
    `import NS/NAME:PORT from ID` (agent to server) the container ID connected to an import's listener: the
                          server connects to port PORT of the Service NAME in namespace NS, answers
                          TCP_CONNECTED, then relays
The length prefix lets the agent read exactly the header and hand the rest of the stream, untouched, to the
target. Host names are not accepted: the agent only dials container IP addresses it has checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass
from typing import Protocol

from dockyard_tunnel.errors import StreamHeaderError

MAX_HEADER_LENGTH = 255
#: The agent's answer on a `tcp` stream once its dial succeeded.
TCP_CONNECTED = b"\x00"


@dataclass(frozen=True, slots=True)
class DockerTarget:
    """The stream carries the Docker Engine API (HTTP/1.1) to the agent's local daemon."""

    def text(self) -> str:
        return "docker"


@dataclass(frozen=True, slots=True)
class TcpTarget:
    """The stream carries raw TCP to a container port on the agent's host."""

    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int
    container: str | None = None
    """The Docker id (or its prefix) of the container expected at that IP: with it the agent also refuses an IP that
    a different container has taken over since the opener looked."""

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise StreamHeaderError(f"tcp port must be in 1..65535, got {self.port}")
        if self.container is not None and not _CONTAINER_ID.fullmatch(self.container):
            raise StreamHeaderError(f"tcp container must be a Docker container id, got {self.container!r}")

    def text(self) -> str:
        host = f"[{self.ip}]" if self.ip.version == 6 else str(self.ip)
        return f"tcp {host}:{self.port}" + (f" {self.container}" if self.container else "")


@dataclass(frozen=True, slots=True)
class ImportsTarget:
    """The stream carries the agent's Service import listeners, as JSON (server to agent)."""

    def text(self) -> str:
        return "imports"


@dataclass(frozen=True, slots=True)
class StatsTarget:
    """The stream carries one stats document from the agent (server asks, agent answers and closes)."""

    def text(self) -> str:
        return "stats"


@dataclass(frozen=True, slots=True)
class ImportTarget:
    """The stream carries a connection to a Kubernetes Service port (agent to server)."""

    namespace: str
    service: str
    port: int
    client: str | None = None
    """The Docker id of the container that connected (the agent checked it declares this import)."""

    def __post_init__(self) -> None:
        for what, value in (("namespace", self.namespace), ("service", self.service)):
            if not _DNS_LABEL.fullmatch(value):
                raise StreamHeaderError(f"import {what} must be a DNS label, got {value!r}")
        if not 1 <= self.port <= 65535:
            raise StreamHeaderError(f"import port must be in 1..65535, got {self.port}")
        if self.client is not None and not _CONTAINER_ID.fullmatch(self.client):
            raise StreamHeaderError(f"import client must be a Docker container id, got {self.client!r}")

    @property
    def key(self) -> str:
        """NS/NAME:PORT, as listed in the container label and the agent's listener document."""
        return f"{self.namespace}/{self.service}:{self.port}"

    def text(self) -> str:
        return f"import {self.key}" + (f" from {self.client}" if self.client else "")


StreamTarget = DockerTarget | TcpTarget | ImportsTarget | StatsTarget | ImportTarget

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_CONTAINER_ID = re.compile(r"[0-9a-f]{12,64}")


def encode_header(target: StreamTarget) -> bytes:
    body = target.text().encode("ascii")
    return bytes([len(body)]) + body


def _parse_tcp(address: str) -> TcpTarget:
    host, sep, port_text = address.rpartition(":")
    if not sep or not host:
        raise StreamHeaderError(f"tcp target must be HOST:PORT, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise StreamHeaderError(f"brackets are only for IPv6 addresses, got {address!r}")
    elif ":" in host:
        raise StreamHeaderError(f"an IPv6 address must be bracketed, as in [::1]:80, got {address!r}")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise StreamHeaderError(f"tcp target host must be an IP address, got {host!r}") from None
    if not port_text.isdigit() or len(port_text) > 5:
        raise StreamHeaderError(f"tcp target port must be a number, got {port_text!r}")
    return TcpTarget(ip=ip, port=int(port_text))


def parse_header(body: bytes) -> StreamTarget:
    """Parse a header body (without its length byte)."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise StreamHeaderError("stream header is not ASCII") from None
    if not text.isprintable():
        raise StreamHeaderError(f"stream header contains control characters: {text!r}")
    kind, _, rest = text.partition(" ")
    if kind == "docker":
        if rest or text != "docker":
            raise StreamHeaderError(f"the docker header takes no argument, got {text!r}")
        return DockerTarget()
    if kind == "tcp":
        address, _, container = rest.partition(" ")
        target = _parse_tcp(address)
        return TcpTarget(ip=target.ip, port=target.port, container=container) if container else target
    if kind == "imports":
        if rest:
            raise StreamHeaderError(f"the imports header takes no argument, got {text!r}")
        return ImportsTarget()
    if kind == "stats":
        if rest:
            raise StreamHeaderError(f"the stats header takes no argument, got {text!r}")
        return StatsTarget()
    if kind == "import":
        return _parse_import(rest)
    raise StreamHeaderError(f"unknown stream kind {kind!r} (expected docker, tcp, imports, stats or import)")


def parse_import(text: str) -> ImportTarget:
    """`NS/NAME:PORT` as an ImportTarget (also the key of an import in the agent's listener document)."""
    return _parse_import(text)


def _parse_import(rest: str) -> ImportTarget:
    rest, _, client = rest.partition(" from ")
    where, sep, port_text = rest.rpartition(":")
    namespace, slash, service = where.partition("/")
    if not sep or not slash or not port_text.isdigit() or len(port_text) > 5:
        raise StreamHeaderError(f"import target must be NAMESPACE/SERVICE:PORT, got {rest!r}")
    return ImportTarget(namespace=namespace, service=service, port=int(port_text), client=client or None)


class ExactReader(Protocol):
    async def read_exactly(self, n: int) -> bytes: ...


async def read_header(stream: ExactReader) -> StreamTarget:
    """Read and parse one header from the start of `stream`, leaving the payload unread."""
    try:
        (length,) = await stream.read_exactly(1)
        if length == 0:
            raise StreamHeaderError("stream header is empty")
        body = await stream.read_exactly(length)
    except asyncio.IncompleteReadError:
        raise StreamHeaderError("stream ended inside its header") from None
    return parse_header(body)
