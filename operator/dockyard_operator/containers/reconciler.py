"""DockerContainer reconciler: make one Docker container match one DockerContainer, and report how it is.

Level-triggered: every call reads the latest object from the informer store and the container's real state
from its host, whatever woke it (a spec change, a Docker event, a Secret rotation, a host reconnect, the
resync timer). Outcomes follow the work queue's contract: raise to retry with backoff, return seconds to be
called again after that long, return None when there is nothing more to do until something changes.

Safety rules:
- a container is found by its uid label, never by name alone; a name taken by a container we do not own is a
  reported error, never an adoption;
- nothing destructive happens on stale data: when the host is unreachable we only report (HostReachable=False)
  and wait; when it returns, the existing container is found by label and adopted, not recreated;
- deletion stops (with the grace period) and removes the container before the finalizer goes; a host that is
  gone for good cannot block deletion forever (settings.deletion_host_timeout, or the orphan annotation).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import time
from collections.abc import Mapping
from typing import Any

import pydantic
import structlog

from dockyard_operator.api.common import ConditionStatus
from dockyard_operator.api.dockercontainer import DockerContainerSpec, DockerContainerStatus, RestartPolicy
from dockyard_operator.api.dockerhost import DockerHostSpec
from dockyard_operator.containers import conditions as conditions_mod
from dockyard_operator.containers import desired as desired_mod
from dockyard_operator.containers import drift as drift_mod
from dockyard_operator.containers import errors as container_errors
from dockyard_operator.containers import labels, observing, pulling, scheduling
from dockyard_operator.dockerapi import errors as docker_errors
from dockyard_operator.dockerapi.client import DockerClient
from dockyard_operator.hosts.connections import HostConnections
from dockyard_operator.informer.store import Store
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.recording import EventRecorder
from dockyard_operator.kube.resources import DOCKERCONTAINERS
from dockyard_operator.settings import ReconcileSettings

JSON = dict[str, Any]

FINALIZER = "dockyard.dev/container-cleanup"

#: After we write an object, its next reconcile waits (at most this long) until the informer has seen that
#: write. Otherwise a reconcile triggered meanwhile (a Docker event, say) would compute from the stale cached
#: status and overwrite what we just wrote — restart counts going backwards, duplicate events (kopf's
#: consistency timeout solves the same problem the same way).
CONSISTENCY_TIMEOUT = 5.0
ORPHAN_ANNOTATION = "dockyard.dev/orphan"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _decode(secret: Mapping[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


class ContainerReconciler:
    def __init__(
        self,
        *,
        kube: KubeClient,
        recorder: EventRecorder,
        hosts: HostConnections,
        containers: Store,
        dockerhosts: Store,
        secrets: Store,
        configmaps: Store,
        namespaces: Store,
        settings: ReconcileSettings,
    ) -> None:
        self._kube = kube
        self._recorder = recorder
        self._hosts = hosts
        self._containers = containers
        self._dockerhosts = dockerhosts
        self._secrets = secrets
        self._configmaps = configmaps
        self._namespaces = namespaces
        self._settings = settings
        # uid -> (consecutive unhealthy restarts, monotonic time the next one is allowed)
        self._unhealthy: dict[str, tuple[int, float]] = {}
        # container id -> Docker's own RestartCount when we last looked. Docker restarts by its restart policy
        # add to status.restartCount as deltas. After an operator restart the first sighting only sets the
        # baseline: we would rather under-count once than count old restarts twice.
        self._docker_restarts: dict[str, tuple[str, int]] = {}  # uid -> (container id, RestartCount)
        # key -> (resourceVersion of our last write, monotonic deadline for waiting on it)
        self._written: dict[str, tuple[str, float]] = {}
        # keys whose reconcile was put off until the cache shows our last write
        self._deferred: set[str] = set()
        self._log = structlog.get_logger("dockyard.dockercontainer")

    # ------------------------------------------------------------------------------------------- helpers

    def host_load(self, host: str) -> int:
        """DockerContainers currently placed on `host` (for scheduling and DockerHost status)."""
        return sum(1 for obj in self._containers.values() if (obj.get("status") or {}).get("host") == host)

    def _reachable(self, host: str) -> bool:
        conn = self._hosts.get(host)
        return conn is not None and conn.state.reachable

    def _resolve_refs(self, namespace: str, spec: DockerContainerSpec) -> desired_mod.ResolvedRefs:
        secrets: dict[str, Mapping[str, bytes]] = {}
        for name in desired_mod.referenced_secrets(spec):
            obj = self._secrets.get(f"{namespace}/{name}")
            if obj is not None:
                secrets[name] = _decode(obj)
        config_maps: dict[str, Mapping[str, str]] = {}
        for name in desired_mod.referenced_config_maps(spec):
            obj = self._configmaps.get(f"{namespace}/{name}")
            if obj is not None:
                config_maps[name] = dict(obj.get("data") or {})
        return desired_mod.ResolvedRefs(secrets=secrets, config_maps=config_maps)

    async def _event(self, obj: JSON, reason: str, note: str, *, warning: bool = False) -> None:
        meta = obj["metadata"]
        log = self._log.warning if warning else self._log.info
        log(note, reason=reason, key=f"{meta.get('namespace')}/{meta.get('name')}")
        await self._recorder.record(obj, reason=reason, note=note, type_="Warning" if warning else "Normal")

    def observe(self, _kind: str, obj: JSON) -> bool:
        """Informer hook: True when this event is a write of ours that a deferred reconcile is waiting for."""
        meta = obj["metadata"]
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        written = self._written.get(key)
        if written is not None and written[0] == meta.get("resourceVersion"):
            del self._written[key]
            if key in self._deferred:
                self._deferred.discard(key)
                return True
        return False

    def _remember_write(self, obj: JSON, response: JSON) -> None:
        meta = obj["metadata"]
        rv = (response.get("metadata") or {}).get("resourceVersion")
        if rv:
            key = f"{meta['namespace']}/{meta['name']}"
            self._written[key] = (str(rv), time.monotonic() + CONSISTENCY_TIMEOUT)

    async def _patch_status(self, obj: JSON, status: JSON) -> None:
        current = obj.get("status") or {}
        if status == current:
            return  # unchanged status costs the API server nothing
        DockerContainerStatus.model_validate(status)  # never send what our own schema would reject
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        patch = {"status": {**{k: None for k in current if k not in status}, **status}}
        try:
            response = await self._kube.merge_patch(
                DOCKERCONTAINERS, name, patch, namespace=namespace, subresource="status"
            )
        except kube_errors.NotFoundError:
            return  # deleted meanwhile
        self._remember_write(obj, response)

    async def _set_finalizers(self, obj: JSON, finalizers: list[str]) -> None:
        meta = obj["metadata"]
        # resourceVersion in a merge patch is a precondition: a concurrent writer makes this fail with 409
        # instead of one of us silently dropping the other's finalizer.
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        response = await self._kube.merge_patch(DOCKERCONTAINERS, meta["name"], patch, namespace=meta["namespace"])
        self._remember_write(obj, response)

    # --------------------------------------------------------------------------------------------- entry

    async def reconcile(self, key: str) -> float | None:
        obj = self._containers.get(key)
        if obj is None:
            self._written.pop(key, None)
            self._deferred.discard(key)
            return None
        written = self._written.get(key)
        if written is not None:
            wait = written[1] - time.monotonic()
            if wait > 0 and obj["metadata"].get("resourceVersion") != written[0]:
                self._deferred.add(key)
                return wait  # our own write's watch event re-queues the key sooner
            del self._written[key]
        self._deferred.discard(key)
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            return await self._finalize(obj)
        if FINALIZER not in (meta.get("finalizers") or []):
            await self._set_finalizers(obj, [*(meta.get("finalizers") or []), FINALIZER])
            return None  # the watch brings the updated object, and with it the next reconcile
        return await self._sync(obj)

    async def _sync(self, obj: JSON) -> float | None:
        meta = obj["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        generation = meta.get("generation")
        old: JSON = dict(obj.get("status") or {})
        conditions: list[JSON] = list(old.get("conditions") or [])

        def cond(type_: str, status: str, reason: str, message: str = "") -> None:
            nonlocal conditions
            update = conditions_mod.ConditionUpdate(type_, ConditionStatus(status), reason, message[:1024])
            conditions = conditions_mod.set_condition(conditions, update, observed_generation=generation, now=_now())

        def finish(status: JSON) -> JSON:
            status["observedGeneration"] = generation
            status["conditions"] = conditions
            return {k: v for k, v in status.items() if v is not None}

        try:
            spec = DockerContainerSpec.model_validate(obj.get("spec") or {})
        except pydantic.ValidationError as exc:
            cond("Ready", "False", "InvalidSpec", str(exc))
            await self._patch_status(obj, finish({**old, "phase": "Failed"}))
            return None

        ns_obj = self._namespaces.get(namespace) or {}
        decision = scheduling.schedule(
            spec=spec,
            namespace=namespace,
            namespace_labels=(ns_obj.get("metadata") or {}).get("labels") or {},
            current_host=old.get("host"),
            hosts={str(h["metadata"]["name"]): h for h in self._dockerhosts.values()},
            reachable=self._reachable,
            load=self.host_load,
        )
        if decision.host is None:
            cond("Scheduled", "False", decision.reason, decision.message)
            cond("Ready", "False", "Unschedulable", decision.message)
            await self._patch_status(obj, finish({**old, "phase": "Pending"}))
            return None
        host = decision.host
        previous = old.get("host")
        if previous and previous != host and old.get("containerID"):
            # A move (hostRef edited, or the selected host no longer matches): one copy at a time. The old
            # container goes first; if its host cannot be reached we wait rather than run two copies.
            moved = await self._leave_previous_host(obj, previous, spec.stop_grace_period_seconds)
            if not moved:
                message = f"waiting for {previous} to be reachable to remove the container there before moving"
                cond("Scheduled", "False", "PreviousHostUnreachable", message)
                await self._patch_status(obj, finish(dict(old)))
                return None
            old = {k: v for k, v in old.items() if k not in ("containerID", "state", "health", "ip", "startedAt")}
        if previous != host:
            await self._event(obj, "Scheduled", decision.message)
        cond("Scheduled", "True", decision.reason, decision.message)
        base: JSON = {**old, "host": host}

        # A hostPath bind is root on the host (think / or docker.sock): only paths its DockerHost allows.
        host_spec = DockerHostSpec.model_validate((self._dockerhosts.get(host) or {}).get("spec") or {})
        denied = sorted(
            v.host_path.path for v in spec.volumes if v.host_path and not host_spec.allows_host_path(v.host_path.path)
        )
        if denied:
            message = f"DockerHost {host} does not allow hostPath {', '.join(denied)} (spec.allowedHostPaths)"
            if next((c for c in conditions if c["type"] == "Ready"), {}).get("reason") != "HostPathNotAllowed":
                await self._event(obj, "Failed", message, warning=True)
            cond("Ready", "False", "HostPathNotAllowed", message)
            await self._patch_status(obj, finish({**base, "phase": "Failed"}))
            return None

        conn = self._hosts.get(host)
        if conn is None or not conn.state.decided:
            # No verdict on the host yet (the operator just started): say nothing; the verdict re-queues us.
            await self._patch_status(obj, finish(base))
            return None
        if not conn.state.reachable:
            message = conn.state.message
            was_reachable = next((c for c in conditions if c["type"] == "HostReachable"), {}).get("status")
            if was_reachable != "False":
                await self._event(obj, "HostUnreachable", f"host {host}: {message}", warning=True)
            cond("HostReachable", "False", "HostUnreachable", f"host {host}: {message}")
            # We know nothing about the container now: say so, and touch nothing.
            cond("Ready", "Unknown", "HostUnreachable", "the container's host cannot be reached")
            if old.get("containerID"):
                cond("Healthy", "Unknown", "HostUnreachable", "the container's host cannot be reached")
            await self._patch_status(obj, finish({**base, "phase": "Unknown" if old.get("containerID") else "Pending"}))
            return None
        cond("HostReachable", "True", "Connected", f"host {host} is reachable")
        docker = conn.client

        try:
            refs = self._resolve_refs(namespace, spec)
            want = desired_mod.build_desired(namespace=namespace, name=name, uid=uid, spec=spec, refs=refs)
        except container_errors.ContainersError as exc:
            retryable = isinstance(exc, container_errors.MissingReferenceError)
            reason = "CreateContainerConfigError" if retryable else "InvalidSpec"
            if next((c for c in conditions if c["type"] == "Ready"), {}).get("reason") != reason:
                await self._event(obj, "Failed", str(exc), warning=True)
            cond("Ready", "False", reason, str(exc))
            await self._patch_status(obj, finish({**base, "phase": "Pending" if retryable else "Failed"}))
            return None  # a change of the Secret/ConfigMap or of the spec triggers the next try

        try:
            return await self._converge(obj, spec, want, docker, base, cond, finish)
        except (docker_errors.DockerError, container_errors.ContainersError) as exc:
            # Say so before the retry backoff: a status that still reads Ready=True while we fail would lie.
            unreachable = isinstance(exc, docker_errors.DockerUnavailableError)
            cond("Ready", "Unknown" if unreachable else "False", "ReconcileFailed", str(exc))
            with contextlib.suppress(kube_errors.KubeError):
                await self._patch_status(obj, finish(base))
            raise

    async def _converge(
        self,
        obj: JSON,
        spec: DockerContainerSpec,
        want: desired_mod.DesiredContainer,
        docker: DockerClient,
        base: JSON,
        cond: Any,
        finish: Any,
    ) -> float | None:
        meta = obj["metadata"]
        uid = meta["uid"]
        found = await docker.list_containers(labels={labels.UID: uid})
        # More than one container with our uid can only follow a crash between create and record: keep the
        # newest one carrying the wanted spec hash (else the newest), remove the rest.
        found.sort(key=lambda c: ((c.get("Labels") or {}).get(labels.SPEC_HASH) == want.spec_hash, c.get("Created", 0)))
        for extra in found[:-1]:
            await docker.remove(str(extra["Id"]))
        current = found[-1] if found else None
        requeue: float | None = None
        recreated_for: tuple[str, ...] = ()

        inspect: JSON | None = None
        if current is not None:
            inspect = await docker.inspect(str(current["Id"]))
            drifted = drift_mod.detect_drift(want, inspect)
            if drifted and spec.drift_policy.value == "Enforce":
                # The new image first: a typo in a tag must not cost the running container.
                await self._ensure_image(obj, spec, want, docker)
                await docker.stop(str(current["Id"]), grace_seconds=spec.stop_grace_period_seconds)
                await docker.remove(str(current["Id"]))
                recreated_for = drifted
                inspect = None
            elif drifted:
                since = ((base.get("drift") or {}).get("since")) or conditions_mod.format_time(_now())
                base["drift"] = {"fields": list(drifted), "since": since}
                cond("Drifted", "True", "DriftDetected", "differs from the spec: " + ", ".join(drifted))
            else:
                base.pop("drift", None)
                cond("Drifted", "False", "InSync", "the container matches the spec")

        if inspect is None:
            created = await self._create(obj, spec, want, docker, image_ready=bool(recreated_for))
            if created is None:
                cond("Ready", "False", "NameConflict", f"a container named {want.container_name} is not ours")
                await self._patch_status(obj, finish({**base, "phase": "Failed"}))
                return None
            inspect = created
            base.pop("drift", None)
            cond("Drifted", "False", "InSync", "the container matches the spec")
            if recreated_for:
                await self._event(obj, "Recreated", "recreated because of drift in: " + ", ".join(recreated_for))

        seen = observing.observe(inspect)
        cid = str(inspect["Id"])
        restarts = int(base.get("restartCount") or 0)
        if base.get("containerID") != cid and base.get("containerID") and not recreated_for:
            # Someone removed our container behind our back and we made a new one: that is a restart.
            restarts += 1
            await self._event(obj, "Restarted", "the container was gone from its host and was created again")

        last_exit = base.get("lastExitCode")
        if seen.state in ("exited", "dead"):
            last_exit = seen.exit_code
        policy = spec.restart_policy
        if not seen.running and seen.state in ("exited", "created", "dead"):
            should_start = (
                seen.state == "created"
                or policy is RestartPolicy.ALWAYS
                or (policy is RestartPolicy.ON_FAILURE and seen.exit_code not in (0, None))
            )
            if should_start:
                await docker.start(cid)
                if seen.state != "created":
                    restarts += 1
                    note = f"container had exited with code {seen.exit_code}; restartPolicy {policy.value}"
                    await self._event(obj, "Restarted", note)
                inspect = await docker.inspect(cid)
                seen = observing.observe(inspect)

        # Health: Docker reports it, but never acts on it; restartOnUnhealthy is ours to do, with backoff.
        old_health = base.get("health")
        if seen.health == "unhealthy":
            if old_health != "unhealthy":
                await self._event(obj, "Unhealthy", "the healthcheck is failing", warning=True)
            if spec.health_check is not None and spec.health_check.restart_on_unhealthy:
                count, not_before = self._unhealthy.get(uid, (0, 0.0))
                now = time.monotonic()
                if now >= not_before:
                    await docker.restart(cid, grace_seconds=spec.stop_grace_period_seconds)
                    restarts += 1
                    first, cap = self._settings.unhealthy_restart_backoff
                    delay = min(cap, first * (2**count))
                    self._unhealthy[uid] = (count + 1, now + delay)
                    await self._event(obj, "Restarted", f"restarted because it was unhealthy (next after {delay:.0f}s)")
                    inspect = await docker.inspect(cid)
                    seen = observing.observe(inspect)
                    requeue = delay
                else:
                    requeue = not_before - now
        elif seen.health == "healthy":
            self._unhealthy.pop(uid, None)

        docker_restarts = int(inspect.get("RestartCount") or 0)
        seen_cid, baseline = self._docker_restarts.get(uid, (cid, docker_restarts))
        if seen_cid == cid:
            restarts += max(0, docker_restarts - baseline)
        self._docker_restarts[uid] = (cid, docker_restarts)  # one entry per object, dropped with it
        status: JSON = {
            **base,
            "phase": observing.phase_for(seen, policy),
            "containerID": cid,
            "state": seen.state,
            "health": seen.health,
            "ip": seen.ip,
            "startedAt": conditions_mod.format_time(seen.started_at) if seen.started_at else None,
            "restartCount": restarts,
            "lastExitCode": last_exit,
            "imageID": seen.image_id,
        }
        if seen.health is None:
            cond("Healthy", "True", "NoHealthCheck", "no healthcheck configured")
        elif seen.health == "healthy":
            cond("Healthy", "True", "HealthCheckPassing", "the healthcheck passes")
        elif seen.health == "starting":
            cond("Healthy", "Unknown", "HealthCheckStarting", "waiting for the first healthcheck results")
        else:
            cond("Healthy", "False", "HealthCheckFailing", "the healthcheck is failing")
        # Docker says Running while paused; a paused container serves nothing.
        ready = seen.running and seen.state != "paused" and seen.health in (None, "healthy")
        if ready:
            cond("Ready", "True", "Running", "the container is running" + (" and healthy" if seen.health else ""))
        elif seen.running:
            cond("Ready", "False", "NotHealthy", f"the container is running but its health is {seen.health}")
        else:
            cond("Ready", "False", "NotRunning", f"the container is {seen.state} (exit code {seen.exit_code})")
        await self._patch_status(obj, finish(status))
        return requeue

    async def _create(
        self,
        obj: JSON,
        spec: DockerContainerSpec,
        want: desired_mod.DesiredContainer,
        docker: DockerClient,
        *,
        image_ready: bool = False,
    ) -> JSON | None:
        """Pull as the policy says, create, copy files in, start. None when the name belongs to someone else."""
        existing = await docker.container_by_name(want.container_name)
        if existing is not None:
            owner = ((existing.get("Config") or {}).get("Labels") or {}).get(labels.UID)
            if owner != obj["metadata"]["uid"]:
                await self._event(
                    obj,
                    "Failed",
                    f"a container named {want.container_name} already exists and is not managed by this object",
                    warning=True,
                )
                return None
        if not image_ready:
            await self._ensure_image(obj, spec, want, docker)
        cid = await docker.create(name=want.container_name, config=want.create_config)
        if want.files or want.directories:
            try:
                await docker.put_archive(cid, path="/", tar=want.archive())
            except docker_errors.DockerError:
                # Never leave a container that could be started without its Secret/ConfigMap files.
                await docker.remove(cid)
                raise
        await self._event(obj, "Created", f"created container {want.container_name} ({cid[:12]}) on {docker.host}")
        await docker.start(cid)
        await self._event(obj, "Started", f"started container {cid[:12]}")
        return await docker.inspect(cid)

    async def _leave_previous_host(self, obj: JSON, previous: str, grace: int) -> bool:
        """Remove this object's container from `previous`; False when that host exists but is unreachable."""
        if self._dockerhosts.get(previous) is None:
            note = f"DockerHost {previous} is gone; a container left on that machine is no longer managed"
            await self._event(obj, "Moved", note, warning=True)
            return True
        conn = self._hosts.get(previous)
        if conn is None or not conn.state.reachable:
            return False
        for found in await conn.client.list_containers(labels={labels.UID: obj["metadata"]["uid"]}):
            cid = str(found["Id"])
            if found.get("State") == "running":
                await conn.client.stop(cid, grace_seconds=grace)
            await conn.client.remove(cid)
        await self._event(obj, "Moved", f"removed the container from {previous} before moving")
        return True

    async def _ensure_image(
        self, obj: JSON, spec: DockerContainerSpec, want: desired_mod.DesiredContainer, docker: DockerClient
    ) -> None:
        """Make the image present as imagePullPolicy says (before anything is stopped or created)."""
        policy = spec.effective_image_pull_policy.value
        present = await docker.image_exists(want.image)
        if policy == "Always" or (policy == "IfNotPresent" and not present):
            await self._event(obj, "Pulling", f"pulling image {want.image}")
            secrets = [
                _decode(s)
                for ref in spec.image_pull_secrets
                if (s := self._secrets.get(f"{obj['metadata']['namespace']}/{ref.name}")) is not None
            ]
            try:
                await docker.pull(
                    want.image,
                    auth=pulling.auth_for(want.image, secrets),
                    timeout=self._settings.pull_timeout,
                )
            except docker_errors.DockerAPIError as exc:
                if not present:
                    await self._event(obj, "Failed", f"cannot pull {want.image}: {exc.message}", warning=True)
                    raise
                # Always, but the registry is unreachable: run what we have, as the kubelet does not; we
                # prefer a running service over a failed pull of an image already present. Reported.
                await self._event(obj, "Failed", f"pull of {want.image} failed; using the local image", warning=True)
        elif policy == "Never" and not present:
            note = f"image {want.image} is not present and imagePullPolicy is Never"
            await self._event(obj, "Failed", note, warning=True)
            raise container_errors.ContainersError(f"image {want.image} not present (imagePullPolicy Never)")

    # ------------------------------------------------------------------------------------------ deletion

    async def _finalize(self, obj: JSON) -> float | None:
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if FINALIZER not in finalizers:
            return None
        host = (obj.get("status") or {}).get("host") or ((obj.get("spec") or {}).get("hostRef") or {}).get("name")
        orphan = (meta.get("annotations") or {}).get(ORPHAN_ANNOTATION) == "true"
        if host and not orphan:
            conn = self._hosts.get(host)
            if conn is not None and conn.state.reachable:
                grace = int((obj.get("spec") or {}).get("stopGracePeriodSeconds", 10))
                for found in await conn.client.list_containers(labels={labels.UID: meta["uid"]}):
                    cid = str(found["Id"])
                    if found.get("State") == "running":
                        await conn.client.stop(cid, grace_seconds=grace)
                    await conn.client.remove(cid)
            else:
                deleted_at = _parse_time(meta.get("deletionTimestamp")) or time.time()
                waited = time.time() - deleted_at
                if waited < self._settings.deletion_host_timeout:
                    return min(30.0, self._settings.deletion_host_timeout - waited)
                await self._event(
                    obj,
                    "Failed",
                    f"host {host} unreachable for {waited:.0f}s during deletion; the container is orphaned",
                    warning=True,
                )
        self._unhealthy.pop(meta["uid"], None)
        self._docker_restarts.pop(meta["uid"], None)
        with contextlib.suppress(kube_errors.NotFoundError):  # already gone: nothing left to release
            await self._set_finalizers(obj, [f for f in finalizers if f != FINALIZER])
        return None


def referencing_keys(
    containers: Store, namespace: str, *, secret: str | None = None, config_map: str | None = None
) -> list[str]:
    """Keys of DockerContainers in `namespace` that use the given Secret or ConfigMap (for fan-out on change)."""
    out = []
    for obj in containers.values():
        if obj["metadata"].get("namespace") != namespace:
            continue
        try:
            spec = DockerContainerSpec.model_validate(obj.get("spec") or {})
        except pydantic.ValidationError:
            continue
        if (secret is not None and secret in desired_mod.referenced_secrets(spec)) or (
            config_map is not None and config_map in desired_mod.referenced_config_maps(spec)
        ):
            out.append(f"{namespace}/{obj['metadata']['name']}")
    return out
