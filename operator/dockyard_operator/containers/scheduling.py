"""Choosing a DockerHost for a DockerContainer (pure: decided from informer stores and host reachability).

Rules, in order:
1. `hostRef` names the host outright; it must exist and admit the container's namespace.
2. A host already recorded in status.host sticks while it exists, still matches and admits the namespace —
   a container is never moved because another host became less busy (moving means destroying it).
3. Otherwise, among hosts whose labels match `hostSelector`, that admit the namespace and are reachable now, the
   one with the fewest DockerContainers wins; ties go to the lexically smallest name (deterministic).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dockyard_operator.api.common import LabelSelector
from dockyard_operator.api.dockercontainer import DockerContainerSpec

JSON = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Decision:
    host: str | None
    reason: str  # CamelCase, for the Scheduled condition
    message: str


def _admits(host: JSON, namespace_labels: Mapping[str, str]) -> bool:
    raw = (host.get("spec") or {}).get("namespaceSelector")
    if raw is None:
        return True  # unset means every namespace may use the host
    return LabelSelector.model_validate(raw).matches(dict(namespace_labels))


def schedule(
    *,
    spec: DockerContainerSpec,
    namespace: str,
    namespace_labels: Mapping[str, str],
    current_host: str | None,
    hosts: Mapping[str, JSON],
    reachable: Callable[[str], bool],
    load: Callable[[str], int],
) -> Decision:
    if spec.host_ref is not None:
        name = spec.host_ref.name
        host = hosts.get(name)
        if host is None:
            return Decision(None, "HostNotFound", f"DockerHost {name!r} does not exist")
        if not _admits(host, namespace_labels):
            return Decision(None, "NamespaceNotAllowed", f"DockerHost {name!r} does not admit namespace {namespace!r}")
        return Decision(name, "HostRef", f"placed on {name} by hostRef")
    selector = spec.host_selector or LabelSelector()

    def eligible(name: str) -> bool:
        host = hosts[name]
        labels = (host.get("metadata") or {}).get("labels") or {}
        return selector.matches(dict(labels)) and _admits(host, namespace_labels)

    if current_host is not None and current_host in hosts and eligible(current_host):
        return Decision(current_host, "HostSelector", f"placed on {current_host} by hostSelector")
    candidates: Iterable[str] = (n for n in sorted(hosts) if eligible(n) and reachable(n))
    best = min(candidates, key=lambda n: (load(n), n), default=None)
    if best is None:
        return Decision(None, "NoEligibleHost", "no reachable DockerHost matches hostSelector and admits the namespace")
    return Decision(best, "HostSelector", f"placed on {best} by hostSelector")
