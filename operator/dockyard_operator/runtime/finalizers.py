"""Adding and removing our finalizer, with the object's resourceVersion as a precondition.

A merge patch of `metadata.finalizers` replaces the whole list, so it carries `resourceVersion`: a concurrent
writer (another controller adding its own finalizer) makes ours fail with 409 and retry, instead of one of us
silently dropping the other's entry.
"""

from __future__ import annotations

from typing import Any

from dockyard_operator.informer.store import object_key
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import Resource
from dockyard_operator.runtime.consistency import WriteTracker

JSON = dict[str, Any]


def has(obj: JSON, finalizer: str) -> bool:
    return finalizer in ((obj.get("metadata") or {}).get("finalizers") or [])


async def _set(kube: KubeClient, resource: Resource, obj: JSON, finalizers: list[str], tracker: WriteTracker) -> JSON:
    meta = obj["metadata"]
    patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
    response = await kube.merge_patch(resource, meta["name"], patch, namespace=meta.get("namespace"))
    tracker.wrote(object_key(obj), (response.get("metadata") or {}).get("resourceVersion"))
    return response


async def add(kube: KubeClient, resource: Resource, obj: JSON, finalizer: str, tracker: WriteTracker) -> JSON | None:
    """Add `finalizer` if missing. Returns the object as the API server stored it when a write was made (a caller
    may go on with it in the same reconcile, instead of waiting a queue round for the watch event), else None."""
    if has(obj, finalizer):
        return None
    return await _set(kube, resource, obj, [*(obj["metadata"].get("finalizers") or []), finalizer], tracker)


async def remove(kube: KubeClient, resource: Resource, obj: JSON, finalizer: str, tracker: WriteTracker) -> None:
    """Remove `finalizer` if present; an object already gone is fine (nothing is left to release)."""
    if not has(obj, finalizer):
        return
    remaining = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
    try:
        await _set(kube, resource, obj, remaining, tracker)
    except kube_errors.NotFoundError:
        return
