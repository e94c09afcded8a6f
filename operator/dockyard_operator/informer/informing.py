"""List-then-watch loop with resume, relist on 410 Gone, and a watchdog for silently dead streams.

Behaviour (client-go's reflector, kopf's watcher, and the kubernetes_asyncio pitfalls in library-notes §6):
- list, remember the list's resourceVersion, then watch from it with bookmarks on;
- each watch request asks the server to end it after `timeout_seconds`; we resume from the last seen
  resourceVersion (bookmarks advance it even when nothing changes);
- a watch that says nothing, not even a bookmark, for `inactivity_timeout` is treated as dead and resumed;
- 410 Gone (our resourceVersion fell out of the server's window) means re-list; the store is replaced and
  every difference is reported, so no change is lost across the gap;
- connection errors back off exponentially (capped) and resume; repeated failures fall back to a re-list;
- a watch that the server ends at once without a single event is a failure too (client-go: "very short watch"):
  resuming it immediately would spin (tens of thousands of requests a second against a broken proxy);
- LIST is paged (`limit`/`continue`) with a per-page timeout, so a big cluster lists in bounded steps;
- `metadata_only` informers keep PartialObjectMetadata: the operator knows a Secret changed without holding it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import structlog

from dockyard_operator.informer.store import JSON, Store, object_key
from dockyard_operator.kube import errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import Resource

Handler = Callable[[str, JSON, "JSON | None"], None]
"""Called with (event type, object, previous object or None) for ADDED, MODIFIED and DELETED; must not block.

For DELETED the object is the last state the server reported and the previous one is what the cache held."""


@dataclasses.dataclass(frozen=True)
class WatchSettings:
    timeout_seconds: int = 300
    """Ask the server to end each watch after this long; we resume at once. Bounds a stuck request's life."""

    inactivity_timeout: float = 130.0
    """The API server sends a bookmark about once a minute; two missed ones plus a margin mean the stream is dead.
    (70 s was too tight: on a busy 2-core machine quiet watches, Secrets and ConfigMaps, hit it every minute.)"""

    backoff_initial: float = 0.1
    """First pause after a failed list or watch (seconds)."""

    backoff_max: float = 10.0
    """Cap on the pause between retries (seconds)."""

    relist_after_failures: int = 3
    """After this many consecutive watch failures, re-list instead of resuming (the RV may be the problem)."""

    min_watch_duration: float = 1.0
    """A watch that ends sooner than this without delivering any event counts as a failure and backs off,
    instead of being resumed at once (client-go's reflector treats it the same way)."""

    def __post_init__(self) -> None:
        if self.timeout_seconds < 1 or self.inactivity_timeout <= 0:
            raise ValueError("timeout_seconds must be >= 1 and inactivity_timeout > 0")
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise ValueError("need 0 < backoff_initial <= backoff_max")


class Informer:
    """Keeps :attr:`store` in line with one resource (optionally one namespace) and reports changes."""

    def __init__(
        self,
        *,
        client: KubeClient,
        resource: Resource,
        namespace: str | None = None,
        settings: WatchSettings | None = None,
        label_selector: str | None = None,
        metadata_only: bool = False,
    ) -> None:
        self._client = client
        self._resource = resource
        self._namespace = namespace
        self._settings = settings or WatchSettings()
        self._label_selector = label_selector
        self._metadata_only = metadata_only
        self._handlers: list[Handler] = []
        self.store = Store()
        self.synced = asyncio.Event()
        self.relists = 0
        self.watch_restarts = 0
        self._log = structlog.get_logger("dockyard.informer").bind(resource=resource.plural, namespace=namespace or "*")

    @property
    def resource(self) -> Resource:
        return self._resource

    @property
    def namespace(self) -> str | None:
        return self._namespace

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def _emit(self, kind: str, obj: JSON, old: JSON | None) -> None:
        for handler in self._handlers:
            try:
                handler(kind, obj, old)
            except Exception as exc:  # one broken handler must not keep the event from the others
                self._log.error("event handler failed", kind=kind, error=repr(exc))

    async def _list(self) -> str:
        data = await self._client.list(
            self._resource,
            namespace=self._namespace,
            label_selector=self._label_selector,
            metadata_only=self._metadata_only,
        )
        items: list[JSON] = []
        for item in data.get("items") or []:
            # List items omit apiVersion/kind; restore them so every object in the store looks the same.
            item.setdefault("apiVersion", data.get("apiVersion"))
            item.setdefault("kind", str(data.get("kind", "")).removesuffix("List"))
            items.append(item)
        before = {key: self.store.get(key) for key in self.store.list_keys()}
        changed, gone = self.store.replace(items)
        for obj in gone:
            self._emit("DELETED", obj, obj)
        for key in changed:
            current = self.store.get(key)
            if current is not None:
                old = before.get(key)
                self._emit("MODIFIED" if old is not None else "ADDED", current, old)
        self.relists += 1
        self.synced.set()
        return str(data["metadata"]["resourceVersion"])

    def _apply(self, event: JSON) -> str | None:
        kind = event.get("type")
        obj: Any = event.get("object")
        if not isinstance(obj, dict):
            return None
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            return str(rv) if rv else None
        if kind in ("ADDED", "MODIFIED"):
            old = self.store.get(object_key(obj))
            if self.store.put(obj):
                self._emit(str(kind), obj, old)
        elif kind == "DELETED":
            old = self.store.delete(object_key(obj))
            self._emit("DELETED", obj, old)
        return str(rv) if rv else None

    async def run(self) -> None:
        """Run until cancelled. Never returns on its own; errors are retried with backoff."""
        settings = self._settings
        delay = settings.backoff_initial
        rv: str | None = None
        failures = 0
        gone_in_a_row = 0
        while True:
            try:
                if rv is None:
                    rv = await self._list()
                    failures = 0
                started, events = time.monotonic(), 0
                async for event in self._client.watch(
                    self._resource,
                    namespace=self._namespace,
                    resource_version=rv,
                    timeout_seconds=settings.timeout_seconds,
                    inactivity_timeout=settings.inactivity_timeout,
                    label_selector=self._label_selector,
                    metadata_only=self._metadata_only,
                ):
                    events += 1
                    gone_in_a_row = 0
                    new_rv = self._apply(event)
                    if new_rv:
                        rv = new_rv
                    failures, delay = 0, settings.backoff_initial
                self.watch_restarts += 1
                if events or time.monotonic() - started >= settings.min_watch_duration:
                    continue  # the server ended the watch (timeoutSeconds): resume at once
                raise errors.KubeConnectionError(
                    f"watch on {self._resource.plural} ended at once without a single event"
                )
            except errors.GoneError:
                self._log.info("watch expired (410 Gone); re-listing", resource_version=rv)
                rv = None
                gone_in_a_row += 1
                if gone_in_a_row > 1:
                    # Listed, and the very next watch was already too old again: relisting at once would spin.
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, settings.backoff_max)
                continue
            except Exception as exc:  # an informer must outlive anything one response can do
                if not isinstance(exc, errors.KubeConnectionError | errors.APIError):
                    self._log.error("unexpected list/watch failure; re-listing", error=repr(exc))
                    rv = None
                failures += 1
                self.watch_restarts += 1
                retry_after = exc.retry_after if isinstance(exc, errors.APIError) else None
                pause = max(delay, retry_after or 0.0)
                self._log.warning("list/watch failed; retrying", error=str(exc), retry_in=round(pause, 3))
                if failures >= settings.relist_after_failures:
                    rv = None
                await asyncio.sleep(pause)
                delay = min(delay * 2, settings.backoff_max)
