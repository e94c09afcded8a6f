"""Uninstall with `kubectl delete -k`: the operator keeps enough identity to finish its own cleanup.

`kubectl delete -k` deletes the namespace, the CRDs, the RBAC and the Deployment within a second. Deleting a CRD
marks every DockerContainer and DockerHost for deletion, and their finalizers need the operator: it removes the
Docker containers through the agents, then the finalizers. But the same command deletes the operator's
ServiceAccount and RBAC: a token stops authenticating once its ServiceAccount is gone and permissions end with
their binding. The operator would remove the Docker containers and then fail to release the finalizers, leaving
the CRs, the CRDs and the namespace Terminating for ever.

What the leader does in a cluster (--pod-name set):
- it keeps a copy of its ClusterRole's rules in `dockyard-operator-uninstall` (a ClusterRole and a ClusterRoleBinding
  to its ServiceAccount, the binding owned by the role): made at run time, so `kubectl delete -k` does not delete
  them. It can only copy what it already holds (RBAC's escalation check).
- its ServiceAccount, Role and RoleBinding carry the finalizer `dockyard.dev/uninstall`, so the namespace's
  deletion only marks them: a marked ServiceAccount's tokens stay valid (for a minute) and marked bindings still
  authorize.
- told to stop (SIGTERM) while its namespace or ServiceAccount is marked for deletion, it keeps reconciling until no
  DockerContainer or DockerHost is left (at most `drain_timeout`, inside the Pod's grace period; sooner when nothing
  is being deleted), releases the Role, RoleBinding and ServiceAccount, and last deletes the copy, whose binding the
  garbage collector removes. That last request runs after its ServiceAccount is gone, on kube-apiserver's 10 s
  cache of successful token authentications; with several API servers it may miss, and the copy stays behind
  (it blocks nothing; docs/operator.md says so).
- on any other graceful stop it releases the three finalizers at once, so a stopped or scaled-down operator never
  blocks a deletion (the next leader puts them back).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from dockyard_operator.kube import errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    DOCKERCONTAINERS,
    DOCKERHOSTS,
    LEASES,
    NAMESPACES,
    ROLEBINDINGS,
    ROLES,
    SERVICEACCOUNTS,
    Resource,
)

UNINSTALL_FINALIZER = "dockyard.dev/uninstall"
IDENTITY_NAME = "dockyard-operator"  # the ServiceAccount, Role(Binding), ClusterRole(Binding) and Lease
COPY_NAME = "dockyard-operator-uninstall"
#: Released in this order: the ServiceAccount last (every later request needs it, or the token cache). The Lease
#: too: the namespace's deletion would delete it, renewals would fail and the leader would step down mid-drain.
GUARDED: tuple[Resource, ...] = (LEASES, ROLES, ROLEBINDINGS, SERVICEACCOUNTS)
_ATTEMPTS = 5  # read-modify-write attempts against concurrent writers (optimistic concurrency)
_CHECK_TIMEOUT = 5.0  # seconds for "are we being uninstalled?" at SIGTERM
_RELEASE_TIMEOUT = 10.0  # seconds for releasing the finalizers and deleting the copy at shutdown
_LABELS = {"app.kubernetes.io/name": "dockyard", "app.kubernetes.io/component": "operator"}

log = structlog.get_logger(__name__)


class UninstallGuard:
    def __init__(self, *, client: KubeClient, namespace: str, drain_timeout: float = 45.0, quiet: float = 5.0) -> None:
        self._client = client
        self._namespace = namespace
        self._drain_timeout = drain_timeout
        self._quiet = quiet
        self.uninstall_seen = False

    async def protect(self) -> None:
        """The finalizers on our namespaced identity and Lease, then the run-time copy of our cluster rules."""
        for resource in GUARDED:
            await self._set_finalizer(resource, present=True)
        role = await self._client.get(CLUSTERROLES, IDENTITY_NAME)
        copy: dict[str, Any] = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": COPY_NAME, "labels": _LABELS},
            "rules": role.get("rules") or [],
        }
        try:
            created = await self._client.create(CLUSTERROLES, copy)
        except errors.ConflictError:
            created = await self._client.merge_patch(CLUSTERROLES, COPY_NAME, {"rules": copy["rules"]})
        copy_uid = (created.get("metadata") or {}).get("uid")
        subjects = [{"kind": "ServiceAccount", "name": IDENTITY_NAME, "namespace": self._namespace}]
        binding: dict[str, Any] = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {
                "name": COPY_NAME,
                "labels": _LABELS,
                "ownerReferences": [
                    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "name": COPY_NAME,
                     "uid": copy_uid}
                ],
            },
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": COPY_NAME},
            "subjects": subjects,
        }  # fmt: skip
        try:
            await self._client.create(CLUSTERROLEBINDINGS, binding)
        except errors.ConflictError:
            # From an earlier leader. Kept only if it is owned by this copy (an older copy's binding is about to be
            # garbage collected) and binds exactly our ServiceAccount; otherwise replaced.
            current = await self._client.get(CLUSTERROLEBINDINGS, COPY_NAME)
            owners = [r.get("uid") for r in (current.get("metadata") or {}).get("ownerReferences") or []]
            if owners != [copy_uid] or current.get("subjects") != subjects:
                await self._client.delete(CLUSTERROLEBINDINGS, COPY_NAME)
                await self._client.create(CLUSTERROLEBINDINGS, binding)

    async def uninstalling(self) -> bool:
        """True when our namespace or our ServiceAccount is marked for deletion: the operator is being removed.

        `kubectl delete -k` deletes the namespace first; its Pods may get SIGTERM before the namespace controller
        (or the command) reaches the ServiceAccount, so the namespace is the earlier signal.
        """
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT):
                namespaces = await self._client.list(
                    NAMESPACES, field_selector=f"metadata.name={self._namespace}", metadata_only=True
                )
                sa = await self._client.get(SERVICEACCOUNTS, IDENTITY_NAME, namespace=self._namespace)
        except (errors.KubeError, TimeoutError) as exc:
            log.warning("uninstall: could not tell whether the operator is being removed", error=str(exc))
            return False
        marked = [(ns.get("metadata") or {}).get("deletionTimestamp") for ns in namespaces.get("items") or []]
        self.uninstall_seen = any(marked) or bool((sa.get("metadata") or {}).get("deletionTimestamp"))
        log.info("stopping", uninstalling=self.uninstall_seen)
        return self.uninstall_seen

    async def drain(self) -> None:
        """drain_timeout bounds the whole drain, a slow API server included (the Pod's grace period is 60 s)."""
        try:
            async with asyncio.timeout(self._drain_timeout):
                await self._drain()
        except TimeoutError:
            log.warning("uninstall: objects still left when the drain timed out", timeout=self._drain_timeout)

    async def _drain(self) -> None:
        """Keep reconciling while DockerContainers or DockerHosts are being deleted (or may soon be: the CRDs are
        deleted right after the namespace), until none is left, none has been marked for `quiet` seconds, or
        drain_timeout passes."""
        log.info("uninstall: finishing the cleanup of DockerContainers and DockerHosts before exiting")
        last_marked = time.monotonic()
        while True:
            now = time.monotonic()
            left = marked = 0
            for resource in (DOCKERCONTAINERS, DOCKERHOSTS):
                try:
                    items = (await self._client.list(resource, metadata_only=True)).get("items") or []
                except errors.NotFoundError:
                    continue  # the CRD is gone: nothing of that kind is left
                except errors.KubeError as exc:
                    log.warning("uninstall: could not list", kind=resource.plural, error=str(exc))
                    left += 1
                    marked += 1
                    continue
                left += len(items)
                marked += sum(1 for i in items if (i.get("metadata") or {}).get("deletionTimestamp"))
            if marked:
                last_marked = now
            if left == 0:
                log.info("uninstall: nothing left to clean up")
                return
            if now - last_marked >= self._quiet:
                log.info("uninstall: nothing is being deleted; leaving the rest in place", left=left)
                return
            await asyncio.sleep(0.5)

    async def release(self) -> None:
        """At every graceful stop: the finalizers go; at uninstall the run-time copy too (last). Bounded."""
        try:
            async with asyncio.timeout(_RELEASE_TIMEOUT):
                await self._release()
        except TimeoutError:
            log.warning("could not release our identity's finalizers in time; docs/operator.md (Uninstall)")

    async def _release(self) -> None:
        for resource in GUARDED:
            try:
                await self._set_finalizer(resource, present=False)
            except errors.KubeError as exc:
                log.warning("could not remove the uninstall finalizer", kind=resource.plural, error=str(exc))
        if self.uninstall_seen:
            try:
                await self._client.delete(CLUSTERROLES, COPY_NAME)
            except errors.KubeError as exc:
                log.warning("uninstall: could not delete the run-time ClusterRole", name=COPY_NAME, error=str(exc))

    async def _set_finalizer(self, resource: Resource, *, present: bool) -> None:
        namespace = self._namespace if resource.namespaced else None
        for _ in range(_ATTEMPTS):
            try:
                obj = await self._client.get(resource, IDENTITY_NAME, namespace=namespace)
            except errors.NotFoundError:
                return  # installed under other names: nothing of ours to keep
            meta = obj.get("metadata") or {}
            finalizers = list(meta.get("finalizers") or [])
            if (UNINSTALL_FINALIZER in finalizers) == present:
                return
            if present:
                finalizers.append(UNINSTALL_FINALIZER)
            else:
                finalizers.remove(UNINSTALL_FINALIZER)
            patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta.get("resourceVersion")}}
            try:
                await self._client.merge_patch(resource, IDENTITY_NAME, patch, namespace=namespace)
                return
            except errors.ConflictError:
                continue
        log.warning("could not update the uninstall finalizer: conflicts", kind=resource.plural)
