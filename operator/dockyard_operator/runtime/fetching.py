"""Full objects on demand, for a resource the operator watches metadata-only (Secrets, ConfigMaps).

The metadata informer says which objects exist and when each changed (resourceVersion); the content is fetched with
a GET only when a reconciler needs it, and kept until the object changes or is deleted. So the operator holds the
data of the Secrets its DockerContainers reference, not of every Secret in the cluster, and a rotation still wakes
its users at once (the metadata event). The cache is bounded (least recently used entries go first).
"""

from __future__ import annotations

import collections
from typing import Any

from dockyard_operator.informer.store import object_key
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import Resource
from dockyard_operator.runtime.informers import Source

JSON = dict[str, Any]

#: Objects kept at most; each is a referenced Secret or ConfigMap (Kubernetes caps an object at about 1 MiB).
DEFAULT_CAPACITY = 2048


class FetchedObjects:
    """GET-through cache in front of a metadata-only Source."""

    def __init__(self, *, kube: KubeClient, metadata: Source, capacity: int = DEFAULT_CAPACITY) -> None:
        self._kube = kube
        self._metadata = metadata
        self._resource: Resource = metadata.resource
        self._capacity = capacity
        self._cache: collections.OrderedDict[str, JSON] = collections.OrderedDict()
        self.fetches = 0
        metadata.add_handler(self._on_event)

    def _on_event(self, event: str, obj: JSON, old: JSON | None) -> None:
        if event == "DELETED":
            self._cache.pop(object_key(obj), None)

    def exists(self, namespace: str, name: str) -> bool:
        return self._metadata.store.get(f"{namespace}/{name}") is not None

    async def get(self, namespace: str, name: str) -> JSON | None:
        """The object as the API server has it now, or None when it does not exist."""
        key = f"{namespace}/{name}"
        meta = self._metadata.store.get(key)
        if meta is None:
            return None
        version = meta["metadata"].get("resourceVersion")
        cached = self._cache.get(key)
        if cached is not None and cached["metadata"].get("resourceVersion") == version:
            self._cache.move_to_end(key)
            return cached
        try:
            obj = await self._kube.get(self._resource, name, namespace=namespace)
        except kube_errors.NotFoundError:
            self._cache.pop(key, None)
            return None
        self.fetches += 1
        self._cache[key] = obj
        self._cache.move_to_end(key)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return obj

    def __len__(self) -> int:
        return len(self._cache)
