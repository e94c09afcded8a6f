"""DockerJob reconciler: gather the attempts, let decisions.py decide, start and stop attempts, write the status.

Attempts are found through the owner index (the DockerJob's UID), never by name. Like the DockerDeployment's, the
controller waits for its informer to show its own creations and deletions before it acts again (expectations),
so a slow watch or an operator restart can never start an attempt twice. When the DockerJob fails, the last lines
of the newest failed attempt's output are read from its host once and kept in the Failed condition's message:
`kubectl describe dj` then says why without a login on the host.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pydantic
import structlog

from dockyard_operator.api.common import ConditionStatus
from dockyard_operator.api.dockercontainer import ContainerPhase
from dockyard_operator.api.dockerjob import (
    CONTROLLER_UID_LABEL,
    JOB_NAME_LABEL,
    DockerJob,
    DockerJobStatus,
    JobConditionType,
)
from dockyard_operator.containers import deletion
from dockyard_operator.dockerapi import errors as docker_errors
from dockyard_operator.dockerapi.client import DockerClient
from dockyard_operator.hosts import classes
from dockyard_operator.informer.store import Reader
from dockyard_operator.jobs import decisions
from dockyard_operator.jobs.decisions import Attempt, Facts
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.recording import EventRecorder
from dockyard_operator.kube.resources import DOCKERCONTAINERS, DOCKERJOBS
from dockyard_operator.runtime.children import (
    condition_of,
    create_children,
    delete_children,
    owner_reference,
    parse_time,
)
from dockyard_operator.runtime.consistency import WriteTracker
from dockyard_operator.runtime.controller import CONTROLLER_UID_INDEX
from dockyard_operator.runtime.expectations import Expectations
from dockyard_operator.runtime.plans import Event
from dockyard_operator.runtime.recording import record
from dockyard_operator.runtime.statuses import StatusWriter

JSON = dict[str, Any]

#: What the kubelet keeps of a failed container's log as its termination message (FallbackToLogsOnError).
OUTPUT_LINES = 80
OUTPUT_BYTES = 2048


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def attempt_of(obj: JSON) -> Attempt:
    """A DockerContainer as the job's decision sees it."""
    meta, status = obj["metadata"], obj.get("status") or {}
    try:
        phase: ContainerPhase | None = ContainerPhase(status["phase"]) if status.get("phase") else None
    except ValueError:
        phase = None
    exit_code = status.get("lastExitCode")
    return Attempt(
        name=meta["name"],
        created=parse_time(meta.get("creationTimestamp")) or _now(),
        phase=phase,
        ready=condition_of(obj, "Ready").get("status") == "True",
        exit_code=int(exit_code) if exit_code is not None else None,
        restarts=int(status.get("restartCount") or 0),
        finished_at=parse_time(status.get("finishedAt")),
        deleting=bool(meta.get("deletionTimestamp")),
    )


class JobReconciler:
    def __init__(
        self,
        *,
        kube: KubeClient,
        recorder: EventRecorder,
        jobs: Reader,
        containers: Reader,
        namespaces: Reader,
        docker_for: Callable[[str], DockerClient | None],
        expectations: Expectations,
        tracker: WriteTracker,
        operator_class: str,
        clock: Callable[[], datetime.datetime] = _now,
    ) -> None:
        self._kube = kube
        self._recorder = recorder
        self._jobs = jobs
        self._containers = containers
        self._namespaces = namespaces
        self._docker_for = docker_for
        self._expectations = expectations
        self._class = operator_class
        self._clock = clock
        self._status = StatusWriter(kube=kube, resource=DOCKERJOBS, model=DockerJobStatus, tracker=tracker)
        self._log = structlog.get_logger("dockyard.dockerjob")

    def serves(self, namespace: str) -> bool:
        return classes.serves(self._namespaces.get(namespace), self._class)

    async def reconcile(self, key: str) -> float | None:
        obj = self._jobs.get(key)
        if obj is None:
            self._expectations.forget(key)
            return None
        meta = obj["metadata"]
        if not self.serves(str(meta["namespace"])) or meta.get("deletionTimestamp"):
            return None  # deletion: the garbage collector removes the attempts (their finalizers the containers)
        try:
            job = DockerJob.model_validate(obj)
        except pydantic.ValidationError as exc:
            self._log.warning("cannot read a DockerJob", key=key, error=str(exc))
            return None
        if not self._expectations.satisfied(key):
            return None  # the informer has not shown our last creations/deletions yet; their events wake us
        owned = list(self._containers.by_index(CONTROLLER_UID_INDEX, meta["uid"]))
        plan = decisions.decide(
            Facts(
                spec=job.spec,
                status=job.status,
                generation=meta.get("generation"),
                attempts=tuple(attempt_of(o) for o in owned),
                now=self._clock(),
            )
        )
        events = list(plan.events)
        by_name = {o["metadata"]["name"]: o for o in owned}
        victims = [by_name[n] for n in plan.delete if n in by_name]
        await delete_children(self._kube, self._expectations, key, DOCKERCONTAINERS, victims, events, noun="attempt")
        bodies = [self._attempt_body(obj, job) for _ in range(plan.create)]
        await create_children(
            self._kube, self._expectations, key, DOCKERCONTAINERS, bodies, events,
            noun="attempt", namespace=meta["namespace"],
        )  # fmt: skip
        status = plan.status
        if plan.output_of is not None and plan.output_of in by_name:
            status = await self._with_output(status, by_name[plan.output_of])
        await self._status.write(obj, status)
        await record(self._recorder, obj, events)
        if plan.delete_job:
            await self._expire(obj)
            return None
        return plan.requeue_after

    def _attempt_body(self, obj: JSON, job: DockerJob) -> JSON:
        meta = obj["metadata"]
        template = job.spec.template
        return {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "DockerContainer",
            "metadata": {
                "generateName": f"{meta['name'][:56].rstrip('-.')}-",
                "namespace": meta["namespace"],
                "labels": {
                    **template.metadata.labels,
                    JOB_NAME_LABEL: meta["name"],
                    CONTROLLER_UID_LABEL: meta["uid"],
                },
                "annotations": dict(template.metadata.annotations),
                "ownerReferences": [
                    owner_reference({"apiVersion": "dockyard.dev/v1alpha1", "kind": "DockerJob", **obj})
                ],
                "finalizers": [deletion.FINALIZER],
            },
            "spec": template.spec.model_dump(by_alias=True, mode="json", exclude_none=True),
        }

    async def _with_output(self, status: DockerJobStatus, attempt: JSON) -> DockerJobStatus:
        """The Failed condition's message, with the failed attempt's last lines of output (read once)."""
        failed = next((c for c in status.conditions if c.type == JobConditionType.FAILED), None)
        if failed is None or failed.status is not ConditionStatus.TRUE:
            return status
        container = attempt.get("status") or {}
        host, container_id = container.get("host"), container.get("containerID")
        docker = self._docker_for(str(host)) if host else None
        if docker is None or not container_id:
            output = f"(the output of {attempt['metadata']['name']} cannot be read: its host is not reachable)"
        else:
            try:
                tail = await docker.logs_tail(str(container_id), lines=OUTPUT_LINES, max_bytes=OUTPUT_BYTES)
                output = tail.strip() or "(no output)"
            except docker_errors.DockerError as exc:
                output = f"(the output of {attempt['metadata']['name']} cannot be read: {exc})"
        message = f"{failed.message}; last output of attempt {attempt['metadata']['name']}:\n{output}"
        conditions = [c.model_copy(update={"message": message}) if c is failed else c for c in status.conditions]
        return status.model_copy(update={"conditions": conditions})

    async def _expire(self, obj: JSON) -> None:
        """ttlSecondsAfterFinished has passed: delete the DockerJob, foreground (its attempts, and with them their
        Docker containers, go first), with its UID as a precondition (never a new DockerJob of the same name)."""
        meta = obj["metadata"]
        try:
            await self._kube.delete(
                DOCKERJOBS, meta["name"], namespace=meta["namespace"], propagation="Foreground", uid=meta["uid"]
            )
        except (kube_errors.NotFoundError, kube_errors.ConflictError):
            return
        await record(self._recorder, obj, [Event("Deleted", "Deleted after ttlSecondsAfterFinished")])
