"""DockerContainer reconciler: gather the facts, let the pure decisions decide, perform, write the status.

Level-triggered: every call reads the latest object from the cache and the container's real state from its host,
whatever woke it (a spec change, a Docker event, a Secret rotation, a host reconnect, the resync timer).

One reconcile:
1. placement (scheduling.py): leave the previous host if the decision moved away from it, then record the new
   host in status with the object's resourceVersion as a precondition *before* anything is created there, so a
   crash or a second operator can never start a second copy elsewhere; a first placement also removes copies a
   crash may have left on the other eligible hosts (found by the uid label);
2. the host: no verdict yet (say nothing), unreachable (report, touch nothing), or reachable;
3. look (list by uid label, inspect the keeper) -> decide (decisions.py) -> perform (executing.py), repeated until
   a plan has no actions; its status is written once, only if it changed.

Safety rules: a container is found by its uid label, never by name alone; nothing destructive happens on stale
data; deletion (deletion.py) removes the container before the finalizer goes.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import time
from collections.abc import Callable, Mapping
from typing import Any

import pydantic
import structlog

from dockyard_operator.api import labels
from dockyard_operator.api.common import ConditionStatus
from dockyard_operator.api.dockercontainer import (
    ContainerConditionType,
    ContainerReason,
    DockerContainer,
    DockerContainerSpec,
    DockerContainerStatus,
)
from dockyard_operator.api.dockerhost import DockerHostSpec
from dockyard_operator.containers import decisions, deletion, desired, indexing, reporting, scheduling
from dockyard_operator.containers.backoffs import Failure, Memory
from dockyard_operator.containers.decisions import BackOffSettings, Found, Plan, Situation
from dockyard_operator.containers.errors import ContainersError
from dockyard_operator.containers.executing import Created, Executor, StepFailed
from dockyard_operator.dockerapi import errors as docker_errors
from dockyard_operator.dockerapi.client import DockerClient
from dockyard_operator.hosts import classes
from dockyard_operator.hosts.connections import HostConnections
from dockyard_operator.informer.store import Reader, object_key
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.recording import EventRecorder
from dockyard_operator.kube.resources import DOCKERCONTAINERS
from dockyard_operator.runtime import finalizers
from dockyard_operator.runtime.conditions import Conditions
from dockyard_operator.runtime.consistency import WriteTracker
from dockyard_operator.runtime.fetching import FetchedObjects
from dockyard_operator.runtime.plans import Event
from dockyard_operator.runtime.recording import record
from dockyard_operator.runtime.statuses import StatusWriter
from dockyard_operator.services import imports
from dockyard_operator.services.importing import Gateways
from dockyard_operator.settings import ReconcileSettings

JSON = dict[str, Any]

#: Look-decide-act rounds per reconcile. A create takes two (act, then look at the result); a drift recreation
#: three. More means something keeps changing under us: write what we know and come back.
MAX_ROUNDS = 5


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _decode(secret: Mapping[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


class ContainerReconciler:
    def __init__(
        self,
        *,
        kube: KubeClient,
        recorder: EventRecorder,
        hosts: HostConnections,
        containers: Reader,
        dockerhosts: Reader,
        namespaces: Reader,
        secrets: FetchedObjects,
        config_maps: FetchedObjects,
        settings: ReconcileSettings,
        tracker: WriteTracker,
        operator_class: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        self._recorder = recorder
        self._hosts = hosts
        self._containers = containers
        self._dockerhosts = dockerhosts
        self._namespaces = namespaces
        self._secrets = secrets
        self._config_maps = config_maps
        self._settings = settings
        self._class = operator_class
        self._monotonic = monotonic  # test seam
        self._status = StatusWriter(kube=kube, resource=DOCKERCONTAINERS, model=DockerContainerStatus, tracker=tracker)
        self.gateways = Gateways()  # shared with the import listeners' sync (run.py)
        #: The ports a host's agent could not listen on for imports (set by run.py to the import sync's record).
        self.import_failures: Callable[[str], Mapping[int, str]] = lambda _host: {}
        self._tracker = tracker
        self._back_off = BackOffSettings(
            initial=settings.failure_backoff[0],
            cap=settings.failure_backoff[1],
            unhealthy_initial=settings.unhealthy_restart_backoff[0],
            unhealthy_cap=settings.unhealthy_restart_backoff[1],
        )
        self._memory: dict[str, tuple[str, Memory]] = {}  # key -> (uid, memory)
        self._log = structlog.get_logger("dockyard.dockercontainer")

    # -- facts ----------------------------------------------------------------------------------------------

    def serves(self, namespace: str) -> bool:
        """Whether this operator's class serves the namespace's DockerContainers.

        A namespace not in the cache yet (its watch event may trail the DockerContainer's) belongs to nobody for
        now: guessing "default class" could let the default operator act on another class's object. The
        namespace's own event wakes its DockerContainers once it arrives.
        """
        namespace_obj = self._namespaces.get(namespace)
        return namespace_obj is not None and classes.namespace_class(namespace_obj) == self._class

    def host_load(self, host: str) -> int:
        """DockerContainers currently placed on `host` (for scheduling and DockerHost status)."""
        return len(indexing.placed_on(self._containers, host))

    def host_views(self) -> dict[str, scheduling.HostView]:
        views = {}
        for obj in self._dockerhosts.values():
            name = str(obj["metadata"]["name"])
            invalid = False
            try:
                spec = DockerHostSpec.model_validate(obj.get("spec") or {})
            except pydantic.ValidationError:
                # Unreadable by this operator (a newer CRD?): it still exists, so nothing on it may be released
                # or duplicated elsewhere; it just takes nothing new.
                spec = DockerHostSpec.model_construct(operator_class=classes.host_class(obj))
                invalid = True
            conn = self._hosts.get(name) if spec.operator_class == self._class else None
            views[name] = scheduling.HostView(
                name=name,
                spec=spec,
                invalid=invalid,
                labels=dict(obj["metadata"].get("labels") or {}),
                deleting=bool(obj["metadata"].get("deletionTimestamp")),
                decided=conn is not None and conn.state.decided,
                reachable=conn is not None and conn.state.reachable,
                message=conn.state.message if conn is not None else "no connection",
            )
        return views

    def _docker(self, host: str) -> DockerClient | None:
        conn = self._hosts.get(host)
        return conn.client if conn is not None and conn.state.reachable else None

    def _memory_of(self, key: str, uid: str) -> Memory:
        held = self._memory.get(key)
        return held[1] if held is not None and held[0] == uid else Memory()

    async def _refs(self, namespace: str, spec: Any) -> desired.ResolvedRefs:
        secrets: dict[str, Mapping[str, bytes]] = {}
        for name in desired.referenced_secrets(spec):
            obj = await self._secrets.get(namespace, name)
            if obj is not None:
                secrets[name] = _decode(obj)
        config_maps: dict[str, Mapping[str, str]] = {}
        for name in desired.referenced_config_maps(spec):
            obj = await self._config_maps.get(namespace, name)
            if obj is not None:
                config_maps[name] = dict(obj.get("data") or {})
        return desired.ResolvedRefs(secrets=secrets, config_maps=config_maps)

    # -- entry ------------------------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        obj = self._containers.get(key)
        if obj is None:
            self._memory.pop(key, None)
            return None
        namespace = str(obj["metadata"]["namespace"])
        if not self.serves(namespace):
            return None  # another operator class serves this namespace: never write its status
        if obj["metadata"].get("deletionTimestamp"):
            # Before validation: an object this operator can no longer read must still be able to go.
            return await self._finalize(obj)
        try:
            dc = DockerContainer.model_validate(obj)
        except pydantic.ValidationError as exc:
            memory = self._memory_of(key, str(obj["metadata"].get("uid")))
            plan = reporting.invalid(
                self._status.read(obj),
                str(exc),
                generation=obj["metadata"].get("generation"),
                now=_now(),
                memory=memory,
            )
            await self._status.write(obj, plan.status)
            return None
        # Go on with the object as stored: waiting for the watch event would cost every new container a queue
        # round (a second or more when the queue is busy), and the response is at least as new as that event.
        added = await finalizers.add(self._kube, DOCKERCONTAINERS, obj, deletion.FINALIZER, self._tracker)
        return await self._sync(added or obj, dc)

    async def _write(self, obj: JSON, plan: Plan, *, claim: bool = False) -> JSON:
        response = await self._status.write(obj, plan.status, claim=claim)
        await record(self._recorder, obj, plan.events)
        if response is None:
            return obj
        return response

    def _remember(self, key: str, uid: str, memory: Memory) -> None:
        self._memory[key] = (uid, memory)

    async def _sync(self, obj: JSON, dc: DockerContainer) -> float | None:
        meta, spec = dc.metadata, dc.spec
        key, uid, generation = meta.key, str(meta.uid), meta.generation
        namespace = str(meta.namespace)
        memory = self._memory_of(key, uid)
        status = dc.status
        hosts = self.host_views()
        ns_labels = dict(((self._namespaces.get(namespace) or {}).get("metadata") or {}).get("labels") or {})
        decision = scheduling.schedule(
            spec=spec,
            namespace=namespace,
            namespace_labels=ns_labels,
            current_host=status.host,
            hosts=hosts,
            operator_class=self._class,
            load=self.host_load,
        )

        leaving = scheduling.departure(
            previous=status.host, target=decision.host, hosts=hosts, operator_class=self._class
        )
        if leaving is not None:
            if leaving.how is scheduling.Leave.WAIT:
                plan = reporting.waiting_to_leave(status, leaving, generation=generation, now=_now(), memory=memory)
                await self._write(obj, plan)
                return None  # the host's return (or deletion) wakes us
            if leaving.how is scheduling.Leave.REMOVE:
                await self._remove_copies(leaving.host, uid, spec.stop_grace_period_seconds)
            plan = reporting.left(status, leaving, generation=generation, now=_now(), memory=memory)
            obj = await self._write(obj, plan)
            status, memory = plan.status, plan.memory
            self._remember(key, uid, memory)

        if decision.host is None:
            plan = reporting.unschedulable(status, decision, generation=generation, now=_now(), memory=memory)
            await self._write(obj, plan)
            return None  # a host appearing, connecting or changing labels wakes us
        host = decision.host

        placed = reporting.scheduled(status, decision, generation=generation, now=_now(), memory=memory)
        if status.host != host:
            # The claim: status.host is written (with our read version as precondition) before anything exists
            # on the host. A conflict means someone else wrote first: the retry reads what they wrote.
            obj = await self._write(obj, placed, claim=True)
            if spec.host_selector is not None:
                await self._sweep(spec, ns_labels, hosts, keep=host, uid=uid)
        status = placed.status  # Scheduled=True also when it stays (it may have read PreviousHostUnreachable)

        view = hosts[host]
        if not view.decided:
            return None  # no verdict on the host yet (the operator just started): the verdict re-queues us
        if not view.reachable:
            plan = reporting.unreachable(status, host, view.message, generation=generation, now=_now(), memory=memory)
            await self._write(obj, plan)
            return None
        status = status.model_copy(
            update={"conditions": reporting.reachable(status, host, generation=generation, now=_now()).result}
        )
        return await self._converge(obj, dc, status, memory, host, view.spec)

    async def _converge(
        self,
        obj: JSON,
        dc: DockerContainer,
        status: DockerContainerStatus,
        memory: Memory,
        host: str,
        host_spec: DockerHostSpec,
    ) -> float | None:
        meta, spec = dc.metadata, dc.spec
        key, uid, namespace = meta.key, str(meta.uid), str(meta.namespace)
        want: desired.DesiredContainer | None = None
        want_error: ContainersError | None = None
        import_gateway: str | None = None
        if spec.service_imports and (reached := self._docker(host)) is not None:
            import_gateway = await self.gateways.get(host, reached)  # its /etc/hosts points the aliases there
        try:
            want = desired.build_desired(
                namespace=namespace,
                name=meta.name,
                uid=uid,
                spec=spec,
                refs=await self._refs(namespace, spec),
                import_gateway=import_gateway,
            )
        except ContainersError as exc:
            want_error = exc

        async def pull_secrets() -> list[JSON]:
            found = [await self._secrets.get(namespace, ref.name) for ref in spec.image_pull_secrets]
            return [s for s in found if s is not None]

        async def record_one(event: Event) -> None:
            await record(self._recorder, obj, [event])

        executor = Executor(
            docker_for=self._docker,
            record=record_one,
            pull_secrets=pull_secrets,
            spec=spec,
            desired=want,
            pull_timeout=self._settings.pull_timeout,
        )
        docker = self._docker(host)
        if docker is None:  # the host dropped while the references were read
            conn = self._hosts.get(host)
            message = conn.state.message if conn is not None else "no connection"
            dropped = reporting.unreachable(
                status, host, message, generation=meta.generation, now=_now(), memory=memory
            )
            await self._write(obj, dropped)
            return None
        failure: Failure | None = None
        created: Created | None = None
        plan: Plan | None = None
        try:
            for _ in range(MAX_ROUNDS):
                found: tuple[Found, ...]
                inspect: JSON | None
                if created is not None:
                    found, inspect = (created.found,), created.inspect
                else:
                    found, inspect = await self._look(docker, uid, want)
                plan = decisions.decide(
                    Situation(
                        namespace=namespace,
                        name=meta.name,
                        uid=uid,
                        generation=meta.generation,
                        spec=spec,
                        status=status,
                        host=host,
                        host_spec=host_spec,
                        desired=want,
                        desired_error=want_error,
                        found=found,
                        inspect=inspect,
                        memory=memory,
                        now=_now(),
                        monotonic=self._monotonic(),
                        failure=failure,
                        back_off=self._back_off,
                    )
                )
                failure, created = None, None
                if not plan.actions:
                    break
                try:
                    created = await executor.run(host, plan.actions)
                except StepFailed as step:
                    failure = step.failure  # the next decision reports it
                    if step.created is None:
                        continue  # nothing changed on the host: status and memory stay as they were
                    created = step.created  # a create succeeded before its start failed: that much happened
                await record(self._recorder, obj, plan.events)
                status, memory = plan.status, plan.memory
                self._remember(key, uid, memory)
        except docker_errors.DockerError as exc:
            # Say so before the retry backoff: a status that still reads Ready=True while we fail would lie.
            failed = reporting.call_failed(
                status,
                str(exc),
                unavailable=isinstance(exc, docker_errors.DockerUnavailableError),
                generation=meta.generation,
                now=_now(),
                memory=memory,
            )
            try:
                await self._status.write(obj, failed.status)
            except kube_errors.KubeError as write_error:
                self._log.warning("could not report a Docker failure", key=key, error=str(write_error))
            raise
        assert plan is not None
        if plan.actions:
            # Still acting after MAX_ROUNDS: something keeps changing under us. Report what we know, come back.
            self._log.warning("no stable state within a reconcile; retrying", key=key)
            await self._status.write(obj, status)
            return 1.0
        plan = self._with_imports_condition(obj, plan, host, meta.generation)
        await self._write(obj, plan)
        self._remember(key, uid, plan.memory)
        return plan.requeue_after

    def _with_imports_condition(self, obj: JSON, plan: Plan, host: str, generation: int | None) -> Plan:
        """The ServiceImports condition: which imports may be used (services/imports.py decides)."""
        c = Conditions(plan.status.conditions, generation=generation, now=_now())
        if not imports.declared(obj) and c.get(ContainerConditionType.SERVICE_IMPORTS) is None:
            return plan  # the common case, and cheap: no look at the host's other containers
        _, conflicts = imports.listeners(indexing.placed_on(self._containers, host), "", self._namespaces.get)
        verdict = imports.condition(
            obj, self._namespaces.get, conflicts.get(object_key(obj), []), self.import_failures(host)
        )
        if verdict is None:
            if c.get(ContainerConditionType.SERVICE_IMPORTS) is None:
                return plan
            c.remove(ContainerConditionType.SERVICE_IMPORTS)
        else:
            ok, reason, message = verdict
            status = ConditionStatus.TRUE if ok else ConditionStatus.FALSE
            c.set(ContainerConditionType.SERVICE_IMPORTS, status, reason, message)
        return dataclasses.replace(plan, status=plan.status.model_copy(update={"conditions": c.result}))

    async def _look(
        self, docker: DockerClient, uid: str, want: desired.DesiredContainer | None
    ) -> tuple[tuple[Found, ...], JSON | None]:
        # The kept previous container (logs --previous) is neither the one to keep nor a duplicate to remove.
        listed = [c for c in await copies(docker, uid) if not desired.is_previous(list(c.get("Names") or []))]
        found = tuple(Found.from_list(item) for item in listed)
        current, _ = decisions.keeper(found, want.spec_hash if want is not None else None)
        if current is None:
            return found, None
        try:
            return found, await docker.inspect(current.id)
        except docker_errors.DockerNotFoundError:
            return tuple(f for f in found if f.id != current.id), None  # removed meanwhile

    async def _remove_copies(self, host: str, uid: str, grace: int) -> int:
        """Stop and remove every container with this uid label on `host`; how many there were."""
        docker = self._docker(host)
        if docker is None:
            return 0
        listed = await copies(docker, uid)
        for item in listed:
            cid = str(item["Id"])
            if item.get("State") == "running":
                await docker.stop(cid, grace_seconds=grace)
            await docker.remove(cid)
        return len(listed)

    async def _sweep(
        self,
        spec: Any,
        ns_labels: Mapping[str, str],
        hosts: Mapping[str, scheduling.HostView],
        *,
        keep: str,
        uid: str,
    ) -> None:
        """After a first placement by selector: remove copies a crash left on other eligible, reachable hosts."""
        for name in scheduling.eligible_hosts(
            spec=spec, namespace_labels=ns_labels, hosts=hosts, operator_class=self._class
        ):
            if name != keep and hosts[name].reachable:
                try:
                    removed = await self._remove_copies(name, uid, spec.stop_grace_period_seconds)
                except docker_errors.DockerError as exc:
                    self._log.warning("could not check a host for stray copies", host=name, error=str(exc))
                    continue
                if removed:
                    self._log.warning("removed stray copies of a container", host=name, uid=uid, count=removed)

    # -- deletion ---------------------------------------------------------------------------------------------

    async def _finalize(self, obj: JSON) -> float | None:
        """Deletion, from the raw object: it must work even for an object this operator cannot validate."""
        if not finalizers.has(obj, deletion.FINALIZER):
            return None
        meta = obj["metadata"]
        key, uid = f"{meta['namespace']}/{meta['name']}", str(meta["uid"])
        raw_spec = obj.get("spec") or {}
        try:
            spec: DockerContainerSpec | None = DockerContainerSpec.model_validate(raw_spec)
        except pydantic.ValidationError:
            spec = None
        grace = int(raw_spec.get("stopGracePeriodSeconds") or 10)
        status = obj.get("status") or {}
        host = status.get("host") or (raw_spec.get("hostRef") or {}).get("name")
        hosts = self.host_views()
        view = hosts.get(host) if host is not None else None
        if view is not None and view.spec.operator_class != self._class:
            view = None
        deleted_at = meta.get("deletionTimestamp")
        waited = (
            (_now() - datetime.datetime.fromisoformat(deleted_at.replace("Z", "+00:00"))).total_seconds()
            if deleted_at
            else 0.0
        )
        try:
            found = await self._copies_to_remove(uid, host, view, spec, str(meta["namespace"]), hosts)
            plan = deletion.decide_deletion(
                host=host,
                view=view,
                orphan=(meta.get("annotations") or {}).get(deletion.ORPHAN_ANNOTATION) == "true",
                waited=waited,
                timeout=self._settings.deletion_host_timeout,
                found=found,
                container_id=status.get("containerID"),
                grace_seconds=grace,
            )
            executor = Executor(
                docker_for=self._docker,
                record=lambda event: record(self._recorder, obj, [event]),
                pull_secrets=_no_secrets,
                spec=spec,
                desired=None,
                pull_timeout=self._settings.pull_timeout,
            )
            if plan.actions:
                obj = await self._show_terminating(obj)  # newer: the finalizer's removal is checked against it
            for action in plan.actions:
                await executor.remove(action)
        except docker_errors.DockerError as exc:
            # The host answers but refuses to stop or remove: retried with backoff, but not forever.
            if waited < self._settings.deletion_host_timeout:
                raise
            note = f"could not remove the container for {waited:.0f}s ({exc}); it is orphaned"
            plan = deletion.DeletionPlan((), True, (Event("Failed", note, warning=True),))
        await record(self._recorder, obj, plan.events)
        if not plan.release:
            return plan.requeue_after
        self._memory.pop(key, None)
        await finalizers.remove(self._kube, DOCKERCONTAINERS, obj, deletion.FINALIZER, self._tracker)
        return None

    async def _show_terminating(self, obj: JSON) -> JSON:
        """STATUS reads Terminating while the container stops (its grace period can be long), as kubectl shows a
        Pod being deleted; nothing else of the status changes until the container is gone. Returns the object as
        stored after the write. Best effort: a refused write must never keep an object from going."""
        if (obj.get("status") or {}).get("reason") == ContainerReason.TERMINATING:
            return obj
        meta = obj["metadata"]
        patch = {"status": {"reason": ContainerReason.TERMINATING.value}}
        try:
            response = await self._kube.merge_patch(
                DOCKERCONTAINERS, meta["name"], patch, namespace=meta["namespace"], subresource="status"
            )
        except kube_errors.KubeError as exc:
            self._log.warning("could not show Terminating", key=object_key(obj), error=str(exc))
            return obj
        self._tracker.wrote(object_key(obj), (response.get("metadata") or {}).get("resourceVersion"))
        return response

    async def _copies_to_remove(
        self,
        uid: str,
        host: str | None,
        view: scheduling.HostView | None,
        spec: DockerContainerSpec | None,
        namespace: str,
        hosts: Mapping[str, scheduling.HostView],
    ) -> list[tuple[str, Found]] | None:
        """Containers carrying the uid label: on its host, or (never placed) on every eligible reachable host."""
        if host is not None:
            docker = self._docker(host) if view is not None and view.reachable else None
            if docker is None:
                return None
            return [(host, Found.from_list(i)) for i in await copies(docker, uid)]
        found: list[tuple[str, Found]] = []
        if spec is None:
            return found
        ns_labels = dict(((self._namespaces.get(namespace) or {}).get("metadata") or {}).get("labels") or {})
        for name in scheduling.eligible_hosts(
            spec=spec, namespace_labels=ns_labels, hosts=hosts, operator_class=self._class
        ):
            docker = self._docker(name)
            if docker is not None:
                found += [(name, Found.from_list(i)) for i in await copies(docker, uid)]
        return found


async def copies(docker: DockerClient, uid: str) -> list[JSON]:
    """The containers of one DockerContainer on a host: its uid label, and this host's label (or none, from before
    the host label existed) — a daemon reached as two DockerHosts shows each only its own."""
    listed = await docker.list_containers(labels={labels.UID: uid})
    return [c for c in listed if (c.get("Labels") or {}).get(labels.HOST) in (None, docker.host)]


async def _no_secrets() -> list[JSON]:
    return []
