"""Leader election on a coordination.k8s.io/v1 Lease, with controller-runtime's timings (15 s / 10 s / 2 s).

Only the leader reconciles, so two replicas never both act on a Docker host. Expiry is judged on our own
monotonic clock from when we last saw the Lease change (client-go's approach), never by comparing our wall clock
with another process's timestamps, so clock skew between replicas cannot cause two leaders.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import structlog

from dockyard_operator.kube import errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.recording import micro_time
from dockyard_operator.kube.resources import LEASES


@dataclasses.dataclass(frozen=True)
class LeaderElectionSettings:
    lease_duration: float = 15.0
    """How long a Lease is honoured after its holder stopped renewing (seconds)."""

    renew_deadline: float = 10.0
    """The leader gives up (and the process stops acting) if it could not renew for this long."""

    retry_period: float = 2.0
    """Pause between acquire attempts and between renewals."""

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("need 0 < retry_period < renew_deadline < lease_duration")


class LeaderElector:
    def __init__(
        self,
        *,
        client: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        settings: LeaderElectionSettings | None = None,
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._name = name
        self.identity = identity
        self._settings = settings or LeaderElectionSettings()
        self.is_leader = asyncio.Event()
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) when it last changed
        self._observed_at = 0.0
        self._log = structlog.get_logger("dockyard.leader").bind(lease=f"{namespace}/{name}", identity=identity)

    def _spec(self, *, transitions: int, acquire_time: str) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self._settings.lease_duration),
            "acquireTime": acquire_time,
            "renewTime": micro_time(),
            "leaseTransitions": transitions,
        }

    async def _try_acquire_or_renew(self) -> bool:
        try:
            lease = await self._client.get(LEASES, self._name, namespace=self._namespace)
        except errors.NotFoundError:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self._name, "namespace": self._namespace},
                "spec": self._spec(transitions=0, acquire_time=micro_time()),
            }
            try:
                await self._client.create(LEASES, body, namespace=self._namespace)
            except errors.ConflictError:
                return False
            return True
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        observed = (holder, str(spec.get("renewTime") or ""))
        now = time.monotonic()
        if observed != self._observed:
            self._observed, self._observed_at = observed, now
        duration = float(spec.get("leaseDurationSeconds") or self._settings.lease_duration)
        if holder and holder != self.identity and now - self._observed_at < duration:
            return False  # someone else holds a live lease
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            new_spec = self._spec(transitions=transitions, acquire_time=str(spec.get("acquireTime") or micro_time()))
        else:
            new_spec = self._spec(transitions=transitions + 1, acquire_time=micro_time())
        lease["spec"] = new_spec
        try:
            # PUT with the resourceVersion we read: if anyone wrote in between, we get 409 and try again later.
            await self._client.replace(LEASES, self._name, lease, namespace=self._namespace)
        except errors.ConflictError:
            return False
        return True

    async def acquire(self) -> None:
        """Block until we hold the Lease."""
        while True:
            try:
                if await self._try_acquire_or_renew():
                    self._log.info("became leader")
                    self.is_leader.set()
                    return
            except errors.KubeError as exc:
                self._log.warning("leader election attempt failed", error=str(exc))
            await asyncio.sleep(self._settings.retry_period)

    async def hold(self) -> None:
        """Renew until cancelled; raise errors.LeadershipLostError if renewal fails for renew_deadline."""
        last_renew = time.monotonic()
        while True:
            await asyncio.sleep(self._settings.retry_period)
            try:
                async with asyncio.timeout(self._settings.renew_deadline):
                    ok = await self._try_acquire_or_renew()
            except (errors.KubeError, TimeoutError) as exc:
                self._log.warning("lease renewal failed", error=str(exc))
                ok = False
            if ok:
                last_renew = time.monotonic()
            elif time.monotonic() - last_renew >= self._settings.renew_deadline:
                self.is_leader.clear()
                raise errors.LeadershipLostError(f"could not renew lease {self._namespace}/{self._name}")

    async def release(self) -> None:
        """Hand the Lease over at shutdown so a standby takes over without waiting for expiry."""
        if not self.is_leader.is_set():
            return
        try:
            lease = await self._client.get(LEASES, self._name, namespace=self._namespace)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                lease["spec"]["leaseDurationSeconds"] = 1
                await self._client.replace(LEASES, self._name, lease, namespace=self._namespace)
        except errors.KubeError as exc:
            self._log.warning("could not release lease", error=str(exc))
        self.is_leader.clear()
