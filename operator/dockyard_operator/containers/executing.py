"""The executor: performs a decision's Docker actions, one after the other, and says which step failed.

Thin on purpose: what to do was decided in decisions.py; here a failed pull, create or start becomes a
:class:`StepFailed` carrying Docker's words (the next decision turns it into ErrImagePull, RunContainerError...),
and anything else propagates (a host that stopped answering is not a property of the container).
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard_operator.api import labels
from dockyard_operator.api.dockercontainer import DockerContainerSpec, EventReason, PullPolicy
from dockyard_operator.containers import desired as desired_mod
from dockyard_operator.containers import pulling
from dockyard_operator.containers.actions import (
    Action,
    CreateContainer,
    EnsureImage,
    RemoveContainer,
    RestartContainer,
    StartContainer,
)
from dockyard_operator.containers.backoffs import Failure, FailureKind
from dockyard_operator.containers.decisions import Found
from dockyard_operator.containers.desired import DesiredContainer
from dockyard_operator.dockerapi import errors as docker_errors
from dockyard_operator.dockerapi.client import DockerClient
from dockyard_operator.runtime.plans import Event

JSON = dict[str, Any]


class StepFailed(Exception):
    """A pull, create or start failed in a way the container's status should show."""

    def __init__(self, failure: Failure, *, created: Created | None = None) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.created = created
        """Set when the step that failed came after a successful create (a start): the container exists."""


@dataclass(frozen=True)
class Created:
    """What the executor already knows after creating a container: the next look needs no list or inspect."""

    found: Found
    inspect: JSON


def _decode(secret: Mapping[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


class Executor:
    """Performs the actions of one reconcile of one DockerContainer."""

    def __init__(
        self,
        *,
        docker_for: Callable[[str], DockerClient | None],
        record: Callable[[Event], Awaitable[None]],
        pull_secrets: Callable[[], Awaitable[list[JSON]]],
        spec: DockerContainerSpec | None,
        desired: DesiredContainer | None,
        pull_timeout: float,
    ) -> None:
        self._docker_for = docker_for
        self._record = record
        self._pull_secrets = pull_secrets
        self._spec = spec
        self._desired = desired
        self._pull_timeout = pull_timeout

    def _docker(self, host: str) -> DockerClient:
        docker = self._docker_for(host)
        if docker is None:
            raise docker_errors.DockerUnavailableError(f"{host}: no connection")
        return docker

    async def run(self, host: str, actions: Sequence[Action]) -> Created | None:
        """Perform `actions` in order; stops at the first failure (StepFailed or a Docker error)."""
        created: Created | None = None
        for action in actions:
            if isinstance(action, RemoveContainer):
                await self.remove(action)
            elif isinstance(action, EnsureImage):
                await self._ensure_image(self._docker(host), action)
            elif isinstance(action, CreateContainer):
                created = await self._create(self._docker(action.host))
            elif isinstance(action, StartContainer):
                await self._start(self._docker(host), action.container_id)
            elif isinstance(action, RestartContainer):
                await self._docker(host).restart(action.container_id, grace_seconds=action.grace_seconds)
        return created

    async def remove(self, action: RemoveContainer) -> None:
        docker = self._docker(action.host)
        if action.running:
            await docker.stop(action.container_id, grace_seconds=action.grace_seconds)
        if action.keep_as_previous and self._desired is not None:
            previous = desired_mod.previous_container_name(self._desired.container_name)
            await docker.remove(previous)  # only one is kept
            await docker.keep_stopped(action.container_id, name=previous)
            return
        await docker.remove(action.container_id)

    async def _ensure_image(self, docker: DockerClient, action: EnsureImage) -> None:
        present = await docker.image_exists(action.image)
        if action.policy is PullPolicy.ALWAYS or (action.policy is PullPolicy.IF_NOT_PRESENT and not present):
            await self._record(Event(EventReason.PULLING.value, f"Pulling image {action.image!r}"))
            secrets = await self._pull_secrets()
            try:
                await docker.pull(
                    action.image,
                    auth=pulling.auth_for(action.image, [_decode(s) for s in secrets]),
                    timeout=self._pull_timeout,
                )
            except docker_errors.DockerAPIError as exc:
                if not present:
                    raise StepFailed(Failure(FailureKind.PULL, exc.message)) from exc
                # Always, but the registry is unreachable: run what we have (the kubelet would not; we prefer a
                # running service over a failed pull of an image already present). Reported.
                note = f"pull of {action.image!r} failed; using the local image: {exc.message}"
                await self._record(Event(EventReason.FAILED.value, note, warning=True))
            else:
                await self._record(Event(EventReason.PULLED.value, f"Successfully pulled image {action.image!r}"))
        elif action.policy is PullPolicy.NEVER and not present:
            raise StepFailed(Failure(FailureKind.NEVER_PULL, f"image {action.image!r} is not present"))

    async def _create(self, docker: DockerClient) -> Created:
        want = self._desired
        assert want is not None
        body = want.create_body()
        body["Labels"] = {**body["Labels"], labels.HOST: docker.host}
        try:
            cid = await docker.create(name=want.container_name, config=body)
        except docker_errors.DockerConflictError as exc:
            raise StepFailed(
                Failure(
                    FailureKind.NAME_CONFLICT,
                    f"a container named {want.container_name} already exists and is not managed by this object",
                )
            ) from exc
        except docker_errors.DockerAPIError as exc:
            raise StepFailed(Failure(FailureKind.CREATE, exc.message)) from exc
        if want.files or want.directories:
            try:
                await docker.put_archive(cid, path="/", tar=want.archive())
            except docker_errors.DockerError:
                # Never leave a container that could be started without its Secret/ConfigMap files.
                await docker.remove(cid)
                raise
        await self._record(
            Event(EventReason.CREATED.value, f"Created container {want.container_name} on {docker.host}")
        )
        try:
            await self._start(docker, cid)
        except StepFailed as failed:
            raise StepFailed(failed.failure, created=await self._created(docker, cid)) from failed
        return await self._created(docker, cid)

    async def _created(self, docker: DockerClient, cid: str) -> Created:
        inspect = await docker.inspect(cid)
        state = (inspect.get("State") or {}).get("Status")
        found = Found(
            id=cid,
            created=0,
            spec_hash=((inspect.get("Config") or {}).get("Labels") or {}).get(labels.SPEC_HASH),
            running=state == "running",
        )
        return Created(found=found, inspect=inspect)

    async def _start(self, docker: DockerClient, cid: str) -> None:
        try:
            await docker.start(cid)
        except docker_errors.DockerUnavailableError:
            raise
        except docker_errors.DockerAPIError as exc:
            raise StepFailed(Failure(FailureKind.START, exc.message)) from exc
        await self._record(Event(EventReason.STARTED.value, f"Started container {cid[:12]}"))
