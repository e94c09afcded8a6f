"""The informer and client against the real kube-apiserver: big events, paged lists, metadata-only watches, and a
real 410 Gone after etcd compacted the history the informer would resume from."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from dockyard_e2e import SESSION_LABEL, create_namespace, kubectl

from dockyard_operator.informer.informing import Informer, WatchSettings
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import CONFIGMAPS, SECRETS, Resource
from dockyard_operator.runtime.fetching import FetchedObjects
from dockyard_operator.runtime.informers import Source

pytestmark = pytest.mark.kube

JSON = dict[str, Any]


@pytest.fixture
def scratch(devenv: Any) -> Iterator[str]:
    name = create_namespace(devenv, f"informer-{uuid.uuid4().hex[:6]}", operator_class="none")
    try:
        yield name
    finally:
        kubectl(devenv, "delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
async def kube(devenv: Any) -> AsyncIterator[KubeClient]:
    client = await KubeClient.connect(kubeconfig=str(devenv.kubeconfig))
    try:
        yield client
    finally:
        await client.close()


async def _until(check: Any, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


def _configmap(namespace: str, name: str, data: dict[str, str] | None = None) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {SESSION_LABEL: "x"}},
        "data": data or {},
    }


async def test_an_event_far_over_512_kib_arrives_without_a_relist(kube: KubeClient, scratch: str) -> None:
    """Before: aiohttp's readline gave up at its buffer limit with LineTooLong, which the informer did not know
    as a client error: it re-listed every object of the resource, again and again."""
    informer = Informer(client=kube, resource=CONFIGMAPS, namespace=scratch)
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 15)
        big = "x" * (900 * 1024)
        await kube.create(CONFIGMAPS, _configmap(scratch, "big", {"blob": big}), namespace=scratch)
        await _until(lambda: informer.store.get(f"{scratch}/big") is not None)
        stored = informer.store.get(f"{scratch}/big")
        assert stored is not None
        assert len(stored["data"]["blob"]) == len(big)
        assert informer.relists == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_lists_are_paged(kube: KubeClient, scratch: str) -> None:
    for index in range(23):
        await kube.create(CONFIGMAPS, _configmap(scratch, f"cm-{index:02d}"), namespace=scratch)
    requests: list[str] = []
    kube.on_request = lambda method, path: requests.append(path)
    listed = await kube.list(CONFIGMAPS, namespace=scratch, label_selector=SESSION_LABEL, page_size=5)
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == [f"cm-{i:02d}" for i in range(23)]
    assert len(requests) == 5, "23 items in pages of 5"
    assert "continue" not in listed["metadata"]
    assert listed["metadata"]["resourceVersion"]


async def test_secrets_are_watched_metadata_only_and_fetched_on_demand(kube: KubeClient, scratch: str) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "namespace": scratch},
        "stringData": {"token": "s3cr3t"},
    }
    await kube.create(SECRETS, secret, namespace=scratch)
    informer = Informer(client=kube, resource=SECRETS, namespace=scratch, metadata_only=True)
    source = Source([informer])
    fetched = FetchedObjects(kube=kube, metadata=source)
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 15)
        cached = informer.store.get(f"{scratch}/creds")
        assert cached is not None
        assert "data" not in cached, "the informer's cache holds no Secret content"
        assert "s3cr3t" not in json.dumps(list(informer.store.values()))
        got = await fetched.get(scratch, "creds")
        assert got is not None
        assert got["data"]["token"] == "czNjcjN0"  # base64 of s3cr3t
        assert await fetched.get(scratch, "creds") is got, "unchanged: served from the cache"
        await kube.merge_patch(SECRETS, "creds", {"stringData": {"token": "rotated"}}, namespace=scratch)
        await _until(lambda: (informer.store.get(f"{scratch}/creds") or {})["metadata"]["resourceVersion"]
                     != got["metadata"]["resourceVersion"])  # fmt: skip
        rotated = await fetched.get(scratch, "creds")
        assert rotated is not None
        assert rotated["data"]["token"] != got["data"]["token"]
        assert fetched.fetches == 2
        assert await fetched.get(scratch, "absent") is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _etcd(devenv: Any, path: str, body: JSON) -> JSON:
    port = json.loads((devenv.dev / "state.json").read_text())["etcd_port"]
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return dict(json.loads(response.read()))


class StaleStart:
    """The real client, except that the first list reports a resourceVersion from long ago: as if the informer had
    been cut off for a long time and now resumes from what it last saw."""

    def __init__(self, kube: KubeClient, stale: str) -> None:
        self._kube = kube
        self._stale: str | None = stale

    async def list(self, resource: Resource, **kw: Any) -> JSON:
        listed = await self._kube.list(resource, **kw)
        if self._stale is not None:
            listed["metadata"]["resourceVersion"], self._stale = self._stale, None
            listed["items"] = []  # and what it held then
        return listed

    def watch(self, resource: Resource, **kw: Any) -> Any:
        return self._kube.watch(resource, **kw)


GROUP = "informer.test.dockyard.dev"


@pytest.fixture
def fresh_kind(devenv: Any, scratch: str) -> Iterator[tuple[Resource, str]]:
    """A kind created now, and a resourceVersion from just before: the API server's history of the kind (its
    watch cache) starts at its creation, so that version is certainly too old for it, however long the server
    has been up."""
    before = json.loads(kubectl(devenv, "get", "namespace", scratch, "-o", "json").stdout)["metadata"]
    plural = f"gaps{uuid.uuid4().hex[:6]}"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": plural.capitalize()[:-1]},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
        },
    }  # fmt: skip
    kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(crd))
    kubectl(devenv, "wait", "--for=condition=Established", f"crd/{plural}.{GROUP}", "--timeout=60s")
    try:
        yield Resource(GROUP, "v1", plural), str(before["resourceVersion"])
    finally:
        kubectl(devenv, "delete", "crd", f"{plural}.{GROUP}", "--timeout=60s", check=False)


async def test_a_real_410_after_etcd_compaction_relists_and_reports_the_gap(
    devenv: Any, kube: KubeClient, scratch: str, fresh_kind: tuple[Resource, str]
) -> None:
    resource, stale = fresh_kind  # stale: a resourceVersion from before the kind's history began
    kind = resource.plural.capitalize()[:-1]

    async def create(name: str) -> None:
        body = {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": name, "namespace": scratch}}
        for _ in range(100):  # Established, but its storage may still answer 429 "initializing" briefly
            try:
                await kube.create(resource, body, namespace=scratch)
                return
            except kube_errors.TooManyRequestsError:
                await asyncio.sleep(0.1)

    for name in ("before", "gap-0", "gap-1", "gap-2"):
        await create(name)
    revision = _etcd(devenv, "/v3/kv/range", {"key": "Lw=="})["header"]["revision"]
    _etcd(devenv, "/v3/kv/compaction", {"revision": revision, "physical": True})
    client = StaleStart(kube, stale)
    informer = Informer(client=client, resource=resource, namespace=scratch,  # type: ignore[arg-type]
                        settings=WatchSettings(backoff_initial=0.05))  # fmt: skip
    seen: list[tuple[str, str]] = []
    informer.add_handler(lambda event, obj, old: seen.append((event, obj["metadata"]["name"])))
    task = asyncio.create_task(informer.run())
    try:
        await _until(lambda: informer.relists >= 2)
        await _until(lambda: informer.store.get(f"{scratch}/gap-2") is not None)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    names = {name for event, name in seen if event == "ADDED"}
    assert {"before", "gap-0", "gap-1", "gap-2"} <= names, "everything created across the gap is reported"
