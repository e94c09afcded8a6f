"""Creating and deleting the children of a controller's object, under expectations (client-go's pattern).

A controller that makes children (a DockerDeployment's replicas, a DockerJob's attempts, a DockerCronJob's jobs)
records what it is about to create and delete; until its informer has shown each of those, it does not act on
that object again (runtime.expectations). The bookkeeping is the same for every kind, so it lives here: a
failed request lowers the expectation it will never see, and every success becomes an Event.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import Resource
from dockyard_operator.runtime.expectations import Expectations
from dockyard_operator.runtime.plans import Event

JSON = dict[str, Any]


def owner_reference(owner: JSON) -> JSON:
    """A controller ownerReference to `owner`, with blockOwnerDeletion (foreground deletion waits for it)."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


async def create_children(
    kube: KubeClient,
    expectations: Expectations,
    key: str,
    resource: Resource,
    bodies: Sequence[JSON],
    events: list[Event],
    *,
    noun: str,
    namespace: str,
    where: Sequence[str | None] | None = None,
) -> list[JSON]:
    """Create `bodies` in order; an Event per child ("Created attempt web-x7k2p on edge-1"). Returns them."""
    if not bodies:
        return []
    expectations.expect(key, adds=len(bodies))
    created: list[JSON] = []
    for index, body in enumerate(bodies):
        try:
            created.append(await kube.create(resource, body, namespace=namespace))
        except kube_errors.KubeError:
            for _ in bodies[index:]:  # this creation and the ones not attempted will never be observed
                expectations.creation_failed(key)
            raise
        place = where[index] if where is not None else None
        suffix = f" on {place}" if place else ""
        events.append(Event("SuccessfulCreate", f"Created {noun} {created[-1]['metadata']['name']}{suffix}"))
    return created


async def delete_children(
    kube: KubeClient,
    expectations: Expectations,
    key: str,
    resource: Resource,
    victims: Sequence[JSON],
    events: list[Event],
    *,
    noun: str,
    propagation: str | None = None,
) -> None:
    """Delete `victims`; one already gone counts as deleted. An Event per deletion."""
    if not victims:
        return
    expectations.expect(key, delete_uids=[v["metadata"]["uid"] for v in victims])
    for index, victim in enumerate(victims):
        meta = victim["metadata"]
        try:
            await kube.delete(resource, meta["name"], namespace=meta["namespace"], propagation=propagation)
        except kube_errors.NotFoundError:
            expectations.deletion_observed(key, meta["uid"])
            continue
        except kube_errors.KubeError:
            # Neither this deletion nor the ones not attempted will be observed: stop waiting for them.
            for skipped in victims[index:]:
                expectations.deletion_observed(key, skipped["metadata"]["uid"])
            raise
        events.append(Event("SuccessfulDelete", f"Deleted {noun} {meta['name']}"))


def condition_of(obj: JSON, type_: str) -> JSON:
    """A condition of an object's status as raw JSON ({} when it has none of that type)."""
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == type_), {})


def parse_time(value: str | None) -> datetime.datetime | None:
    """A metav1.Time (RFC 3339) as an aware datetime, or None."""
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
