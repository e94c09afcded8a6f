"""Shared informers: one list+watch per resource (and watched namespace), however many controllers read it.

`SharedInformers.source(resource)` returns a :class:`Source`: the merged store of that resource across the watched
namespaces, with indexes and event handlers. Controllers register handlers and indexes before `run()`; every
informer then lists, and `wait_synced()` returns once all caches hold a full list (client-go's
SharedInformerFactory and WaitForCacheSync).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from dockyard_operator.informer.informing import Handler, Informer, WatchSettings
from dockyard_operator.informer.store import IndexFunc, MergedStore
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import Resource
from dockyard_operator.runtime.errors import RuntimeContractError


class Source:
    """One resource as the operator sees it: a merged, indexed cache plus change notifications."""

    def __init__(self, informers: Sequence[Informer]) -> None:
        self.informers = list(informers)
        self.store = MergedStore([i.store for i in self.informers])

    @property
    def resource(self) -> Resource:
        return self.informers[0].resource

    def add_handler(self, handler: Handler) -> None:
        for informer in self.informers:
            informer.add_handler(handler)

    def add_index(self, name: str, func: IndexFunc) -> None:
        self.store.add_index(name, func)

    @property
    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.informers)


class SharedInformers:
    """The informers of one operator process, created on first use and started together."""

    def __init__(self, *, kube: KubeClient, namespaces: Sequence[str] = (), settings: WatchSettings) -> None:
        self._kube = kube
        self._namespaces: list[str | None] = list(namespaces) or [None]
        self._settings = settings
        self._sources: dict[tuple[Resource, bool, str | None, str | None], Source] = {}
        self._started = False

    def source(
        self,
        resource: Resource,
        *,
        metadata_only: bool = False,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> Source:
        """The shared source of `resource`: every watched namespace, or just `namespace` when given; only objects
        matching `label_selector` when given (the operator's own ControllerRevisions, not StatefulSets')."""
        key = (resource, metadata_only, namespace, label_selector)
        existing = self._sources.get(key)
        if existing is not None:
            return existing
        if self._started:
            raise RuntimeContractError(f"{resource.plural}: informers must be requested before they start")
        if not resource.namespaced:
            namespaces: list[str | None] = [None]
        elif namespace is not None:
            namespaces = [namespace]
        else:
            namespaces = self._namespaces
        informers = [
            Informer(
                client=self._kube,
                resource=resource,
                namespace=ns,
                settings=self._settings,
                metadata_only=metadata_only,
                label_selector=label_selector,
            )
            for ns in namespaces
        ]
        source = self._sources[key] = Source(informers)
        return source

    @property
    def sources(self) -> list[Source]:
        return list(self._sources.values())

    def start(self, group: asyncio.TaskGroup) -> None:
        """Start every informer in `group` (they run until the group ends)."""
        self._started = True
        for source in self._sources.values():
            for informer in source.informers:
                group.create_task(informer.run(), name=f"informer-{informer.resource.plural}")

    async def wait_synced(self) -> None:
        for source in self._sources.values():
            for informer in source.informers:
                await informer.synced.wait()
