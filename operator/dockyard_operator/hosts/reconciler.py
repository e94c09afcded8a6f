"""DockerHost reconciler: keep a connection per host, the tunnel token Secret, and the host's status."""

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
from dockyard_operator.api.common import ConditionStatus
from dockyard_operator.api.dockerhost import DockerHostSpec, DockerHostStatus, HostPhase
from dockyard_operator.containers import conditions as conditions_mod
from dockyard_operator.hosts.connections import Endpoint, HostConnections
from dockyard_operator.hosts.tokens import TOKEN_KEY, HostTokenAuthenticator, new_token, token_secret_name
from dockyard_operator.informer.store import Store
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import DOCKERHOSTS, SECRETS

JSON = dict[str, Any]


def _iso(value: datetime.datetime | None) -> str | None:
    return conditions_mod.format_time(value) if value else None


class HostReconciler:
    def __init__(
        self,
        *,
        kube: KubeClient,
        hosts: HostConnections,
        dockerhosts: Store,
        count_containers: Callable[[str], int],
        authenticator: HostTokenAuthenticator,
        tunnel_socket: Callable[[str], Awaitable[Path]] | None,
        operator_namespace: str,
        disconnect_agent: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._disconnect_agent = disconnect_agent
        self._kube = kube
        self._hosts = hosts
        self._store = dockerhosts
        self._count = count_containers
        self._auth = authenticator
        self._tunnel_socket = tunnel_socket
        self._namespace = operator_namespace
        self._log = structlog.get_logger("dockyard.dockerhost")

    async def reconcile(self, name: str) -> float | None:
        obj = self._store.get(name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            await self._hosts.remove(name)
            self._auth.forget(name)
            if self._disconnect_agent is not None:
                await self._disconnect_agent(name)  # its token is no longer valid; neither is its session
            return None
        generation = obj["metadata"].get("generation")
        try:
            spec = DockerHostSpec.model_validate(obj.get("spec") or {})
        except pydantic.ValidationError as exc:
            await self._patch_status(obj, phase=HostPhase.DISCONNECTED, ready=("False", "InvalidSpec", str(exc)))
            return None
        token_ref: common.SecretReference | None = None
        try:
            if spec.url is None:  # tunnel, the default
                if self._tunnel_socket is None:
                    message = "the operator runs without its tunnel server (--tunnel=false)"
                    await self._patch_status(obj, phase=HostPhase.DISCONNECTED, ready=("False", "NoTunnel", message))
                    return None
                token_ref = await self._ensure_token(obj)
                endpoint = Endpoint(url=f"unix://{await self._tunnel_socket(name)}", tunnel=True)
            else:
                ctx, tls_version = await self._tls_context(spec) if spec.tls is not None else (None, "")
                endpoint = Endpoint(url=spec.url, tunnel=False, tls_version=tls_version, ssl_context=ctx)
        except kube_errors.NotFoundError as exc:
            await self._patch_status(obj, phase=HostPhase.DISCONNECTED, ready=("False", "SecretNotFound", str(exc)))
            return None
        conn = await self._hosts.configure(name, endpoint)
        state = conn.state
        self._log.debug("reconciled host", host=name, decided=state.decided, reachable=state.reachable)
        if not state.decided:
            return None  # the first verdict (ping, agent session, or grace expiry) re-queues this host
        if state.reachable:
            ready = ("True", "Connected", f"Docker {state.docker_version} reachable")
        else:
            reason = "AgentNotConnected" if endpoint.tunnel else "Unreachable"
            ready = ("False", reason, state.message)
        await self._patch_status(
            obj,
            phase=HostPhase.CONNECTED if state.reachable else HostPhase.DISCONNECTED,
            ready=ready,
            extra={
                "agentVersion": state.agent_version or None,
                "dockerVersion": state.docker_version or None,
                "operatingSystem": state.os or None,
                "architecture": state.arch or None,
                "lastHeartbeat": _iso(state.last_heartbeat),
                "connectedSince": _iso(state.connected_since),
                "tokenSecretRef": token_ref.model_dump(by_alias=True) if token_ref else None,
            },
            generation=generation,
        )
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

    async def _patch_status(
        self,
        obj: JSON,
        *,
        phase: HostPhase,
        ready: tuple[str, str, str],
        extra: JSON | None = None,
        generation: int | None = None,
    ) -> None:
        name = obj["metadata"]["name"]
        current: JSON = dict(obj.get("status") or {})
        status: JSON = {k: v for k, v in current.items() if k not in ("conditions",)}
        status.update({k: v for k, v in (extra or {}).items()})
        status = {k: v for k, v in status.items() if v is not None}
        status["phase"] = phase.value
        status["observedGeneration"] = generation if generation is not None else obj["metadata"].get("generation")
        status["containers"] = self._count(name)
        status["conditions"] = conditions_mod.set_condition(
            list(current.get("conditions") or []),
            conditions_mod.ConditionUpdate("Ready", ConditionStatus(ready[0]), ready[1], ready[2][:1024]),
            observed_generation=status["observedGeneration"],
            now=datetime.datetime.now(datetime.UTC),
        )
        # Heartbeat time alone does not justify a write: idle hosts must cost the API server nothing.
        if _without(status, "lastHeartbeat") == _without(current, "lastHeartbeat"):
            return
        DockerHostStatus.model_validate(status)  # never send a status our own schema would reject
        patch = {"status": {**{k: None for k in current if k not in status}, **status}}
        await self._kube.merge_patch(DOCKERHOSTS, name, patch, subresource="status")


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


def _without(status: JSON, key: str) -> JSON:
    return {k: v for k, v in status.items() if k != key}
