"""A small generic client over kubernetes_asyncio's authenticated HTTP session.

Every object is a JSON dict. Errors are :mod:`dockyard_operator.kube.errors`. Timeouts are always set: the library's
default is none at all, which lets a half-open connection hang a caller forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import http_exceptions
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException

from dockyard_operator import tracing
from dockyard_operator.kube import errors
from dockyard_operator.kube.resources import Resource

JSON = dict[str, Any]

#: Plain requests (get, patch, create) never take longer than this end to end.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)

#: One page of a LIST. Pages are bounded by LIST_PAGE_SIZE items, so a page taking longer than this means a sick
#: server, whatever the cluster's size; a whole list has no total bound (it may have thousands of pages).
LIST_PAGE_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10, sock_read=60)

#: Items per LIST page (the `limit` parameter); client-go's reflector asks for 500 as well.
LIST_PAGE_SIZE = 500

#: The largest watch event line we accept. etcd refuses objects over 1.5 MiB by default and the API server
#: requests over 3 MiB; a line far beyond that is a broken stream, not an object.
MAX_WATCH_EVENT = 64 * 1024 * 1024

MERGE_PATCH = "application/merge-patch+json"

#: Ask for PartialObjectMetadata: name, labels, resourceVersion... and no data. An informer of Secrets in this
#: form keeps no Secret content in memory (client-go's metadata informer).
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


def proxy_from_environment(server: str) -> str | None:
    """The proxy for `server` from HTTPS_PROXY / HTTP_PROXY / NO_PROXY (either case), resolved once at start-up
    (client-go resolves it per request from the same variables); None when there is none, the host is localhost or
    a loopback address (never proxied, as in Go), or NO_PROXY covers it."""
    url = urllib.parse.urlsplit(server)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme or "https")
    if not proxy or not url.hostname:
        return None
    if url.hostname == "localhost" or _is_loopback(url.hostname):
        return None
    if _no_proxy_covers(url.hostname, proxies.get("no", "")):
        return None
    return proxy


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _no_proxy_covers(host: str, no_proxy: str) -> bool:
    """NO_PROXY's rules, close to Go's: `*`, a domain with its subdomains (`example.com`, `.example.com` and
    `*.example.com` alike), an IP (IPv6 bracketed or not) or a CIDR; ports are ignored."""
    host = host.lower().strip("[]")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if address is not None and "/" in entry:
            with contextlib.suppress(ValueError):
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            continue
        if entry.startswith("["):  # [v6] or [v6]:port
            entry = entry[1 : entry.find("]")] if "]" in entry else entry[1:]
        elif entry.count(":") == 1:  # host:port (a bare IPv6 address has more colons)
            entry = entry.rsplit(":", 1)[0]
        entry = entry.removeprefix("*").lstrip(".")
        if host == entry or host.endswith("." + entry):
            return True
    return False


#: Requests that change something: each gets a child span inside a reconcile (reads come from the cache).
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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
        if cfg.proxy is None:
            cfg.proxy = proxy_from_environment(str(cfg.host))
        api = k8s_client.ApiClient(cfg)
        # kubernetes_asyncio opens its session with trust_env=True, which makes aiohttp read ~/.netrc and the proxy
        # variables in a worker thread on every single request (two thread hops per call; a tenth of the operator's
        # CPU in a rollout). The proxy was resolved once above, as client-go does; netrc has no place here.
        api.rest_client.pool_manager._trust_env = False
        return cls(api)

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
        accept: str = "application/json",
        request_timeout: aiohttp.ClientTimeout = REQUEST_TIMEOUT,
    ) -> aiohttp.ClientResponse:
        params = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items()]
        if self.on_request is not None:
            self.on_request(method, path)
        if method in _WRITES:
            with tracing.child_span(f"kube {method}", {"http.request.method": method, "url.path": path}):
                return await self._send_now(method, path, params, body, content_type, accept, request_timeout)
        return await self._send_now(method, path, params, body, content_type, accept, request_timeout)

    async def _send_now(
        self,
        method: str,
        path: str,
        params: list[tuple[str, str]],
        body: Any,
        content_type: str,
        accept: str,
        request_timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        try:
            resp: aiohttp.ClientResponse = await self._api.call_api(
                path,
                method,
                query_params=params,
                header_params={"Content-Type": content_type, "Accept": accept},
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
        accept: str = "application/json",
        request_timeout: aiohttp.ClientTimeout = REQUEST_TIMEOUT,
    ) -> JSON:
        resp = await self._send(
            method,
            path,
            query=query,
            body=body,
            content_type=content_type,
            accept=accept,
            request_timeout=request_timeout,
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

    async def stream(self, path: str, *, query: Mapping[str, str | int | bool] | None = None) -> AsyncIterator[bytes]:
        """GET a streaming body (a followed log): chunks as they arrive, until the server ends it."""
        forever = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)
        resp = await self._send("GET", path, query=query, accept="*/*", request_timeout=forever)
        try:
            async for chunk in resp.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, OSError) as exc:
            raise errors.KubeConnectionError(f"GET {path}: {exc!r}") from exc
        finally:
            resp.close()

    async def websocket(
        self, path: str, *, query: list[tuple[str, str]], protocols: tuple[str, ...]
    ) -> aiohttp.ClientWebSocketResponse:
        """Open a WebSocket to the API server with this client's credentials (exec, port-forward)."""
        cfg = self._api.configuration
        headers = {}
        # Refreshes exec-plugin and file tokens first, as for every other request.
        token = await cfg.get_api_key_with_prefix("BearerToken", alias="authorization")
        if token:
            headers["Authorization"] = token
        session: aiohttp.ClientSession = self._api.rest_client.pool_manager
        url = f"{str(cfg.host).rstrip('/')}{path}"
        try:
            return await session.ws_connect(
                url, params=query, headers=headers, protocols=protocols, max_msg_size=4 * 1024 * 1024,
                proxy=cfg.proxy, timeout=aiohttp.ClientWSTimeout(ws_close=10),
            )  # fmt: skip
        except aiohttp.WSServerHandshakeError as exc:
            reasons = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 503: "ServiceUnavailable"}
            body = {
                "kind": "Status",
                "code": exc.status,
                "reason": reasons.get(exc.status, ""),
                "message": f"GET {path}: {exc.status} {reasons.get(exc.status, exc.message)}",
            }
            raise errors.from_status(exc.status, body) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise errors.KubeConnectionError(f"GET {path}: {exc!r}") from exc

    # -- verbs ---------------------------------------------------------------------------------------------

    async def get(self, resource: Resource, name: str, *, namespace: str | None = None) -> JSON:
        return await self.request("GET", resource.path(namespace=namespace, name=name))

    async def list(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        metadata_only: bool = False,
        page_size: int = LIST_PAGE_SIZE,
    ) -> JSON:
        """Every object, read in pages of `page_size` (`limit`/`continue`), as one List.

        The result's resourceVersion is the first page's: the consistent snapshot a watch resumes from. If the
        continue token expires mid-list (410), the error propagates and the caller lists again from scratch.
        """
        query: dict[str, str | int | bool] = {"limit": page_size}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        accept = METADATA_LIST if metadata_only else "application/json"
        path = resource.path(namespace=namespace)
        first = await self.request("GET", path, query=query, accept=accept, request_timeout=LIST_PAGE_TIMEOUT)
        items: list[JSON] = list(first.get("items") or [])
        token = (first.get("metadata") or {}).get("continue")
        while token:
            try:
                page = await self.request(
                    "GET", path, query={**query, "continue": token}, accept=accept, request_timeout=LIST_PAGE_TIMEOUT
                )
            except errors.GoneError:
                # The continue token expired (the snapshot was compacted away mid-list): one unpaged list, as
                # client-go's pager falls back to, rather than starting over and expiring again.
                unpaged = {k: v for k, v in query.items() if k != "limit"}
                full = await self.request("GET", path, query=unpaged, accept=accept, request_timeout=LIST_PAGE_TIMEOUT)
                full.setdefault("metadata", {}).pop("continue", None)
                return full
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
        first["items"] = items
        first.setdefault("metadata", {}).pop("continue", None)
        return first

    async def create(self, resource: Resource, body: JSON, *, namespace: str | None = None) -> JSON:
        return await self.request("POST", resource.path(namespace=namespace), body=body)

    async def create_with_raw_data(self, resource: Resource, body: JSON, *, namespace: str | None = None) -> JSON:
        """Create an object that embeds raw JSON (a ControllerRevision's `data`), in the API server's canonical form.

        The server keeps such a field as the exact bytes it received and compares them byte for byte on every
        update: bytes in our serializer's form (spaces, insertion-ordered keys) make any later patch of the object
        — even the garbage collector removing an ownerReference — fail with "data: field is immutable". Sent as
        YAML (JSON is YAML), the server converts it with Go's encoder, so the stored bytes are canonical.
        """
        return await self.request(
            "POST", resource.path(namespace=namespace), body=json.dumps(body).encode(), content_type="application/yaml"
        )

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

    async def delete(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str | None = None,
        propagation: str | None = None,
        uid: str | None = None,
    ) -> JSON:
        """Delete an object; `propagation` Foreground/Background/Orphan, `uid` a precondition (the object we mean,
        not a new one of the same name)."""
        options: JSON = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation is not None:
            options["propagationPolicy"] = propagation
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        body = options if len(options) > 2 else None
        return await self.request("DELETE", resource.path(namespace=namespace, name=name), body=body)

    async def watch(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        resource_version: str,
        timeout_seconds: int,
        inactivity_timeout: float,
        label_selector: str | None = None,
        metadata_only: bool = False,
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
        accept = METADATA_ONLY if metadata_only else "application/json"
        resp = await self._send(
            "GET", resource.path(namespace=namespace), query=query, accept=accept, request_timeout=timeout
        )
        try:
            while True:
                try:
                    async with asyncio.timeout(inactivity_timeout):
                        line = await resp.content.readline(max_line_length=MAX_WATCH_EVENT)
                except TimeoutError:
                    raise errors.WatchStalledError(
                        f"watch on {resource.plural} was silent for {inactivity_timeout:.0f}s"
                    ) from None
                except http_exceptions.LineTooLong as exc:
                    raise errors.KubeConnectionError(
                        f"watch on {resource.plural}: an event exceeds {MAX_WATCH_EVENT} bytes"
                    ) from exc
                except (aiohttp.ClientError, http_exceptions.HttpProcessingError, OSError) as exc:
                    raise errors.KubeConnectionError(f"watch on {resource.plural}: {exc!r}") from exc
                if not line:
                    return
                try:
                    event = json.loads(line)
                except ValueError as exc:
                    raise errors.KubeConnectionError(f"watch on {resource.plural}: a line is not JSON") from exc
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise errors.from_status(int(status.get("code") or 500), status)
                yield event
        finally:
            resp.close()
