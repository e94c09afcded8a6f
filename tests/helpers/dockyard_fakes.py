"""Fakes at the adapter boundary (DockerClient, KubeClient, host connections, the Event recorder) for unit tests of
the reconcilers' paths. They model what the real components do closely enough for decisions (checked by the
end-to-end tests against the real ones); they are never a stand-in in an integration test.
"""

from __future__ import annotations

import copy
import datetime
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from docker_model import inspect_from_config

from dockyard_operator.dockerapi import errors as docker_errors
from dockyard_operator.hosts.states import HostState
from dockyard_operator.informer.store import Store, object_key
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.resources import Resource

JSON = dict[str, Any]


class FakeDocker:
    """One Docker daemon: containers by id (as inspect shows them), images, and failures on demand."""

    def __init__(self, host: str, *, images: Iterable[str] = ("dockyard-test/busybox:1",)) -> None:
        self.host = host
        self.images = set(images)
        self.containers: dict[str, JSON] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_pull: str | None = None
        self.fail_start: str | None = None
        self.fail_create: str | None = None
        self.unavailable = False
        self.on_call: Callable[[str, str], None] | None = None
        self._ids = itertools.count(1)

    def _call(self, verb: str, arg: str) -> None:
        self.calls.append((verb, arg))
        if self.on_call is not None:
            self.on_call(verb, arg)
        if self.unavailable:
            raise docker_errors.DockerUnavailableError(f"{self.host}: {verb}: connection refused")

    def verbs(self) -> list[str]:
        return [verb for verb, _ in self.calls]

    # -- arranging --------------------------------------------------------------------------------------------

    def add(self, config: Mapping[str, Any], *, name: str, state: str = "running", exit_code: int = 0) -> str:
        """A container that exists already (created by us earlier, or behind our back)."""
        cid = f"{next(self._ids):064x}"
        body = inspect_from_config(config, name=name, state=state)
        body["Id"] = cid
        body["Created"] = f"2026-11-26T06:40:{len(self.containers):02d}Z"
        body["State"]["ExitCode"] = exit_code if state != "running" else 0
        body["_created"] = len(self.containers)
        self.containers[cid] = body
        return cid

    def set_state(self, cid: str, state: str, *, exit_code: int = 0, health: str | None = None) -> None:
        st = self.containers[cid]["State"]
        st["Status"], st["Running"], st["ExitCode"] = state, state == "running", exit_code
        if health is not None:
            st["Health"] = {"Status": health}

    def with_uid(self, uid: str) -> list[str]:
        return [cid for cid, c in self.containers.items() if c["Config"]["Labels"].get("dockyard.dev/uid") == uid]

    # -- the DockerClient surface ----------------------------------------------------------------------------

    async def list_containers(self, *, labels: Mapping[str, str]) -> list[JSON]:
        self._call("list", ",".join(f"{k}={v}" for k, v in labels.items()))
        out = []
        for cid, c in self.containers.items():
            if all(c["Config"]["Labels"].get(k) == v for k, v in labels.items()):
                out.append({"Id": cid, "Created": c["_created"], "Labels": dict(c["Config"]["Labels"]),
                            "State": c["State"]["Status"], "Names": [c["Name"]]})  # fmt: skip
        return out

    def _find(self, ref: str) -> str:
        if ref in self.containers:
            return ref
        for cid, c in self.containers.items():
            if c["Name"] == "/" + ref:
                return cid
        raise docker_errors.DockerNotFoundError(404, f"No such container: {ref}")

    async def inspect(self, ref: str) -> JSON:
        self._call("inspect", ref)
        body = copy.deepcopy(self.containers[self._find(ref)])
        body.pop("_created", None)
        return body

    async def create(self, *, name: str, config: JSON) -> str:
        self._call("create", name)
        if any(c["Name"] == "/" + name for c in self.containers.values()):
            raise docker_errors.DockerConflictError(409, f'Conflict. The container name "/{name}" is already in use')
        if self.fail_create is not None:
            raise docker_errors.DockerAPIError(400, self.fail_create)
        return self.add(config, name=name, state="created")

    async def put_archive(self, ref: str, *, path: str, tar: bytes) -> None:
        self._call("put_archive", ref)

    async def start(self, ref: str) -> None:
        self._call("start", ref)
        cid = self._find(ref)
        if self.fail_start is not None:
            self.containers[cid]["State"].update(Error=self.fail_start, ExitCode=127)
            raise docker_errors.DockerAPIError(400, self.fail_start)
        self.set_state(cid, "running")
        self.containers[cid]["State"]["Error"] = ""

    async def stop(self, ref: str, *, grace_seconds: int) -> None:
        self._call("stop", ref)
        self.set_state(self._find(ref), "exited", exit_code=143)

    async def restart(self, ref: str, *, grace_seconds: int) -> None:
        self._call("restart", ref)
        self.set_state(self._find(ref), "running", health="starting")

    async def remove(self, ref: str, *, force: bool = True) -> None:
        self._call("remove", ref)
        try:
            self.containers.pop(self._find(ref), None)
        except docker_errors.DockerNotFoundError:
            return

    async def keep_stopped(self, ref: str, *, name: str) -> None:
        self._call("keep_stopped", ref)
        container = self.containers[self._find(ref)]
        container["Name"] = "/" + name
        container["HostConfig"] = {**(container.get("HostConfig") or {}), "RestartPolicy": {"Name": "no"}}

    async def image_exists(self, image: str) -> bool:
        self._call("image_exists", image)
        return image in self.images

    async def pull(self, image: str, *, auth: JSON | None = None, timeout: float = 600.0) -> None:
        self._call("pull", image)
        if self.fail_pull is not None:
            raise docker_errors.DockerAPIError(500, self.fail_pull)
        self.images.add(image)


@dataclass
class FakeConnection:
    client: FakeDocker
    state: HostState


class FakeConnections:
    """HostConnections' read side: a connection per host name."""

    def __init__(self) -> None:
        self._hosts: dict[str, FakeConnection] = {}

    def add(self, name: str, *, reachable: bool = True) -> FakeDocker:
        docker = FakeDocker(name)
        self._hosts[name] = FakeConnection(docker, HostState(reachable=reachable, decided=True,
                                                             message="connected" if reachable else "down"))  # fmt: skip
        return docker

    def set_reachable(self, name: str, reachable: bool) -> None:
        state = self._hosts[name].state
        state.reachable, state.message = reachable, "connected" if reachable else "agent disconnected"

    def get(self, name: str) -> FakeConnection | None:
        return self._hosts.get(name)

    def names(self) -> list[str]:
        return list(self._hosts)


@dataclass
class FakeKube:
    """The API server as the reconcilers write to it: merge patches (status, finalizers) with preconditions.

    Every accepted write goes into `store` (the informer's cache) at once, unless `lag` holds it back: then it
    lands only when `deliver()` is called, as a slow watch would deliver it.
    """

    store: Store
    lag: bool = False
    writes: list[tuple[str, JSON]] = field(default_factory=list)
    pending: list[JSON] = field(default_factory=list)
    objects: dict[str, JSON] = field(default_factory=dict)
    _rv: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    def put(self, obj: JSON) -> JSON:
        """An object as the API server holds it (and the cache shows it)."""
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        self.objects[object_key(obj)] = obj
        self.store.put(copy.deepcopy(obj))
        return obj

    def deliver(self) -> None:
        for obj in self.pending:
            self.store.put(obj)
        self.pending.clear()

    async def merge_patch(
        self,
        resource: Resource,
        name: str,
        patch: JSON,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> JSON:
        key = f"{namespace}/{name}" if namespace else name
        current = self.objects.get(key)
        if current is None:
            raise kube_errors.NotFoundError(404, "NotFound", f"{key} not found")
        wanted_rv = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted_rv is not None and wanted_rv != current["metadata"]["resourceVersion"]:
            raise kube_errors.ConflictError(409, "Conflict", "the object has been modified")
        obj = copy.deepcopy(current)
        if subresource == "status":
            status = {**(obj.get("status") or {}), **patch.get("status", {})}
            obj["status"] = {k: v for k, v in status.items() if v is not None}
        else:
            if "finalizers" in (patch.get("metadata") or {}):
                obj["metadata"]["finalizers"] = patch["metadata"]["finalizers"]
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        if obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get("finalizers"):
            self.objects.pop(key)
            self.store.delete(key)
            self.writes.append((subresource or "object", patch))
            return obj
        self.objects[key] = obj
        self.writes.append((subresource or "object", patch))
        if self.lag:
            self.pending.append(copy.deepcopy(obj))
        else:
            self.store.put(copy.deepcopy(obj))
        return obj

    def status_writes(self) -> list[JSON]:
        return [p["status"] for kind, p in self.writes if kind == "status"]


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    async def record(self, obj: JSON, *, reason: str, note: str, type_: str = "Normal", action: str = "") -> None:
        self.events.append((type_, reason, note))

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]


class FakeFetched:
    """FetchedObjects for Secrets/ConfigMaps: objects by namespace/name."""

    def __init__(self, objects: Mapping[str, JSON] | None = None) -> None:
        self.objects = dict(objects or {})

    async def get(self, namespace: str, name: str) -> JSON | None:
        return self.objects.get(f"{namespace}/{name}")


class FakeClock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def host_object(name: str, *, labels: Mapping[str, str] | None = None, url: str | None = "unix:///x.sock",
                operator_class: str = "dockyard", deleting: bool = False) -> JSON:  # fmt: skip
    meta: JSON = {"name": name, "uid": f"uid-{name}", "labels": dict(labels or {}), "resourceVersion": "1"}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-26T06:00:00Z"
    spec: JSON = {"operatorClass": operator_class}
    if url is not None:
        spec["url"] = url
    return {"apiVersion": "dockyard.dev/v1alpha1", "kind": "DockerHost", "metadata": meta, "spec": spec}


def container_object(name: str, spec: Mapping[str, Any], *, namespace: str = "apps", status: JSON | None = None,
                     deleted_at: datetime.datetime | None = None, finalizers: bool = True,
                     annotations: Mapping[str, str] | None = None) -> JSON:  # fmt: skip
    meta: JSON = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{name}",
        "generation": 1,
        "finalizers": ["dockyard.dev/container-cleanup"] if finalizers else [],
        "annotations": dict(annotations or {}),
    }
    if deleted_at is not None:
        meta["deletionTimestamp"] = deleted_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerContainer",
        "metadata": meta,
        "spec": {"image": "dockyard-test/busybox:1", **spec},
        "status": dict(status or {}),
    }


class FakeApi:
    """An API server of several resources for controller tests: create (generateName too), get, delete and merge
    patches, each landing in that resource's informer store — at once, or only on `deliver()` for the resources
    listed in `slow` (a deliberately slow watch)."""

    def __init__(self, stores: Mapping[str, Store], *, slow: Iterable[str] = ()) -> None:
        self.stores = dict(stores)
        self.slow = set(slow)
        self.objects: dict[tuple[str, str], JSON] = {}
        self.pending: list[tuple[str, str, JSON | None]] = []
        self.calls: list[tuple[str, str, str]] = []
        self._ids = itertools.count(1)

    def _land(self, plural: str, key: str, obj: JSON | None) -> None:
        if plural in self.slow:
            self.pending.append((plural, key, copy.deepcopy(obj)))
            return
        self._apply(plural, key, obj)

    def _apply(self, plural: str, key: str, obj: JSON | None) -> None:
        store = self.stores.get(plural)
        if store is None:
            return
        if obj is None:
            store.delete(key)
        else:
            store.put(copy.deepcopy(obj))

    def deliver(self) -> None:
        for plural, key, obj in self.pending:
            self._apply(plural, key, obj)
        self.pending.clear()

    def put(self, plural: str, obj: JSON) -> JSON:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta["resourceVersion"] = str(next(self._ids))
        meta.setdefault("creationTimestamp", "2026-12-01T11:00:00Z")
        key = object_key(obj)
        self.objects[(plural, key)] = obj
        self._apply(plural, key, obj)
        return obj

    async def create(self, resource: Resource, body: JSON, *, namespace: str | None = None) -> JSON:
        obj = copy.deepcopy(body)
        meta = obj["metadata"]
        if "name" not in meta:
            meta["name"] = f"{meta.pop('generateName')}{next(self._ids):05d}"
        key = object_key(obj)
        if (resource.plural, key) in self.objects:
            raise kube_errors.ConflictError(409, "AlreadyExists", f"{key} already exists")
        meta["uid"] = f"uid-{meta['name']}"
        meta["resourceVersion"] = str(next(self._ids))
        meta["creationTimestamp"] = "2026-12-01T12:00:00Z"
        self.objects[(resource.plural, key)] = obj
        self.calls.append(("create", resource.plural, meta["name"]))
        self._land(resource.plural, key, obj)
        return copy.deepcopy(obj)

    async def create_with_raw_data(self, resource: Resource, body: JSON, *, namespace: str | None = None) -> JSON:
        return await self.create(resource, body, namespace=namespace)

    async def get(self, resource: Resource, name: str, *, namespace: str | None = None) -> JSON:
        key = f"{namespace}/{name}" if namespace else name
        found = self.objects.get((resource.plural, key))
        if found is None:
            raise kube_errors.NotFoundError(404, "NotFound", f"{key} not found")
        return copy.deepcopy(found)

    async def delete(self, resource: Resource, name: str, *, namespace: str | None = None) -> JSON:
        key = f"{namespace}/{name}" if namespace else name
        found = self.objects.pop((resource.plural, key), None)
        if found is None:
            raise kube_errors.NotFoundError(404, "NotFound", f"{key} not found")
        self.calls.append(("delete", resource.plural, name))
        self._land(resource.plural, key, None)
        return found

    async def merge_patch(self, resource: Resource, name: str, patch: JSON, *, namespace: str | None = None,
                          subresource: str | None = None) -> JSON:  # fmt: skip
        key = f"{namespace}/{name}" if namespace else name
        current = self.objects.get((resource.plural, key))
        if current is None:
            raise kube_errors.NotFoundError(404, "NotFound", f"{key} not found")
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            raise kube_errors.ConflictError(409, "Conflict", "modified")
        obj = _merge(copy.deepcopy(current), {k: v for k, v in patch.items()})
        obj["metadata"]["resourceVersion"] = str(next(self._ids))
        self.objects[(resource.plural, key)] = obj
        self.calls.append(("patch", resource.plural, name))
        self._land(resource.plural, key, obj)
        return copy.deepcopy(obj)


def _merge(target: JSON, patch: Mapping[str, Any]) -> JSON:
    """RFC 7386 merge patch."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            target[key] = _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target
