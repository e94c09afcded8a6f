"""DockerService reconciler: backends to the data plane, a Service and an EndpointSlice to the API server, status.

Per reconcile: the selected DockerContainers (from the namespace index of the informer cache) become the data
plane's backends at once — that is what makes an unready container stop getting connections within a second —
then the Service of the same name and the EndpointSlice pointing at the data plane's listeners are made or
corrected, and the status is written. A Service of that name that is not ours is never touched: the
ServiceCreated condition says so. The Service and the EndpointSlice carry our controller ownerReference, so the
garbage collector removes them with the DockerService.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable
from typing import Any

import pydantic
import structlog

from dockyard_operator.api.common import ConditionStatus
from dockyard_operator.api.dockerservice import (
    ENDPOINTSLICE_MANAGER,
    SERVICE_OWNER_LABEL,
    DockerService,
    DockerServiceStatus,
    ServiceConditionType,
    ServiceEndpoint,
)
from dockyard_operator.containers import indexing
from dockyard_operator.hosts import classes
from dockyard_operator.informer.store import Reader
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.recording import EventRecorder
from dockyard_operator.kube.resources import DOCKERSERVICES, ENDPOINTSLICES, SERVICES
from dockyard_operator.runtime.children import owner_reference
from dockyard_operator.runtime.conditions import Conditions
from dockyard_operator.runtime.consistency import WriteTracker
from dockyard_operator.runtime.plans import Event
from dockyard_operator.runtime.recording import record
from dockyard_operator.runtime.statuses import StatusWriter
from dockyard_operator.services.backends import Backend, backends, port_key
from dockyard_operator.services.dataplane import DataPlane

JSON = dict[str, Any]

#: Endpoints listed in status at most (the counts cover all).
MAX_LISTED = 64
#: Names EndpointSlices use for the Service they belong to, and for who manages them.
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def slice_name(service: str) -> str:
    return f"{service}-dockyard"


def _is_ours(obj: JSON, owner_uid: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("controller") and r.get("uid") == owner_uid for r in refs)


class ServiceReconciler:
    def __init__(
        self,
        *,
        kube: KubeClient,
        recorder: EventRecorder,
        services: Reader,
        containers: Reader,
        namespaces: Reader,
        kube_services: Reader,
        slices: Reader,
        dataplane: DataPlane,
        address: str | None,
        address_error: str = "",
        tracker: WriteTracker,
        operator_class: str,
        clock: Callable[[], datetime.datetime] = _now,
    ) -> None:
        self._kube = kube
        self._recorder = recorder
        self._services = services
        self._containers = containers
        self._namespaces = namespaces
        self._kube_services = kube_services
        self._slices = slices
        self._dataplane = dataplane
        self._address = address
        self._address_error = address_error
        self._class = operator_class
        self._clock = clock
        self._status = StatusWriter(kube=kube, resource=DOCKERSERVICES, model=DockerServiceStatus, tracker=tracker)
        self._log = structlog.get_logger("dockyard.dockerservice")

    def serves(self, namespace: str) -> bool:
        return classes.serves(self._namespaces.get(namespace), self._class)

    async def reconcile(self, key: str) -> float | None:
        obj = self._services.get(key)
        if obj is None or obj["metadata"].get("deletionTimestamp") or not self.serves(obj["metadata"]["namespace"]):
            await self._dataplane.remove(key)  # the garbage collector removes the Service and EndpointSlice
            return None
        meta = obj["metadata"]
        try:
            service = DockerService.model_validate(obj)
        except pydantic.ValidationError as exc:
            self._log.warning("cannot read a DockerService", key=key, error=str(exc))
            return None
        spec = service.spec
        selected = backends(spec, self._containers.by_index(indexing.BY_NAMESPACE, meta["namespace"]))
        listening: dict[str, int] = {}
        if self._address is not None:  # without an address nothing listens (the condition says why)
            listening = await self._dataplane.update(
                key,
                ports=[port_key(p) for p in spec.ports],
                backends=selected,
                affinity_timeout=spec.affinity_timeout(),
                preferred=_slice_ports(self._slices.get(f"{meta['namespace']}/{slice_name(meta['name'])}")),
            )
        ready = sum(1 for b in selected if b.ready)
        c = Conditions(service.status.conditions, generation=meta.get("generation"), now=self._clock())
        cluster_ip = await self._ensure_service(obj, service, c)
        if self._address is None:
            c.set(
                ServiceConditionType.SERVICE_CREATED, ConditionStatus.FALSE, "NoDataPlaneAddress", self._address_error
            )
        elif c.status(ServiceConditionType.SERVICE_CREATED) is ConditionStatus.TRUE and not await self._ensure_slice(
            obj, service, self._address, listening, ready > 0
        ):
            c.set(
                ServiceConditionType.SERVICE_CREATED,
                ConditionStatus.FALSE,
                "NameConflict",
                f"an EndpointSlice named {slice_name(meta['name'])} exists and is not Dockyard's; it is left alone",
            )
        if ready:
            c.set(
                ServiceConditionType.READY, ConditionStatus.TRUE, "EndpointsReady", f"{ready} of {len(selected)} ready"
            )
        else:
            why = "no DockerContainer matches the selector" if not selected else "none of the selected is Ready"
            c.set(ServiceConditionType.READY, ConditionStatus.FALSE, "NoReadyEndpoints", why)
        previous = service.status
        status = DockerServiceStatus(
            observed_generation=meta.get("generation"),
            ports=",".join(f"{p.port}/{p.protocol.value}" for p in spec.ports),
            ready_endpoints=ready,
            total_endpoints=len(selected),
            ready=f"{ready}/{len(selected)}",
            endpoints=[_listed(b) for b in selected[:MAX_LISTED]],
            conditions=c.result,
        ).model_copy(update={"cluster_ip": cluster_ip})
        await self._status.write(obj, status)
        events = []
        if previous.ready_endpoints and not ready:
            events.append(Event("NoReadyEndpoints", "the last Ready backend went away; connections are refused", True))
        elif previous.observed_generation is not None and not previous.ready_endpoints and ready:
            events.append(Event("EndpointsReady", "a Ready backend is back; connections are served again"))
        await record(self._recorder, obj, events)
        return None

    # -- the Service ------------------------------------------------------------------------------------------

    def _service_body(self, obj: JSON, service: DockerService) -> JSON:
        meta, template = obj["metadata"], service.spec.service
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "labels": {**template.labels, SERVICE_OWNER_LABEL: meta["name"]},
                "annotations": dict(template.annotations),
                "ownerReferences": [_owner(obj)],
            },
            "spec": {
                "type": template.type.value,
                # No selector: the endpoints are ours (the EndpointSlice), not Pods.
                "ports": [
                    {**({"name": p.name} if p.name else {}), "port": p.port, "protocol": "TCP"}
                    for p in service.spec.ports
                ],
            },
        }

    async def _ensure_service(self, obj: JSON, service: DockerService, c: Conditions) -> str | None:
        meta = obj["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        desired = self._service_body(obj, service)
        current = self._kube_services.get(key)
        if current is None:
            try:
                current = await self._kube.create(SERVICES, desired, namespace=meta["namespace"])
            except kube_errors.ConflictError:
                current = await self._kube.get(SERVICES, meta["name"], namespace=meta["namespace"])
        if not _is_ours(current, meta["uid"]):
            c.set(
                ServiceConditionType.SERVICE_CREATED,
                ConditionStatus.FALSE,
                "NameConflict",
                f"a Service named {meta['name']} exists and is not owned by this DockerService; it is left alone",
            )
            return None
        patch = _service_patch(current, desired)
        if patch:
            current = await self._kube.merge_patch(SERVICES, meta["name"], patch, namespace=meta["namespace"])
        c.set(ServiceConditionType.SERVICE_CREATED, ConditionStatus.TRUE, "Created", f"Service {meta['name']}")
        spec = current.get("spec") or {}
        cluster_ip = spec.get("clusterIP")
        return str(cluster_ip) if cluster_ip and cluster_ip != "None" else None

    # -- the EndpointSlice ------------------------------------------------------------------------------------

    async def _ensure_slice(
        self, obj: JSON, service: DockerService, address: str, listening: dict[str, int], ready: bool
    ) -> bool:
        """Make our EndpointSlice as desired; False when a slice of that name is not Dockyard's (left alone)."""
        meta = obj["metadata"]
        name = slice_name(meta["name"])
        address_type = "IPv6" if ipaddress.ip_address(address).version == 6 else "IPv4"
        desired: JSON = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": {
                    SERVICE_NAME_LABEL: meta["name"],
                    MANAGED_BY_LABEL: ENDPOINTSLICE_MANAGER,
                    SERVICE_OWNER_LABEL: meta["name"],
                },
                "ownerReferences": [_owner(obj)],
            },
            "addressType": address_type,
            # One endpoint, the data plane; ready only while some backend is, so kube-proxy refuses at once
            # instead of forwarding to a listener that can only reset.
            "endpoints": [{"addresses": [address], "conditions": {"ready": ready, "serving": ready}}],
            "ports": [
                {"name": port_key(p), "port": listening[port_key(p)], "protocol": "TCP"}
                for p in service.spec.ports
                if port_key(p) in listening
            ],
        }
        current = self._slices.get(f"{meta['namespace']}/{name}")
        if current is None:
            try:
                await self._kube.create(ENDPOINTSLICES, desired, namespace=meta["namespace"])
                return True
            except kube_errors.ConflictError:
                current = await self._kube.get(ENDPOINTSLICES, name, namespace=meta["namespace"])
        current_meta = current.get("metadata") or {}
        if (current_meta.get("labels") or {}).get(MANAGED_BY_LABEL) != ENDPOINTSLICE_MANAGER:
            return False  # someone else's slice of that name: never overwritten (the condition says so)
        if not _is_ours(current, meta["uid"]) or current.get("addressType") != desired["addressType"]:
            # Ours, from an earlier DockerService of the same name (the garbage collector removes it) or of another
            # address family (immutable): replaced.
            await self._kube.delete(ENDPOINTSLICES, name, namespace=meta["namespace"])
            await self._kube.create(ENDPOINTSLICES, desired, namespace=meta["namespace"])
            return True
        labels_differ = any(
            (current_meta.get("labels") or {}).get(k) != v for k, v in desired["metadata"]["labels"].items()
        )
        if labels_differ or any(current.get(f) != desired[f] for f in ("endpoints", "ports")):
            patch = {
                "metadata": {"labels": desired["metadata"]["labels"]},
                "endpoints": desired["endpoints"],
                "ports": desired["ports"],
            }
            await self._kube.merge_patch(ENDPOINTSLICES, name, patch, namespace=meta["namespace"])
        return True


def _owner(obj: JSON) -> JSON:
    # Objects from the informer's list carry no apiVersion/kind of their own.
    return owner_reference({"apiVersion": "dockyard.dev/v1alpha1", "kind": "DockerService", **obj})


def _service_patch(current: JSON, desired: JSON) -> JSON:
    """What to change in our Service so it is as desired; fields others default (clusterIP, nodePorts) stay."""
    patch: JSON = {}
    cur_meta, want_meta = current.get("metadata") or {}, desired["metadata"]
    for field in ("labels", "annotations"):
        have = cur_meta.get(field) or {}
        if any(have.get(k) != v for k, v in want_meta[field].items()):
            patch.setdefault("metadata", {})[field] = want_meta[field]
    cur_spec, want_spec = current.get("spec") or {}, desired["spec"]
    if cur_spec.get("selector"):
        # A selector added by hand would make the endpointslice controller add Pods beside our data plane.
        patch.setdefault("spec", {})["selector"] = None
    if cur_spec.get("type") != want_spec["type"]:
        patch.setdefault("spec", {})["type"] = want_spec["type"]
    have_ports = [(p.get("name"), p.get("port"), p.get("protocol")) for p in cur_spec.get("ports") or []]
    want_ports = [(p.get("name"), p["port"], p["protocol"]) for p in want_spec["ports"]]
    if have_ports != want_ports or "type" in patch.get("spec", {}):
        patch.setdefault("spec", {})["ports"] = want_spec["ports"]
    return patch


def _slice_ports(current: JSON | None) -> dict[str, int]:
    """The listener ports our EndpointSlice names now: bound again after a restart when free, so kube-proxy's
    rules stay right and a stale port never leads to another service's listener."""
    return {str(p.get("name") or ""): int(p["port"]) for p in (current or {}).get("ports") or [] if p.get("port")}


def _listed(backend: Backend) -> ServiceEndpoint:
    return ServiceEndpoint(container=backend.container, host=backend.host, ip=backend.ip, ready=backend.ready)
