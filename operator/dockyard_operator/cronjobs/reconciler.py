"""DockerCronJob reconciler: read the schedule, let decisions.py decide, start and prune DockerJobs, write status.

A run is a DockerJob with a name derived from its schedule time, so starting it twice (two operators, a restart
between the create and the status write) is refused by the API server as AlreadyExists, and that is success.
The reconcile returns the time until the next run: the work queue brings the key back exactly then.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pydantic
import structlog

from dockyard_operator.api.dockercronjob import (
    CRONJOB_NAME_LABEL,
    SCHEDULED_AT_ANNOTATION,
    DockerCronJob,
    DockerCronJobStatus,
)
from dockyard_operator.cronjobs import decisions, schedules
from dockyard_operator.cronjobs.decisions import Facts, Run
from dockyard_operator.cronjobs.errors import ScheduleError
from dockyard_operator.hosts import classes
from dockyard_operator.informer.store import Reader
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.recording import EventRecorder
from dockyard_operator.kube.resources import DOCKERCRONJOBS, DOCKERJOBS
from dockyard_operator.runtime.children import condition_of, delete_children, owner_reference, parse_time
from dockyard_operator.runtime.consistency import WriteTracker
from dockyard_operator.runtime.controller import CONTROLLER_UID_INDEX
from dockyard_operator.runtime.expectations import Expectations
from dockyard_operator.runtime.plans import Event
from dockyard_operator.runtime.recording import record
from dockyard_operator.runtime.statuses import StatusWriter

JSON = dict[str, Any]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def run_of(obj: JSON) -> Run:
    """A DockerJob as the cron decision sees it."""
    meta, status = obj["metadata"], obj.get("status") or {}
    outcome = next((kind for kind in ("Complete", "Failed") if condition_of(obj, kind).get("status") == "True"), None)
    return Run(
        name=meta["name"],
        created=parse_time(meta.get("creationTimestamp")) or _now(),
        scheduled=parse_time((meta.get("annotations") or {}).get(SCHEDULED_AT_ANNOTATION)),
        start_time=parse_time(status.get("startTime")),
        outcome=outcome,
        completion_time=parse_time(status.get("completionTime")),
        deleting=bool(meta.get("deletionTimestamp")),
    )


class CronJobReconciler:
    def __init__(
        self,
        *,
        kube: KubeClient,
        recorder: EventRecorder,
        cronjobs: Reader,
        jobs: Reader,
        namespaces: Reader,
        expectations: Expectations,
        tracker: WriteTracker,
        operator_class: str,
        clock: Callable[[], datetime.datetime] = _now,
    ) -> None:
        self._kube = kube
        self._recorder = recorder
        self._cronjobs = cronjobs
        self._jobs = jobs
        self._namespaces = namespaces
        self._expectations = expectations
        self._class = operator_class
        self._clock = clock
        self._status = StatusWriter(kube=kube, resource=DOCKERCRONJOBS, model=DockerCronJobStatus,
                                    tracker=tracker)  # fmt: skip
        self._log = structlog.get_logger("dockyard.dockercronjob")

    def serves(self, namespace: str) -> bool:
        return classes.serves(self._namespaces.get(namespace), self._class)

    async def reconcile(self, key: str) -> float | None:
        obj = self._cronjobs.get(key)
        if obj is None:
            self._expectations.forget(key)
            return None
        meta = obj["metadata"]
        if not self.serves(str(meta["namespace"])) or meta.get("deletionTimestamp"):
            return None
        try:
            cronjob = DockerCronJob.model_validate(obj)
        except pydantic.ValidationError as exc:
            self._log.warning("cannot read a DockerCronJob", key=key, error=str(exc))
            return None
        if not self._expectations.satisfied(key):
            return None
        owned = list(self._jobs.by_index(CONTROLLER_UID_INDEX, meta["uid"]))
        schedule: schedules.Schedule | None = None
        problem: ScheduleError | None = None
        try:
            schedule = schedules.parse(cronjob.spec.schedule, cronjob.spec.time_zone)
        except ScheduleError as exc:
            problem = exc
        plan = decisions.decide(
            Facts(
                spec=cronjob.spec,
                status=cronjob.status,
                generation=meta.get("generation"),
                name=meta["name"],
                created=parse_time(meta.get("creationTimestamp")) or self._clock(),
                runs=tuple(run_of(o) for o in owned),
                now=self._clock(),
                schedule=schedule,
                schedule_error=problem,
            )
        )
        events = list(plan.events)
        by_name = {o["metadata"]["name"]: o for o in owned}
        victims = [by_name[n] for n in plan.delete if n in by_name]
        await delete_children(self._kube, self._expectations, key, DOCKERJOBS, victims, events, noun="job",
                              propagation="Background")  # fmt: skip
        if plan.start is not None:
            await self._start(key, obj, cronjob, plan.start, events)
        await self._status.write(obj, plan.status)
        await record(self._recorder, obj, events)
        return plan.requeue_after

    async def _start(
        self, key: str, obj: JSON, cronjob: DockerCronJob, scheduled: datetime.datetime, events: list[Event]
    ) -> None:
        meta = obj["metadata"]
        template = cronjob.spec.job_template
        name = decisions.run_name(meta["name"], scheduled)
        body: JSON = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "DockerJob",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": {**template.metadata.labels, CRONJOB_NAME_LABEL: meta["name"]},
                "annotations": {
                    **template.metadata.annotations,
                    SCHEDULED_AT_ANNOTATION: scheduled.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
                "ownerReferences": [
                    owner_reference({"apiVersion": "dockyard.dev/v1alpha1", "kind": "DockerCronJob", **obj})
                ],
            },
            "spec": template.spec.model_dump(by_alias=True, mode="json", exclude_none=True),
        }
        self._expectations.expect(key, adds=1)
        try:
            await self._kube.create(DOCKERJOBS, body, namespace=meta["namespace"])
        except kube_errors.ConflictError as exc:
            self._expectations.creation_failed(key)
            if exc.reason != "AlreadyExists":
                raise
            return  # started already: by us before a restart, or by another replica
        except kube_errors.KubeError:
            self._expectations.creation_failed(key)
            raise
        events.append(Event("SuccessfulCreate", f"Created job {name}"))
