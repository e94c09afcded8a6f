"""Choosing a DockerHost for a DockerContainer, and leaving the previous one (pure).

Rules, in order:
1. `hostRef` names the host outright; it must exist, belong to this operator's class, not be being deleted, and
   admit the container's namespace.
2. A host already recorded in status.host sticks while it exists, is ours, is not being deleted, still matches and
   admits the namespace — a container is never moved because another host became less busy (moving means
   destroying it).
3. Otherwise, among this class's hosts whose labels match `hostSelector`, that admit the namespace, are not being
   deleted and are reachable now, the one with the fewest DockerContainers wins; ties go to the lexically smallest
   name (deterministic).

status.host is where the container is. When the decision names another host, or none, the container leaves the
recorded host first (:func:`departure`): removed there when it is reachable; waited for when it is merely
unreachable (never two copies); released with a Warning when that host is gone or being deleted, since waiting
for a host that will not come back would block the container (and its namespace's deletion) for nothing.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable, Mapping

from dockyard_operator.api.common import LabelSelector
from dockyard_operator.api.dockercontainer import DockerContainerSpec
from dockyard_operator.api.dockerhost import DockerHostSpec


@dataclasses.dataclass(frozen=True)
class HostView:
    """What placement needs to know about one DockerHost: its object, and the operator's connection to it."""

    name: str
    spec: DockerHostSpec
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    deleting: bool = False
    invalid: bool = False
    """Its spec cannot be read by this operator: it takes nothing new, and nothing on it is released."""
    decided: bool = False
    """Whether the operator has a verdict on the connection yet (right after start-up it has none)."""
    reachable: bool = False
    message: str = ""
    """Why it is unreachable (or "connected")."""

    def admits(self, namespace_labels: Mapping[str, str]) -> bool:
        selector = self.spec.namespace_selector
        return selector is None or selector.matches(dict(namespace_labels))


@dataclasses.dataclass(frozen=True)
class Decision:
    host: str | None
    reason: str  # CamelCase, for the Scheduled condition
    message: str


def schedule(
    *,
    spec: DockerContainerSpec,
    namespace: str,
    namespace_labels: Mapping[str, str],
    current_host: str | None,
    hosts: Mapping[str, HostView],
    operator_class: str,
    load: Callable[[str], int],
) -> Decision:
    if spec.host_ref is not None:
        name = spec.host_ref.name
        host = hosts.get(name)
        if host is None:
            return Decision(None, "HostNotFound", f"DockerHost {name!r} does not exist")
        if host.spec.operator_class != operator_class:
            message = (
                f"DockerHost {name!r} belongs to operator class {host.spec.operator_class!r}; namespace "
                f"{namespace!r} is served by {operator_class!r}"
            )
            return Decision(None, "OtherOperatorClass", message)
        if host.deleting:
            return Decision(None, "HostDeleting", f"DockerHost {name!r} is being deleted")
        if host.invalid:
            return Decision(None, "HostInvalid", f"DockerHost {name!r} has a spec this operator cannot read")
        if not host.admits(namespace_labels):
            return Decision(None, "NamespaceNotAllowed", f"DockerHost {name!r} does not admit namespace {namespace!r}")
        return Decision(name, "HostRef", f"placed on {name} by hostRef")
    selector = spec.host_selector or LabelSelector()

    def eligible(host: HostView) -> bool:
        return (
            host.spec.operator_class == operator_class
            and not host.deleting
            and not host.invalid
            and selector.matches(dict(host.labels))
            and host.admits(namespace_labels)
        )

    current = hosts.get(current_host) if current_host is not None else None
    if current is not None and eligible(current):
        return Decision(current.name, "HostSelector", f"placed on {current.name} by hostSelector")
    candidates: Iterable[str] = (n for n in sorted(hosts) if eligible(hosts[n]) and hosts[n].reachable)
    best = min(candidates, key=lambda n: (load(n), n), default=None)
    if best is None:
        return Decision(None, "NoEligibleHost", "no reachable DockerHost matches hostSelector and admits the namespace")
    return Decision(best, "HostSelector", f"placed on {best} by hostSelector")


def eligible_hosts(
    *,
    spec: DockerContainerSpec,
    namespace_labels: Mapping[str, str],
    hosts: Mapping[str, HostView],
    operator_class: str,
) -> list[str]:
    """Every host of ours the container could have been placed on (where a lost copy might be), sorted."""
    if spec.host_ref is not None:
        return [spec.host_ref.name] if spec.host_ref.name in hosts else []
    selector = spec.host_selector or LabelSelector()
    return sorted(
        name
        for name, host in hosts.items()
        if host.spec.operator_class == operator_class
        and selector.matches(dict(host.labels))
        and host.admits(namespace_labels)
    )


class Leave(enum.StrEnum):
    """How a container leaves the host it was recorded on."""

    REMOVE = "Remove"
    """The host is reachable: stop and remove the container there first."""
    WAIT = "Wait"
    """The host is unreachable but may come back: wait, rather than run two copies."""
    RELEASE = "Release"
    """The host is gone or being deleted and cannot be reached: forget it, with a Warning naming what may remain."""


@dataclasses.dataclass(frozen=True)
class Departure:
    host: str
    how: Leave
    message: str


def departure(
    *, previous: str | None, target: str | None, hosts: Mapping[str, HostView], operator_class: str
) -> Departure | None:
    """How to leave `previous` (status.host) when the decision is `target`; None when there is nothing to leave."""
    if previous is None or previous == target:
        return None
    host = hosts.get(previous)
    if host is None or host.spec.operator_class != operator_class:
        return Departure(
            previous, Leave.RELEASE, f"DockerHost {previous} is gone; its container there is no longer managed"
        )
    if host.invalid:
        message = f"DockerHost {previous} has a spec this operator cannot read (a newer CRD?); leaving it alone"
        return Departure(previous, Leave.WAIT, message)
    if host.reachable:
        return Departure(previous, Leave.REMOVE, f"removing the container from {previous} before moving")
    if host.deleting and host.decided:
        # Only on a verdict: right after an operator restart "unreachable" just means "not heard from yet".
        return Departure(
            previous, Leave.RELEASE, f"DockerHost {previous} is being deleted and unreachable; its container may remain"
        )
    return Departure(previous, Leave.WAIT, f"waiting for {previous} to be reachable to remove the container there")
