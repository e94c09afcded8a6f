"""DockerHost (cluster-scoped): a Docker daemon the operator may place containers on, and how to reach it.

Cluster-scoped on purpose: creating a DockerHost grants access to a Docker daemon, which is root on that machine,
so it is an administrator's act (RBAC on a cluster-scoped kind), never a namespace user's.
"""

import enum
from typing import Annotated, ClassVar, Final, Literal

from pydantic import Field

from dockyard_operator.api import common

KIND: Final = "DockerHost"

# Where Docker listens: a Unix socket path, or host:port for TCP (TLS via spec.tls).
DOCKER_URL_PATTERN: Final = r"^(unix:///[^\s]+|tcp://[^\s/]+)$"


class TunnelConnection(common.ApiModel):
    """Reach the daemon through the Dockyard tunnel: the agent on the Docker host dials out to the operator.

    Has no fields yet; its presence selects the mode. The operator creates the agent's token Secret (see
    status.tokenSecretRef) and `dockyard host join NAME` prints the agent command.
    """


class HostTLS(common.ApiModel):
    """TLS client settings for a tcp:// Docker daemon."""

    secret_ref: common.SecretReference
    """Secret with the CA bundle (ca.crt), client certificate (tls.crt) and client key (tls.key) used to reach
    the daemon. The daemon's certificate is verified against ca.crt."""


class ConnectionMode(enum.StrEnum):
    """How the operator reaches a host's Docker daemon."""

    TUNNEL = "Tunnel"
    DIRECT = "Direct"


class DockerHostSpec(common.ApiModel):
    """Desired state of the DockerHost: how to reach its Docker daemon (at most one of tunnel and url; neither
    means tunnel) and which namespaces may use it."""

    cross_field_rules: ClassVar[tuple[common.CrossFieldRule, ...]] = (
        common.at_most_one_of("tunnel", "url"),
        common.CrossFieldRule(
            rule="!has(self.tls) || (has(self.url) && self.url.startsWith('tcp://'))",
            message="tls may only be set together with a tcp:// url",
            check=lambda m: m.tls is None or (m.url is not None and m.url.startswith("tcp://")),
        ),
    )

    tunnel: TunnelConnection | None = None
    """Reach the daemon through the tunnel: the Dockyard agent on the host dials in, so the host needs no open
    port. This is the default when neither tunnel nor url is set."""

    url: str | None = Field(default=None, max_length=2048, pattern=DOCKER_URL_PATTERN)
    """Reach the daemon directly at this address: unix:///path/to/docker.sock (a socket the operator can open)
    or tcp://host:port. Use tls with tcp:// — a plain-TCP Docker API is root access for anyone on the network."""

    tls: HostTLS | None = None
    """Client TLS for a tcp:// url."""

    namespace_selector: common.LabelSelector | None = None
    """Which namespaces may place DockerContainers on this host, by namespace labels. Unset means every namespace;
    {} also matches every namespace."""

    operator_class: str = Field(
        default=common.DEFAULT_OPERATOR_CLASS,
        min_length=1,
        max_length=63,
        pattern=common.DNS_LABEL_PATTERN,
        json_schema_extra=common.cel(
            "self == oldSelf", "operatorClass is immutable; delete and recreate the DockerHost to move it"
        ),
    )
    """Which Dockyard operator manages this host: the one started with the same --operator-class (default
    dockyard). Several Dockyards can share one cluster this way, each with its own hosts; DockerContainers are
    served by the operator of their namespace's class (label dockyard.dev/operator-class, default dockyard) and
    placed only on hosts of that class. Immutable."""

    allowed_host_paths: list[Annotated[str, Field(max_length=1024, pattern=r"^/.*$")]] = Field(
        default_factory=list, max_length=64
    )
    """Host directories DockerContainers may bind-mount (hostPath volumes), as absolute path prefixes: /srv/data
    allows /srv/data and everything below it. Empty (the default) allows no hostPath volume at all: a bind of /
    or /var/run/docker.sock is root on the host, so the host's administrator opts in, path by path. Named Docker
    volumes, Secrets and ConfigMaps are always allowed."""

    def allows_host_path(self, path: str) -> bool:
        """Whether a hostPath volume at `path` is within one of allowed_host_paths."""
        clean = "/" + "/".join(p for p in path.split("/") if p not in ("", "."))
        if ".." in clean.split("/"):
            return False
        for prefix in self.allowed_host_paths:
            root = "/" + "/".join(p for p in prefix.split("/") if p not in ("", "."))
            if clean == root or clean.startswith(root.rstrip("/") + "/"):
                return True
        return False

    @property
    def connection_mode(self) -> ConnectionMode:
        """Tunnel unless a url is set."""
        return ConnectionMode.DIRECT if self.url is not None else ConnectionMode.TUNNEL


class HostPhase(enum.StrEnum):
    """Whether the operator currently has a working connection to the host's Docker daemon."""

    CONNECTED = "Connected"
    DISCONNECTED = "Disconnected"


class HostConditionType(enum.StrEnum):
    """Condition types of a DockerHost."""

    READY = "Ready"
    """The daemon is reachable and answers Docker API calls."""


class DockerHostStatus(common.ApiModel):
    """What the operator last observed about the host. Written only by the operator."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this status was computed from."""

    phase: HostPhase | None = None
    """Connected or Disconnected."""

    conditions: list[common.Condition] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Current conditions of the host: Ready."""

    agent_version: str | None = Field(default=None, max_length=256)
    """Version of the Dockyard agent (tunnel hosts only)."""

    docker_version: str | None = Field(default=None, max_length=256)
    """Version of the Docker Engine."""

    operating_system: str | None = Field(default=None, max_length=256)
    """Operating system of the Docker host, as Docker reports it (for example linux)."""

    architecture: str | None = Field(default=None, max_length=256)
    """CPU architecture of the Docker host, as Docker reports it (for example x86_64)."""

    containers: int | None = Field(default=None, ge=0)
    """Number of containers Dockyard manages on this host."""

    last_heartbeat: common.Time | None = None
    """When the operator last heard from the host."""

    connected_since: common.Time | None = None
    """When the current connection was established (unset while disconnected)."""

    token_secret_ref: common.SecretReference | None = None
    """For a tunnel host: the Secret, created by the operator, holding the agent's join token."""


class DockerHost(common.ApiModel):
    """A Docker daemon Dockyard may place containers on. Cluster-scoped."""

    api_version: Literal["dockyard.dev/v1alpha1"] = common.API_VERSION
    """APIVersion of the object."""

    kind: Literal["DockerHost"] = KIND
    """Kind of the object."""

    metadata: common.ObjectMeta
    """Standard object metadata."""

    spec: DockerHostSpec = Field(default_factory=DockerHostSpec)
    """Desired state: how to reach the daemon and who may use it."""

    status: DockerHostStatus = Field(default_factory=DockerHostStatus)
    """Observed state, written by the operator."""
