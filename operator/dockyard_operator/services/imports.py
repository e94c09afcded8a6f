"""Service imports, decided: who may import what, and which listeners a host's agent should have.

Pure: DockerContainer and Namespace objects (as the informers hold them) in; answers out.

- A container may import a Service of its own namespace; of another namespace only when that namespace's
  annotation `dockyard.dev/allow-imports-from` lists the container's namespace (comma-separated) or is "*". The
  namespace that owns the Service decides who may reach it, as a ReferenceGrant does in Gateway API.
- Each allowed import is a listener on the host: the gateway address of the container network, the import's
  port, and the target `NS/NAME:PORT`. Two imports on one host that want the same port for different targets
  cannot both listen: the container created first keeps it (a newcomer never takes a port over from a running
  importer); the other is told in its condition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import pydantic

from dockyard_operator.api.dockercontainer import ServiceImport

JSON = dict[str, Any]

ALLOW_ANNOTATION: Final = "dockyard.dev/allow-imports-from"


def allowed(importer: str, target: str, target_namespace: JSON | None) -> bool:
    """Whether containers of namespace `importer` may import Services of namespace `target`."""
    if importer == target:
        return True
    annotations = ((target_namespace or {}).get("metadata") or {}).get("annotations") or {}
    names = {name.strip() for name in str(annotations.get(ALLOW_ANNOTATION, "")).split(",")}
    return "*" in names or importer in names


@dataclass(frozen=True, order=True)
class Listener:
    address: str
    port: int
    target: str
    """NS/NAME:PORT"""

    def document(self) -> JSON:
        return {"address": self.address, "port": self.port, "import": self.target}


@dataclass(frozen=True)
class ImportView:
    """One declared import of one container, judged."""

    container: str  # namespace/name
    alias: str
    target: str
    port: int
    allowed: bool


def declared(obj: JSON) -> list[ImportView]:
    """The serviceImports of a DockerContainer object, resolved against its namespace (not yet judged)."""
    meta = obj.get("metadata") or {}
    namespace = str(meta.get("namespace"))
    out = []
    for item in (obj.get("spec") or {}).get("serviceImports") or []:
        try:
            wanted = ServiceImport.model_validate(item)
        except pydantic.ValidationError:
            continue  # the API server validated it; an object it did not is none of an import's business
        out.append(
            ImportView(
                container=f"{namespace}/{meta.get('name')}",
                alias=wanted.host_name(namespace),
                target=wanted.target(namespace),
                port=wanted.port,
                allowed=True,
            )
        )
    return out


BY_IMPORTED_NAMESPACE: Final = "imported-namespace"


def imported_namespaces(obj: JSON) -> list[str]:
    """Index of DockerContainers: the namespaces of the Services they import (a grant there re-judges them)."""
    return sorted({view.target.split("/", 1)[0] for view in declared(obj)})


def judged(obj: JSON, namespace_of: Callable[[str], JSON | None]) -> list[ImportView]:
    """declared(), with `allowed` set from the target namespaces' annotations."""
    namespace = str((obj.get("metadata") or {}).get("namespace"))
    out = []
    for view in declared(obj):
        target_ns = view.target.split("/", 1)[0]
        ok = allowed(namespace, target_ns, namespace_of(target_ns))
        out.append(ImportView(view.container, view.alias, view.target, view.port, ok))
    return out


def listeners(
    containers: Iterable[JSON], gateway: str, namespace_of: Callable[[str], JSON | None]
) -> tuple[list[Listener], dict[str, list[str]]]:
    """The listeners a host should have for the containers placed on it, and per container the imports that lost a
    port conflict (container key -> messages)."""
    taken: dict[int, Listener] = {}
    conflicts: dict[str, list[str]] = {}
    ordered = sorted(
        containers,
        key=lambda o: (
            o["metadata"].get("creationTimestamp") or "",  # RFC 3339 in UTC: sorts as text
            o["metadata"]["namespace"],
            o["metadata"]["name"],
        ),
    )
    for obj in ordered:
        if (obj.get("metadata") or {}).get("deletionTimestamp"):
            continue
        for view in judged(obj, namespace_of):
            if not view.allowed:
                continue
            wanted = Listener(address=gateway, port=view.port, target=view.target)
            have = taken.get(view.port)
            if have is None:
                taken[view.port] = wanted
            elif have.target != view.target:
                conflicts.setdefault(view.container, []).append(
                    f"port {view.port} on this host already leads to {have.target}"
                )
    return sorted(taken.values()), conflicts


def condition(
    obj: JSON,
    namespace_of: Callable[[str], JSON | None],
    conflicts: list[str],
    failures: Mapping[int, str] | None = None,
) -> tuple[bool, str, str] | None:
    """(status, reason, message) of a container's ServiceImports condition; None without imports. `failures` are
    the ports its host's agent could not listen on (0: the agent refused the whole set), with the agent's reason."""
    views = judged(obj, namespace_of)
    if not views:
        return None
    refused = [v for v in views if not v.allowed]
    if refused:
        own = obj["metadata"]["namespace"]
        names = ", ".join(
            f"{v.target} (its namespace does not allow {own}: annotation {ALLOW_ANNOTATION})" for v in refused
        )
        return False, "NotAllowed", f"refused: {names}"
    if conflicts:
        return False, "PortConflict", "; ".join(conflicts)
    failed = [f"port {v.port}: {failures[v.port]}" for v in views if failures and v.port in failures]
    if failures and 0 in failures:
        failed.append(failures[0])
    if failed:
        return False, "ListenFailed", "the agent cannot listen: " + "; ".join(failed)
    return True, "Allowed", ", ".join(f"{v.alias}:{v.port} -> {v.target}" for v in views)
