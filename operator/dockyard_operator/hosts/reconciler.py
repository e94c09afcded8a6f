"""DockerHost reconciler: keep a connection per host of our class, the tunnel token Secret, the host's status, and
drain the host before it is deleted (hosts/reporting.py decides; this module performs)."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pydantic
import structlog

from dockyard_operator.api import common
from dockyard_operator.api.dockerhost import DockerHost, DockerHostSpec, DockerHostStatus
from dockyard_operator.hosts import classes, reporting
from dockyard_operator.hosts.connections import Endpoint, HostConnections
from dockyard_operator.hosts.tokens import TOKEN_KEY, HostTokenAuthenticator, new_token, token_secret_name
from dockyard_operator.informer.store import Reader
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.recording import EventRecorder
from dockyard_operator.kube.resources import DOCKERHOSTS, SECRETS
from dockyard_operator.runtime import finalizers
from dockyard_operator.runtime.consistency import WriteTracker
from dockyard_operator.runtime.recording import record
from dockyard_operator.runtime.statuses import StatusWriter

JSON = dict[str, Any]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class HostReconciler:
    def __init__(
        self,
        *,
        kube: KubeClient,
        recorder: EventRecorder,
        hosts: HostConnections,
        dockerhosts: Reader,
        placed_on: Callable[[str], list[str]],
        authenticator: HostTokenAuthenticator,
        tunnel_socket: Callable[[str], Awaitable[Path]] | None,
        operator_namespace: str,
        operator_class: str,
        tracker: WriteTracker,
        drain_timeout: float,
        disconnect_agent: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._disconnect_agent = disconnect_agent
        self._kube = kube
        self._recorder = recorder
        self._hosts = hosts
        self._store = dockerhosts
        self._placed_on = placed_on
        self._auth = authenticator
        self._tunnel_socket = tunnel_socket
        self._namespace = operator_namespace
        self._class = operator_class
        self._tracker = tracker
        self._drain_timeout = drain_timeout
        self._status = StatusWriter(kube=kube, resource=DOCKERHOSTS, model=DockerHostStatus, tracker=tracker)
        self._log = structlog.get_logger("dockyard.dockerhost")

    def serves(self, obj: JSON) -> bool:
        return classes.host_class(obj) == self._class

    async def load_tokens(self) -> None:
        """Load the agent tokens of every tunnel host of our class before agents are answered with a verdict
        (until this returns, the tunnel answers 503 "retry" instead of 401)."""
        for obj in self._store.values():
            if (
                self.serves(obj)
                and not (obj.get("spec") or {}).get("url")
                and not obj["metadata"].get("deletionTimestamp")
            ):
                try:
                    await self._ensure_token(obj)
                except kube_errors.KubeError as exc:
                    self._log.warning("could not load an agent token", host=obj["metadata"]["name"], error=str(exc))
        self._auth.mark_loaded()

    async def _forget(self, name: str) -> None:
        await self._hosts.remove(name)
        self._auth.forget(name)
        if self._disconnect_agent is not None:
            await self._disconnect_agent(name)  # its token is no longer valid; neither is its session

    async def reconcile(self, name: str) -> float | None:
        obj = self._store.get(name)
        if obj is None or not self.serves(obj):
            await self._forget(name)
            return None
        if obj["metadata"].get("deletionTimestamp"):
            return await self._drain(obj)
        if await finalizers.add(self._kube, DOCKERHOSTS, obj, reporting.FINALIZER, self._tracker) is not None:
            return None
        generation = obj["metadata"].get("generation")
        current = self._status.read(obj)
        try:
            host = DockerHost.model_validate(obj)
        except pydantic.ValidationError as exc:
            await self._status.write(
                obj, reporting.failed(current, "InvalidSpec", str(exc), generation=generation, now=_now())
            )
            return None
        spec = host.spec
        token_ref: common.SecretReference | None = None
        try:
            if spec.url is None:  # tunnel, the default
                if self._tunnel_socket is None:
                    message = "the operator runs without its tunnel server (--tunnel=false)"
                    await self._status.write(
                        obj, reporting.failed(current, "NoTunnel", message, generation=generation, now=_now())
                    )
                    return None
                token_ref = await self._ensure_token(obj)
                endpoint = Endpoint(url=f"unix://{await self._tunnel_socket(name)}", tunnel=True)
            else:
                ctx, tls_version = await self._tls_context(spec) if spec.tls is not None else (None, "")
                endpoint = Endpoint(url=spec.url, tunnel=False, tls_version=tls_version, ssl_context=ctx)
        except kube_errors.NotFoundError as exc:
            missing = reporting.failed(current, "SecretNotFound", str(exc), generation=generation, now=_now())
            await self._status.write(obj, missing)
            return None
        conn = await self._hosts.configure(name, endpoint)
        status = reporting.status_for(
            current,
            state=conn.state,
            tunnel=endpoint.tunnel,
            containers=len(self._placed_on(name)),
            token_ref=token_ref,
            generation=generation,
            now=_now(),
        )
        if status is None or reporting.heartbeat_only(current, status):
            return None  # no verdict yet (it re-queues us), or only the heartbeat moved
        await self._status.write(obj, status)
        return None

    async def _drain(self, obj: JSON) -> float | None:
        if not finalizers.has(obj, reporting.FINALIZER):
            await self._forget(obj["metadata"]["name"])
            return None
        name = obj["metadata"]["name"]
        deleted = obj["metadata"]["deletionTimestamp"]
        waited = (_now() - datetime.datetime.fromisoformat(deleted.replace("Z", "+00:00"))).total_seconds()
        orphan = (obj["metadata"].get("annotations") or {}).get(reporting.ORPHAN_ANNOTATION) == "true"
        drain = reporting.decide_drain(
            placed=self._placed_on(name), orphan=orphan, waited=waited, timeout=self._drain_timeout
        )
        await record(self._recorder, obj, drain.events)
        if not drain.release:
            current = self._status.read(obj)
            generation = obj["metadata"].get("generation")
            await self._status.write(
                obj,
                reporting.failed(current, "Draining", drain.message, generation=generation, now=_now()).model_copy(
                    update={"phase": current.phase}
                ),
            )
            return drain.requeue_after
        await self._forget(name)
        await finalizers.remove(self._kube, DOCKERHOSTS, obj, reporting.FINALIZER, self._tracker)
        return None

    async def _ensure_token(self, obj: JSON) -> common.SecretReference:
        name = obj["metadata"]["name"]
        secret_name = token_secret_name(name)
        try:
            secret = await self._kube.get(SECRETS, secret_name, namespace=self._namespace)
            owners = {o.get("uid") for o in secret["metadata"].get("ownerReferences") or []}
            if obj["metadata"]["uid"] not in owners:
                # Left over from an earlier DockerHost of the same name: its token must not admit this one.
                await self._kube.delete(SECRETS, secret_name, namespace=self._namespace)
                raise kube_errors.NotFoundError(404, "NotFound", f"stale {secret_name} replaced")
            token = base64.b64decode(secret.get("data", {}).get(TOKEN_KEY, "")).decode()
        except kube_errors.NotFoundError:
            token = new_token()
            body: JSON = {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {
                    "name": secret_name,
                    "namespace": self._namespace,
                    "labels": {"dockyard.dev/host": name, "app.kubernetes.io/managed-by": "dockyard"},
                    # A cluster-scoped owner may own a namespaced object: deleting the host deletes its token.
                    "ownerReferences": [
                        {
                            "apiVersion": obj["apiVersion"],
                            "kind": obj["kind"],
                            "name": name,
                            "uid": obj["metadata"]["uid"],
                        }
                    ],
                },
                "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()},
            }
            try:
                await self._kube.create(SECRETS, body, namespace=self._namespace)
                self._log.info("created agent token secret", host=name, secret=secret_name)
            except kube_errors.ConflictError:  # created concurrently; read the winner's token
                secret = await self._kube.get(SECRETS, secret_name, namespace=self._namespace)
                token = base64.b64decode(secret.get("data", {}).get(TOKEN_KEY, "")).decode()
        if token:
            self._auth.set_token(name, token)
        return common.SecretReference(name=secret_name, namespace=self._namespace)

    async def _tls_context(self, spec: DockerHostSpec) -> tuple[ssl.SSLContext, str]:
        """The client TLS context, and the Secret's identity (a rotated Secret means a new connection)."""
        assert spec.tls is not None
        ref = spec.tls.secret_ref
        secret = await self._kube.get(SECRETS, ref.name, namespace=ref.namespace)
        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        version = f"{ref.namespace}/{ref.name}@{secret['metadata'].get('resourceVersion', '')}"
        return await asyncio.to_thread(_client_tls, data), version


def _client_tls(data: dict[str, bytes]) -> ssl.SSLContext:
    """TLS for a direct tcp:// Docker host from a Secret with ca.crt and optionally tls.crt/tls.key (mTLS)."""
    if "ca.crt" in data:
        ctx = ssl.create_default_context(cadata=data["ca.crt"].decode())
    else:
        ctx = ssl.create_default_context()
    if "tls.crt" in data and "tls.key" in data:
        # ssl loads a client key pair only from files: a private temp dir holds them just for the load.
        with tempfile.TemporaryDirectory(prefix="dockyard-tls-") as tmp:
            cert, key = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
            cert.write_bytes(data["tls.crt"])
            key.touch(mode=0o600)
            key.write_bytes(data["tls.key"])
            ctx.load_cert_chain(cert, key)
    return ctx
