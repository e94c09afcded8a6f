"""Which selected DockerContainers may take connections, and on which container port for each service port.

Pure: DockerContainer objects (as the informer holds them) in, Backends out. A backend is Ready when its Ready
condition is True, it has a host and an IP, and it is not being deleted (as an EndpointSlice marks a terminating
Pod's endpoint not ready). A service port whose targetPort names a port the container does not declare is not
served by that container, as Kubernetes leaves such a Pod out of that port's endpoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dockyard_operator.api.common import LabelSelector
from dockyard_operator.api.dockerservice import DockerServiceSpec, ServicePort

JSON = dict[str, Any]


def port_key(port: ServicePort) -> str:
    """How a service port is named in the data plane and the EndpointSlice ('' for the one unnamed port)."""
    return port.name or ""


@dataclass(frozen=True, slots=True)
class Backend:
    """One selected DockerContainer, as the data plane sees it."""

    container: str
    host: str | None
    ip: str | None
    ready: bool
    ports: Mapping[str, int]
    """Service port key -> container port, for the ports this container serves."""
    container_id: str | None = None
    """Docker's id of the container: the agent dials the IP only while this container holds it."""

    @property
    def key(self) -> str:
        return self.container


def _ready(obj: JSON) -> bool:
    status = obj.get("status") or {}
    if (obj.get("metadata") or {}).get("deletionTimestamp") or not status.get("host") or not status.get("ip"):
        return False
    conditions = status.get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _container_ports(obj: JSON, spec: DockerServiceSpec) -> dict[str, int]:
    declared = {p.get("name"): int(p["containerPort"]) for p in (obj.get("spec") or {}).get("ports") or [] if p}
    out: dict[str, int] = {}
    for port in spec.ports:
        target = port.target()
        if isinstance(target, int):
            out[port_key(port)] = target
        elif target in declared:
            out[port_key(port)] = declared[target]
    return out


def selected(selector: LabelSelector, obj: JSON) -> bool:
    return selector.matches((obj.get("metadata") or {}).get("labels") or {})


def backends(spec: DockerServiceSpec, containers: Iterable[JSON]) -> list[Backend]:
    """The containers the selector picks, sorted by name."""
    out = []
    for obj in containers:
        if not selected(spec.selector, obj):
            continue
        status = obj.get("status") or {}
        out.append(
            Backend(
                container=str(obj["metadata"]["name"]),
                host=status.get("host"),
                ip=status.get("ip"),
                ready=_ready(obj),
                ports=_container_ports(obj, spec),
                container_id=status.get("containerID") or None,
            )
        )
    out.sort(key=lambda b: b.container)
    return out


def view(obj: JSON | None) -> tuple[Any, ...]:
    """What of a DockerContainer matters to a service: a change elsewhere (a restart count, a drift) wakes none."""
    if obj is None:
        return ()
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    return (
        tuple(sorted((meta.get("labels") or {}).items())),
        status.get("host"),
        status.get("ip"),
        status.get("containerID"),
        _ready(obj),
        tuple((p.get("name"), p.get("containerPort")) for p in (obj.get("spec") or {}).get("ports") or []),
    )
