"""Smoke tests against the real kube-apiserver + etcd: CRDs, custom objects, watch, status, kubectl."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client, config, watch

pytestmark = pytest.mark.kube

GROUP = "smoke.dockyard.dev"


def _crd(plural: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": plural.capitalize()[:-1]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "properties": {"image": {"type": "string"}}},
                                "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                            },
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture
async def api(devenv: Any) -> AsyncIterator[client.ApiClient]:
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(devenv.kubeconfig), client_configuration=cfg)
    async with client.ApiClient(cfg) as api_client:
        yield api_client


async def _wait_established(ext: client.ApiextensionsV1Api, name: str) -> None:
    for _ in range(100):
        crd = await ext.read_custom_resource_definition(name)
        conditions = {c.type: c.status for c in (crd.status.conditions or [])}
        if conditions.get("Established") == "True":
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"CRD {name} never became Established: {conditions}")


async def _list_when_served(custom: client.CustomObjectsApi, plural: str) -> dict[str, Any]:
    """Established means the API is registered; its storage may answer 429 "(re)initializing" briefly."""
    for _ in range(100):
        try:
            return dict(await custom.list_namespaced_custom_object(GROUP, "v1", "default", plural))
        except client.ApiException as exc:
            if exc.status != 429:
                raise
            await asyncio.sleep(0.1)
    pytest.fail(f"{plural} storage never finished initializing")


async def test_crd_custom_object_watch_and_status_patch(api: client.ApiClient) -> None:
    plural = f"smoke{uuid.uuid4().hex[:8]}s"
    ext = client.ApiextensionsV1Api(api)
    custom = client.CustomObjectsApi(api)
    name = f"{plural}.{GROUP}"
    await ext.create_custom_resource_definition(_crd(plural))  # type: ignore[arg-type]  # dicts are accepted
    try:
        await _wait_established(ext, name)
        body = {
            "apiVersion": f"{GROUP}/v1",
            "kind": plural.capitalize()[:-1],
            "metadata": {"name": "one"},
            "spec": {"image": "busybox"},
        }
        listed = await _list_when_served(custom, plural)
        rv = listed["metadata"]["resourceVersion"]

        async def first_added() -> dict[str, Any]:
            async with watch.Watch() as w:
                async for ev in w.stream(
                    custom.list_namespaced_custom_object,
                    GROUP,
                    "v1",
                    "default",
                    plural,
                    resource_version=rv,
                    allow_watch_bookmarks=True,
                ):
                    if ev["type"] == "ADDED":
                        return dict(ev["object"])
            raise AssertionError("watch ended without an ADDED event")

        watcher = asyncio.create_task(first_added())
        await custom.create_namespaced_custom_object(GROUP, "v1", "default", plural, body)
        added = await asyncio.wait_for(watcher, timeout=10)
        assert added["metadata"]["name"] == "one"
        assert added["spec"] == {"image": "busybox"}

        items = (await custom.list_namespaced_custom_object(GROUP, "v1", "default", plural))["items"]
        assert [i["metadata"]["name"] for i in items] == ["one"]

        # A dict body defaults to json-patch+json in kubernetes_asyncio, which the server rejects here;
        # merge-patch must be asked for explicitly (shared/research/library-notes.md §6).
        patched = await custom.patch_namespaced_custom_object_status(
            GROUP,
            "v1",
            "default",
            plural,
            "one",
            {"status": {"phase": "Running"}},
            _content_type="application/merge-patch+json",  # type: ignore[call-arg]  # missing from the stub
        )
        assert patched["status"] == {"phase": "Running"}
        again = await custom.get_namespaced_custom_object(GROUP, "v1", "default", plural, "one")
        assert again["status"]["phase"] == "Running"
        assert again["spec"] == {"image": "busybox"}, "a status patch must not touch spec"
    finally:
        await ext.delete_custom_resource_definition(name)


def test_pinned_kubectl_lists_crds_and_namespaces(devenv: Any) -> None:
    def kubectl(*args: str) -> str:
        res = subprocess.run(
            [str(devenv.kubectl), *args],
            env=devenv.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
        return res.stdout

    namespaces = kubectl("get", "namespaces", "-o", "name").split()
    assert {"namespace/default", "namespace/kube-system"} <= set(namespaces)
    crds = json.loads(kubectl("get", "crds", "-o", "json"))
    assert crds["kind"] == "List"
    version = json.loads(kubectl("version", "-o", "json"))
    client_minor = int(version["clientVersion"]["minor"].rstrip("+"))
    server_minor = int(version["serverVersion"]["minor"].rstrip("+"))
    assert abs(client_minor - server_minor) <= 1, "kubectl must be within one minor version of the apiserver"
    assert str(devenv.kubectl).startswith(str(devenv.bin_dir)), "tests must use the pinned kubectl, not PATH's"
