"""The leader's Pod label: how traffic for the leader (agents' tunnel, DockerService listeners) finds it in a cluster.

Only the replica holding the Lease serves the tunnel. Making /readyz leader-only would route the tunnel Service
right, but a Deployment whose second replica is never Ready never finishes a rolling update (maxUnavailable rounds
to 0 with two replicas). So every healthy replica is Ready, and the leader labels its own Pod
`dockyard.dev/leader=true`, which the tunnel Service's selector requires. A new leader also takes the label off any
other Pod still carrying it (a previous leader that died without cleaning up); the one that steps down removes its
own first thing at shutdown, and a container that restarts in a leader's Pod removes it before it waits for the
Lease (run.py).
"""

from __future__ import annotations

import contextlib

import structlog

from dockyard_operator.kube import errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import PODS

LEADER_LABEL = "dockyard.dev/leader"

log = structlog.get_logger(__name__)


class PodLeaderLabel:
    def __init__(self, *, client: KubeClient, namespace: str, pod: str) -> None:
        self._client = client
        self._namespace = namespace
        self._pod = pod

    async def claim(self) -> None:
        """Label our Pod, then unlabel any other (errors propagate: without the label no agent reaches us)."""
        await self._set(self._pod, "true")
        stale = await self._client.list(PODS, namespace=self._namespace, label_selector=f"{LEADER_LABEL}=true")
        for pod in stale.get("items") or []:
            name = (pod.get("metadata") or {}).get("name", "")
            if name and name != self._pod:
                log.info("removing the leader label from a previous leader's Pod", pod=name)
                with contextlib.suppress(errors.NotFoundError):
                    await self._set(name, None)

    async def release(self) -> None:
        """Best effort at shutdown; a successor removes it anyway."""
        try:
            await self._set(self._pod, None)
        except errors.KubeError as exc:
            log.warning("could not remove the leader label from our Pod", error=str(exc))

    async def _set(self, pod: str, value: str | None) -> None:
        patch = {"metadata": {"labels": {LEADER_LABEL: value}}}
        await self._client.merge_patch(PODS, pod, patch, namespace=self._namespace)
