"""How DockerContainers are found from what they depend on: index functions and the controller's map functions.

An event about a host, a Secret, a ConfigMap or a namespace wakes exactly the DockerContainers filed under it
(a dictionary lookup), never a scan of every object in the cache.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Any

import pydantic

from dockyard_operator.api.dockercontainer import DockerContainerSpec
from dockyard_operator.containers import desired
from dockyard_operator.informer.store import Reader

JSON = dict[str, Any]

BY_HOST = "host"
BY_SECRET = "secret"  # noqa: S105 — an index name
BY_CONFIG_MAP = "configmap"
BY_NAMESPACE = "namespace"

#: Filed under this "host": hostSelector containers not placed yet (any host appearing may take them).
UNPLACED = "*unplaced"

_SPEC_CACHE_SIZE = 4096
_specs: collections.OrderedDict[tuple[str, int], DockerContainerSpec | None] = collections.OrderedDict()


def _spec(obj: JSON) -> DockerContainerSpec | None:
    """The parsed spec, remembered per (uid, generation): the spec only changes with the generation."""
    meta = obj.get("metadata") or {}
    key = (str(meta.get("uid") or meta.get("name")), int(meta.get("generation") or 0))
    if key in _specs:
        _specs.move_to_end(key)
        return _specs[key]
    try:
        spec: DockerContainerSpec | None = DockerContainerSpec.model_validate(obj.get("spec") or {})
    except pydantic.ValidationError:
        spec = None
    _specs[key] = spec
    while len(_specs) > _SPEC_CACHE_SIZE:
        _specs.popitem(last=False)
    return spec


def hosts_of(obj: JSON) -> list[str]:
    """Index: the host the container is on (status.host), the one it names (hostRef), or UNPLACED."""
    values = []
    placed = (obj.get("status") or {}).get("host")
    if placed:
        values.append(str(placed))
    ref = ((obj.get("spec") or {}).get("hostRef") or {}).get("name")
    if ref:
        values.append(str(ref))
    if not values:
        values.append(UNPLACED)
    return values


def secrets_of(obj: JSON) -> list[str]:
    spec = _spec(obj)
    if spec is None:
        return []
    namespace = obj["metadata"].get("namespace")
    return [f"{namespace}/{n}" for n in desired.referenced_secrets(spec)]


def config_maps_of(obj: JSON) -> list[str]:
    spec = _spec(obj)
    if spec is None:
        return []
    namespace = obj["metadata"].get("namespace")
    return [f"{namespace}/{n}" for n in desired.referenced_config_maps(spec)]


def namespace_of(obj: JSON) -> list[str]:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return [str(namespace)] if namespace else []


def keys(objs: Iterable[JSON]) -> list[str]:
    return [f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in objs]


def on_host(containers: Reader, host: str) -> list[str]:
    """Every container that a change of `host` may concern: those on it or naming it, and the unplaced ones."""
    return keys(containers.by_index(BY_HOST, host)) + keys(containers.by_index(BY_HOST, UNPLACED))


def placed_on(containers: Reader, host: str) -> list[JSON]:
    """Containers whose status says they are on `host` (for the host's count and its drain)."""
    return [o for o in containers.by_index(BY_HOST, host) if (o.get("status") or {}).get("host") == host]
