"""A small generic client over kubernetes_asyncio's authenticated HTTP session.

Every object is a JSON dict. Errors are :mod:`dockyard_operator.kube.errors`. Timeouts are always set: the library's
default is none at all, which lets a half-open connection hang a caller forever.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException

from dockyard_operator.kube import errors
from dockyard_operator.kube.resources import Resource

JSON = dict[str, Any]

#: Plain requests (get, list, patch) never take longer than this end to end.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)

MERGE_PATCH = "application/merge-patch+json"


class KubeClient:
    """The operator's handle on one API server."""

    def __init__(self, api: k8s_client.ApiClient) -> None:
        self._api = api
        #: Called with (HTTP method, path) for every request sent; the operator counts them in /metrics.
        self.on_request: Callable[[str, str], None] | None = None

    @classmethod
    async def connect(cls, *, kubeconfig: str | None = None, context: str | None = None) -> KubeClient:
        """Load credentials: an explicit kubeconfig, else in-cluster, else $KUBECONFIG / ~/.kube/config."""
        cfg = k8s_client.Configuration()
        try:
            if kubeconfig is None:
                try:
                    k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
                except ConfigException:
                    await k8s_config.load_kube_config(context=context, client_configuration=cfg)
            else:
                await k8s_config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
        except (ConfigException, OSError) as exc:
            raise errors.KubeError(f"cannot load Kubernetes credentials: {exc}") from exc
        return cls(k8s_client.ApiClient(cfg))

    @property
    def server(self) -> str:
        return str(self._api.configuration.host)

    async def close(self) -> None:
        await self._api.close()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        request_timeout: aiohttp.ClientTimeout = REQUEST_TIMEOUT,
    ) -> aiohttp.ClientResponse:
        params = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items()]
        if self.on_request is not None:
            self.on_request(method, path)
        try:
            resp: aiohttp.ClientResponse = await self._api.call_api(
                path,
                method,
                query_params=params,
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=request_timeout,
            )
        except ApiException as exc:  # raised before any response exists (malformed request)
            raise errors.KubeError(f"{method} {path}: {exc.reason}") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise errors.KubeConnectionError(f"{method} {path}: {exc!r}") from exc
        if resp.status >= 400:
            try:
                raw = await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise errors.KubeConnectionError(f"{method} {path}: {exc!r}") from exc
            finally:
                resp.release()
            try:
                decoded: Any = json.loads(raw)
            except ValueError:
                decoded = raw.decode(errors="replace")
            error = errors.from_status(resp.status, decoded)
            header = resp.headers.get("Retry-After", "")
            if error.retry_after is None and header.isdigit():
                error.details["retryAfterSeconds"] = int(header)
            raise error
        return resp

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        request_timeout: aiohttp.ClientTimeout = REQUEST_TIMEOUT,
    ) -> JSON:
        resp = await self._send(
            method, path, query=query, body=body, content_type=content_type, request_timeout=request_timeout
        )
        try:
            raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise errors.KubeConnectionError(f"{method} {path}: {exc!r}") from exc
        finally:
            resp.release()
        data = json.loads(raw) if raw else {}
        if not isinstance(data, dict):
            raise errors.KubeError(f"{method} {path}: expected a JSON object, got {type(data).__name__}")
        return data

    # -- verbs ---------------------------------------------------------------------------------------------

    async def get(self, resource: Resource, name: str, *, namespace: str | None = None) -> JSON:
        return await self.request("GET", resource.path(namespace=namespace, name=name))

    async def list(
        self, resource: Resource, *, namespace: str | None = None, label_selector: str | None = None
    ) -> JSON:
        query: dict[str, str | int | bool] = {}
        if label_selector:
            query["labelSelector"] = label_selector
        return await self.request("GET", resource.path(namespace=namespace), query=query)

    async def create(self, resource: Resource, body: JSON, *, namespace: str | None = None) -> JSON:
        return await self.request("POST", resource.path(namespace=namespace), body=body)

    async def replace(self, resource: Resource, name: str, body: JSON, *, namespace: str | None = None) -> JSON:
        return await self.request("PUT", resource.path(namespace=namespace, name=name), body=body)

    async def merge_patch(
        self,
        resource: Resource,
        name: str,
        patch: JSON,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> JSON:
        # Custom resources reject strategic merge patch and kubernetes_asyncio would default a dict body to
        # json-patch; a merge patch is what every caller here means.
        path = resource.path(namespace=namespace, name=name, subresource=subresource)
        return await self.request("PATCH", path, body=patch, content_type=MERGE_PATCH)

    async def delete(self, resource: Resource, name: str, *, namespace: str | None = None) -> JSON:
        return await self.request("DELETE", resource.path(namespace=namespace, name=name))

    async def watch(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        resource_version: str,
        timeout_seconds: int,
        inactivity_timeout: float,
        label_selector: str | None = None,
    ) -> AsyncIterator[JSON]:
        """One watch request: yields raw watch events until the server ends the stream.

        Raises :class:`errors.GoneError` on 410 (re-list) and :class:`errors.WatchStalledError` when nothing at all
        (not even a bookmark) arrived for ``inactivity_timeout`` seconds — the silent-dead-stream failure.
        """
        query: dict[str, str | int | bool] = {
            "watch": True,
            "resourceVersion": resource_version,
            "allowWatchBookmarks": True,
            "timeoutSeconds": timeout_seconds,
        }
        if label_selector:
            query["labelSelector"] = label_selector
        # No total timeout (the stream is long-lived by design); the server's timeoutSeconds ends it normally.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)
        resp = await self._send("GET", resource.path(namespace=namespace), query=query, request_timeout=timeout)
        try:
            while True:
                try:
                    async with asyncio.timeout(inactivity_timeout):
                        line = await resp.content.readline()
                except TimeoutError:
                    raise errors.WatchStalledError(
                        f"watch on {resource.plural} was silent for {inactivity_timeout:.0f}s"
                    ) from None
                except (aiohttp.ClientError, OSError) as exc:
                    raise errors.KubeConnectionError(f"watch on {resource.plural}: {exc!r}") from exc
                if not line:
                    return
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise errors.from_status(int(status.get("code") or 500), status)
                yield event
        finally:
            resp.close()
