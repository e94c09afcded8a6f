"""DockerDeployment reconciler: gather the replicas and hosts, let decisions.py decide, create/delete/evict
replicas, keep the revisions, write the status.

Like every client-go workload controller it trusts its cache only when its expectations are met: after creating
or deleting replicas it waits until the informer has seen each of them, so a slow watch can never make it create
or delete one twice. Replicas it does not own yet but that match its selector (no controller, same namespace) are
adopted; replicas it owns that no longer match are released — the ControllerRefManager's rules.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable, Mapping
from typing import Any

import pydantic
import structlog

from dockyard_operator.api.common import LabelSelector
from dockyard_operator.api.dockerdeployment import DockerDeployment, DockerDeploymentStatus
from dockyard_operator.containers import deletion, indexing, scheduling
from dockyard_operator.deployments import decisions, revisions
from dockyard_operator.deployments.decisions import Facts, HostPort, HostSlot, Replica
from dockyard_operator.hosts import classes
from dockyard_operator.informer.store import Reader
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.recording import EventRecorder
from dockyard_operator.kube.resources import CONTROLLERREVISIONS, DOCKERCONTAINERS, DOCKERDEPLOYMENTS
from dockyard_operator.runtime.children import (
    condition_of,
    create_children,
    delete_children,
    owner_reference,
    parse_time,
)
from dockyard_operator.runtime.consistency import WriteTracker
from dockyard_operator.runtime.controller import CONTROLLER_UID_INDEX, controller_ref
from dockyard_operator.runtime.expectations import Expectations
from dockyard_operator.runtime.plans import Event
from dockyard_operator.runtime.recording import record
from dockyard_operator.runtime.statuses import StatusWriter

JSON = dict[str, Any]

#: On a replica replaced because its host stayed unreachable: when. It is deleted once its host is back.
EVICTED_ANNOTATION = "dockyard.dev/evicted"
#: Index of the revision store: the DockerDeployment (namespace/name) a ControllerRevision belongs to.
BY_DEPLOYMENT = "deployment"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def replica_of(obj: JSON) -> Replica:
    """A DockerContainer as the deployment's decision sees it."""
    meta = obj["metadata"]
    ready = condition_of(obj, "Ready")
    reachable = condition_of(obj, "HostReachable")
    scheduled = condition_of(obj, "Scheduled")
    return Replica(
        name=meta["name"],
        uid=meta["uid"],
        template_hash=(meta.get("labels") or {}).get(revisions.TEMPLATE_HASH_LABEL),
        host=(obj.get("status") or {}).get("host") or ((obj.get("spec") or {}).get("hostRef") or {}).get("name"),
        created=parse_time(meta.get("creationTimestamp")) or _now(),
        ready=ready.get("status") == "True",
        ready_since=parse_time(ready.get("lastTransitionTime")) if ready.get("status") == "True" else None,
        deleting=bool(meta.get("deletionTimestamp")),
        evicted=EVICTED_ANNOTATION in (meta.get("annotations") or {}),
        unreachable_since=parse_time(reachable.get("lastTransitionTime"))
        if reachable.get("status") == "False"
        else None,
        lost_host=scheduled.get("status") == "False" and scheduled.get("reason") in decisions.HOST_LOST_REASONS,
    )


def host_ports_of(spec: Mapping[str, Any]) -> frozenset[HostPort]:
    """The host ports a DockerContainer spec publishes, as (port, protocol, hostIP)."""
    return frozenset(
        (int(p["hostPort"]), str(p.get("protocol") or "TCP"), str(p.get("hostIP") or ""))
        for p in spec.get("ports") or []
        if p.get("hostPort")
    )


def _same_ports(ports: frozenset[HostPort]) -> frozenset[HostPort]:
    # Two bindings clash on (port, protocol) whatever their addresses: Docker refuses 0.0.0.0 next to one IP.
    return frozenset((port, proto, "") for port, proto, _ in ports)


class DeploymentReconciler:
    def __init__(
        self,
        *,
        kube: KubeClient,
        recorder: EventRecorder,
        deployments: Reader,
        containers: Reader,
        revision_store: Reader,
        namespaces: Reader,
        host_views: Callable[[], dict[str, scheduling.HostView]],
        expectations: Expectations,
        tracker: WriteTracker,
        operator_class: str,
    ) -> None:
        self._kube = kube
        self._recorder = recorder
        self._deployments = deployments
        self._containers = containers
        self._revisions = revision_store
        self._namespaces = namespaces
        self._host_views = host_views
        self._expectations = expectations
        self._class = operator_class
        self._status = StatusWriter(
            kube=kube, resource=DOCKERDEPLOYMENTS, model=DockerDeploymentStatus, tracker=tracker
        )
        self._log = structlog.get_logger("dockyard.dockerdeployment")

    def serves(self, namespace: str) -> bool:
        return classes.serves(self._namespaces.get(namespace), self._class)

    async def reconcile(self, key: str) -> float | None:
        obj = self._deployments.get(key)
        if obj is None:
            self._expectations.forget(key)
            return None
        meta = obj["metadata"]
        namespace = str(meta["namespace"])
        if not self.serves(namespace) or meta.get("deletionTimestamp"):
            return None  # deletion: the garbage collector removes the replicas (their finalizers the containers)
        try:
            deployment = DockerDeployment.model_validate(obj)
        except pydantic.ValidationError as exc:
            self._log.warning("cannot read a DockerDeployment", key=key, error=str(exc))
            return None
        if not self._expectations.satisfied(key):
            self._log.debug("waiting for the cache to show our creations and deletions", key=key)
            return None  # the informer has not shown our last creations/deletions yet; their events wake us
        owned = await self._claim(obj, deployment)
        spec = deployment.spec
        update_hash = revisions.template_hash(spec.template)
        revision = await self._ensure_revision(obj, deployment, update_hash)
        hosts = self._slots(deployment, namespace)
        facts = Facts(
            spec=spec,
            status=deployment.status,
            generation=meta.get("generation"),
            name=meta["name"],
            update_hash=update_hash,
            update_revision=revision["metadata"]["name"],
            replicas=tuple(replica_of(o) for o in owned),
            hosts=hosts,
            host_ports=_same_ports(host_ports_of(spec.template.spec.model_dump(by_alias=True, exclude_none=True))),
            now=_now(),
        )
        plan = decisions.decide(facts)
        events = list(plan.events)
        await self._evict(key, plan.evict, owned)
        await self._delete(key, plan.delete, owned, events)
        await self._create(key, obj, deployment, update_hash, revisions.revision_number(revision), plan.create, events)
        await self._prune(obj, deployment, owned, revision["metadata"]["name"])
        await self._status.write(obj, plan.status)
        await record(self._recorder, obj, events)
        return plan.requeue_after

    # -- ownership ------------------------------------------------------------------------------------------

    async def _claim(self, obj: JSON, deployment: DockerDeployment) -> list[JSON]:
        """The replicas this deployment controls, after adopting matching orphans and releasing non-matching ones."""
        meta = obj["metadata"]
        selector: LabelSelector = deployment.spec.selector
        owned = []
        for child in self._containers.by_index(CONTROLLER_UID_INDEX, meta["uid"]):
            if selector.matches(dict(child["metadata"].get("labels") or {})) or child["metadata"].get(
                "deletionTimestamp"
            ):
                owned.append(child)
            else:
                await self._set_owner(child, None)  # its labels no longer match: release it, as a ReplicaSet would
        for candidate in self._containers.by_index(indexing.BY_NAMESPACE, meta["namespace"]):
            cmeta = candidate["metadata"]
            if controller_ref(candidate) is not None or cmeta.get("deletionTimestamp"):
                continue
            if selector.matches(dict(cmeta.get("labels") or {})):
                adopted = await self._set_owner(candidate, obj)
                if adopted is not None:
                    owned.append(adopted)
        return owned

    async def _set_owner(self, child: JSON, owner: JSON | None) -> JSON | None:
        meta = child["metadata"]
        refs = [r for r in meta.get("ownerReferences") or [] if not r.get("controller")]
        if owner is not None:
            refs.append(_owner_ref(owner))
        patch = {"metadata": {"ownerReferences": refs or None, "resourceVersion": meta["resourceVersion"]}}
        try:
            return await self._kube.merge_patch(DOCKERCONTAINERS, meta["name"], patch, namespace=meta["namespace"])
        except (kube_errors.ConflictError, kube_errors.NotFoundError):
            return None  # changed or gone meanwhile: the next reconcile sees it as it is now

    # -- revisions ------------------------------------------------------------------------------------------

    def _revisions_of(self, obj: JSON) -> list[JSON]:
        meta = obj["metadata"]
        return [
            r
            for r in self._revisions.by_index(BY_DEPLOYMENT, f"{meta['namespace']}/{meta['name']}")
            if (controller_ref(r) or {}).get("uid") == meta["uid"]
        ]

    async def _ensure_revision(self, obj: JSON, deployment: DockerDeployment, hash_: str) -> JSON:
        """The ControllerRevision of the current template: created, or renumbered to the newest on a rollback."""
        meta = obj["metadata"]
        existing = self._revisions_of(obj)
        name = revisions.revision_name(meta["name"], hash_)
        current = next((r for r in existing if r["metadata"]["name"] == name), None)
        newest = max((revisions.revision_number(r) for r in existing), default=0)
        if current is not None and revisions.revision_number(current) < newest:
            # A rollback to an older template: it becomes the newest revision, as a fresh object with the same
            # name and the next number (the number cannot simply be patched on objects from before the data was
            # stored canonically; see KubeClient.create_with_raw_data).
            self._log.info("template of an older revision is current again", revision=name, number=newest + 1)
            with contextlib.suppress(kube_errors.NotFoundError):
                await self._kube.delete(CONTROLLERREVISIONS, name, namespace=meta["namespace"])
            current = None
        if current is None:
            body: JSON = {
                "apiVersion": "apps/v1",
                "kind": "ControllerRevision",
                "metadata": {
                    "name": name,
                    "namespace": meta["namespace"],
                    "labels": {revisions.DEPLOYMENT_LABEL: meta["name"], revisions.TEMPLATE_HASH_LABEL: hash_},
                    "ownerReferences": [_owner_ref(obj)],
                },
                "data": {"spec": {"template": revisions.template_json(deployment.spec.template)}},
                "revision": newest + 1,
            }
            try:
                current = await self._kube.create_with_raw_data(CONTROLLERREVISIONS, body, namespace=meta["namespace"])
            except kube_errors.ConflictError:
                current = await self._kube.get(CONTROLLERREVISIONS, name, namespace=meta["namespace"])
        number = str(revisions.revision_number(current))
        if (meta.get("annotations") or {}).get(revisions.REVISION_ANNOTATION) != number:
            patch = {"metadata": {"annotations": {revisions.REVISION_ANNOTATION: number}}}
            await self._kube.merge_patch(DOCKERDEPLOYMENTS, meta["name"], patch, namespace=meta["namespace"])
        return current

    async def _prune(self, obj: JSON, deployment: DockerDeployment, owned: list[JSON], current: str) -> None:
        meta = obj["metadata"]
        in_use = {
            revisions.revision_name(meta["name"], str((o["metadata"].get("labels") or {}).get(
                revisions.TEMPLATE_HASH_LABEL)))
            for o in owned
        }  # fmt: skip
        for name in revisions.to_prune(
            self._revisions_of(obj), keep=deployment.spec.revision_history_limit, in_use=in_use, current=current
        ):
            with contextlib.suppress(kube_errors.NotFoundError):
                await self._kube.delete(CONTROLLERREVISIONS, name, namespace=meta["namespace"])

    # -- hosts ----------------------------------------------------------------------------------------------

    def _slots(self, deployment: DockerDeployment, namespace: str) -> tuple[HostSlot, ...] | None:
        template = deployment.spec.template.spec
        if template.host_selector is None:
            return None
        views = self._host_views()
        ns_labels = dict(((self._namespaces.get(namespace) or {}).get("metadata") or {}).get("labels") or {})
        slots = []
        for name in scheduling.eligible_hosts(
            spec=template, namespace_labels=ns_labels, hosts=views, operator_class=self._class
        ):
            view = views[name]
            if view.deleting or view.invalid:
                continue
            taken: set[HostPort] = set()
            for placed in self._containers.by_index(indexing.BY_HOST, name):
                if (placed.get("status") or {}).get("host") == name and not placed["metadata"].get("deletionTimestamp"):
                    taken |= _same_ports(host_ports_of(placed.get("spec") or {}))
            slots.append(HostSlot(name=name, reachable=view.reachable, taken_ports=frozenset(taken)))
        return tuple(slots)

    # -- acting ---------------------------------------------------------------------------------------------

    async def _evict(self, key: str, names: tuple[str, ...], owned: list[JSON]) -> None:
        by_name = {o["metadata"]["name"]: o for o in owned}
        for name in names:
            child = by_name[name]
            patch = {"metadata": {"annotations": {EVICTED_ANNOTATION: _now().strftime("%Y-%m-%dT%H:%M:%SZ")}}}
            try:
                await self._kube.merge_patch(DOCKERCONTAINERS, name, patch, namespace=child["metadata"]["namespace"])
            except kube_errors.NotFoundError:
                continue

    async def _delete(self, key: str, names: tuple[str, ...], owned: list[JSON], events: list[Event]) -> None:
        by_name = {o["metadata"]["name"]: o for o in owned}
        victims = [by_name[n] for n in names if n in by_name]
        await delete_children(self._kube, self._expectations, key, DOCKERCONTAINERS, victims, events, noun="replica")

    async def _create(
        self,
        key: str,
        obj: JSON,
        deployment: DockerDeployment,
        hash_: str,
        revision: int,
        hosts: tuple[str | None, ...],
        events: list[Event],
    ) -> None:
        meta = obj["metadata"]
        template = deployment.spec.template
        bodies: list[JSON] = []
        for host in hosts:
            spec = template.spec.model_dump(by_alias=True, mode="json", exclude_none=True)
            if host is not None:
                spec.pop("hostSelector", None)
                spec["hostRef"] = {"name": host}
            bodies.append(
                {
                    "apiVersion": "dockyard.dev/v1alpha1",
                    "kind": "DockerContainer",
                    "metadata": {
                        "generateName": f"{meta['name'][:40].rstrip('-.')}-{hash_}-",
                        "namespace": meta["namespace"],
                        "labels": {**template.metadata.labels, revisions.TEMPLATE_HASH_LABEL: hash_},
                        "annotations": {
                            **template.metadata.annotations,
                            revisions.REVISION_ANNOTATION: str(revision),
                        },
                        "ownerReferences": [_owner_ref(obj)],
                        # Born with the DockerContainer controller's finalizer: one write less per replica.
                        "finalizers": [deletion.FINALIZER],
                    },
                    "spec": spec,
                }
            )
        await create_children(
            self._kube, self._expectations, key, DOCKERCONTAINERS, bodies, events,
            noun="replica", namespace=meta["namespace"], where=hosts,
        )  # fmt: skip


def _owner_ref(owner: JSON) -> JSON:
    return owner_reference({"apiVersion": "dockyard.dev/v1alpha1", "kind": "DockerDeployment", **owner})
