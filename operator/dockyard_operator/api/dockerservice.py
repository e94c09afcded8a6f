"""DockerService (namespaced): DockerContainers on any host behind a real Kubernetes Service.

The operator makes a selector-less Service of the same name and an EndpointSlice that points at its own data-plane
listeners; each connection there goes through the tunnel to one Ready container the selector picks. DNS,
kube-proxy, Ingress and Gateway API then work unchanged. Field names and meanings follow core/v1 Service where the
two overlap (ports, targetPort, sessionAffinity); docs/services.md explains the data plane.
"""

import enum
import re
from typing import Annotated, ClassVar, Final, Literal

from pydantic import Field, WithJsonSchema, field_validator

from dockyard_operator.api import common
from dockyard_operator.api.dockercontainer import PORT_NAME_PATTERN, Protocol

KIND: Final = "DockerService"

SERVICE_OWNER_LABEL: Final = "dockyard.dev/service-name"
"""On the Service and EndpointSlice the operator makes: the DockerService's name."""

ENDPOINTSLICE_MANAGER: Final = "dockyard.dev"
"""The `endpointslice.kubernetes.io/managed-by` value of our EndpointSlices (the endpointslice controller leaves
slices managed by others alone)."""

#: A Service name is a DNS-1035 label (it becomes a DNS name); the DockerService's name is the Service's.
NAME_PATTERN: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

_PORT_NAME_MAX: Final = 15


def _check_target_port(value: int | str) -> int | str:
    if isinstance(value, bool):
        raise ValueError("targetPort must be a port number or a port name")
    if isinstance(value, int):
        if not 1 <= value <= 65535:
            raise ValueError(f"targetPort must be in 1..65535, got {value}")
        return value
    # "8080" in quotes is a string, which Kubernetes reads as a name; a name needs a letter, so it is refused.
    if len(value) > _PORT_NAME_MAX or not re.fullmatch(PORT_NAME_PATTERN, value) or value.isdigit():
        raise ValueError(f"targetPort {value!r} is neither a number nor a port name (≤ 15 characters, a-z 0-9 -)")
    return value


TargetPort = Annotated[
    int | str,
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "maxLength": _PORT_NAME_MAX,
            "x-kubernetes-validations": [
                {
                    "rule": (
                        "type(self) == int ? (self >= 1 && self <= 65535) : "
                        "(self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') "
                        "&& !self.matches('^[0-9]+$'))"
                    ),
                    "message": (
                        "targetPort must be a port number (1-65535) or the name of a containerPort "
                        "(at most 15 characters: a-z, 0-9 and -)"
                    ),
                }
            ],
        }
    ),
]
"""A container port number, or the name of a `ports[]` entry of the selected containers (as a Service's
targetPort names a Pod's containerPort)."""


class ServicePort(common.ApiModel):
    """One port of the service."""

    name: str | None = Field(default=None, min_length=1, max_length=_PORT_NAME_MAX, pattern=PORT_NAME_PATTERN)
    """The port's name; required when the service has more than one port. It names the port in the Service and
    in the EndpointSlice."""

    port: int = Field(ge=1, le=65535)
    """The port the Service exposes (on its ClusterIP)."""

    target_port: TargetPort | None = None
    """The port of the containers: a number, or the name of a port in the DockerContainer's spec.ports. Default:
    the same as port."""

    protocol: Protocol = Field(
        default=Protocol.TCP,
        json_schema_extra=common.cel(
            "self == 'TCP'",
            "only TCP for now: UDP and SCTP cannot go through the tunnel yet",
        ),
    )
    """TCP. (UDP and SCTP are refused for now: the tunnel carries streams, not datagrams.)"""

    @field_validator("protocol")
    @classmethod
    def _tcp_only(cls, value: Protocol) -> Protocol:
        if value is not Protocol.TCP:
            raise ValueError("only TCP for now: UDP and SCTP cannot go through the tunnel yet")
        return value

    @field_validator("target_port")
    @classmethod
    def _target(cls, value: int | str | None) -> int | str | None:
        return None if value is None else _check_target_port(value)

    def target(self) -> int | str:
        """The container port this port forwards to (a number or a port name)."""
        return self.port if self.target_port is None else self.target_port


class SessionAffinity(enum.StrEnum):
    """How connections of one client are spread."""

    NONE = "None"
    CLIENT_IP = "ClientIP"


class ClientIPConfig(common.ApiModel):
    """ClientIP affinity settings."""

    timeout_seconds: int = Field(default=10800, ge=1, le=86400)
    """How long a client stays with its backend after its last connection. Default 10800 (3 hours), as a
    Service's."""


class SessionAffinityConfig(common.ApiModel):
    """Settings of the session affinity."""

    client_ip: ClientIPConfig | None = Field(default=None, alias="clientIP")
    """ClientIP affinity settings."""


class ServiceType(enum.StrEnum):
    """The type of the Kubernetes Service the operator makes (ExternalName has no endpoints to offer)."""

    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class ServiceTemplate(common.ApiModel):
    """What the Kubernetes Service the operator makes looks like."""

    type: ServiceType = ServiceType.CLUSTER_IP
    """ClusterIP (default), NodePort or LoadBalancer."""

    labels: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, json_schema_extra={"maxProperties": 64}
    )
    """Labels of the Service (besides dockyard.dev/service-name)."""

    annotations: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict, json_schema_extra={"maxProperties": 64}
    )
    """Annotations of the Service (for a load balancer controller, for example)."""


def _names_rule() -> common.CrossFieldRule:
    return common.CrossFieldRule(
        rule=(
            "size(self.ports) <= 1 || self.ports.all(p, has(p.name) && "
            "self.ports.filter(q, has(q.name) && q.name == p.name).size() == 1)"
        ),
        message="with more than one port, every port needs a name, and names must be unique",
        check=lambda m: (
            len(m.ports) <= 1 or (all(p.name for p in m.ports) and len({p.name for p in m.ports}) == len(m.ports))
        ),
    )


class DockerServiceSpec(common.ApiModel):
    """Which DockerContainers serve, on which ports, and the Service in front of them."""

    cross_field_rules: ClassVar[tuple[common.CrossFieldRule, ...]] = (_names_rule(),)

    selector: common.LabelSelector
    """DockerContainers of this namespace whose labels match are the backends (a DockerDeployment's replicas on
    many hosts are one service). Only Ready ones get connections."""

    ports: list[ServicePort] = Field(
        min_length=1,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "protocol"]},
    )
    """The ports (at least one, at most 16; a port number once)."""

    session_affinity: SessionAffinity = SessionAffinity.NONE
    """None (default): each connection goes to the Ready backend with the fewest open connections. ClientIP: a
    client's connections go to the same backend while it stays Ready."""

    session_affinity_config: SessionAffinityConfig | None = None
    """Settings of the session affinity (the ClientIP timeout)."""

    service: ServiceTemplate = Field(default_factory=ServiceTemplate, json_schema_extra={"default": {}})
    """The Kubernetes Service the operator makes: type, labels, annotations."""

    @field_validator("ports")
    @classmethod
    def _unique_ports(cls, value: list[ServicePort]) -> list[ServicePort]:
        seen = [(p.port, p.protocol) for p in value]
        if len(set(seen)) != len(seen):
            raise ValueError("a port number may appear once per protocol")
        return value

    def affinity_timeout(self) -> float | None:
        """Seconds a client stays with its backend, or None without ClientIP affinity."""
        if self.session_affinity is not SessionAffinity.CLIENT_IP:
            return None
        config = self.session_affinity_config.client_ip if self.session_affinity_config else None
        return float((config or ClientIPConfig()).timeout_seconds)


class ServiceEndpoint(common.ApiModel):
    """One backend: a selected DockerContainer."""

    container: str = Field(max_length=253)
    """The DockerContainer's name."""

    host: str | None = Field(default=None, max_length=253)
    """The DockerHost it runs on."""

    ip: str | None = Field(default=None, max_length=64)
    """Its IP on its Docker network (what the agent dials)."""

    ready: bool = False
    """Whether it gets new connections (its Ready condition is True)."""


class ServiceConditionType(enum.StrEnum):
    """Condition types of a DockerService."""

    READY = "Ready"
    SERVICE_CREATED = "ServiceCreated"


class DockerServiceStatus(common.ApiModel):
    """What the operator last observed. Written only by the operator."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this status was computed from."""

    cluster_ip: str | None = Field(default=None, max_length=64, alias="clusterIP")
    """The Service's ClusterIP."""

    ports: str | None = Field(default=None, max_length=256)
    """The ports as `kubectl get services` shows them (for example 80/TCP,443/TCP)."""

    ready_endpoints: int = Field(default=0, ge=0)
    """Selected containers that are Ready."""

    total_endpoints: int = Field(default=0, ge=0)
    """Selected containers."""

    ready: str | None = Field(default=None, max_length=32)
    """readyEndpoints/totalEndpoints, for the READY column (for example 2/3)."""

    endpoints: list[ServiceEndpoint] = Field(default_factory=list, max_length=64)
    """The selected containers (the first 64 by name; the counts above cover all of them)."""

    conditions: list[common.Condition] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Ready (at least one Ready backend) and ServiceCreated (the Kubernetes Service is ours and up to date)."""


class DockerService(common.ApiModel):
    """DockerContainers on any host behind a Kubernetes Service, load-balanced over the Ready ones."""

    api_version: Literal["dockyard.dev/v1alpha1"] = common.API_VERSION
    """APIVersion of the object."""

    kind: Literal["DockerService"] = KIND
    """Kind of the object."""

    metadata: common.ObjectMeta
    """Standard object metadata."""

    spec: DockerServiceSpec
    """Desired state."""

    status: DockerServiceStatus = Field(default_factory=DockerServiceStatus)
    """Observed state, written by the operator."""
