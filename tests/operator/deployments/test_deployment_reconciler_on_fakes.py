"""The DockerDeployment reconciler on a fake API server whose DockerContainer watch is deliberately slow: the
expectations keep it from creating or deleting a replica twice while its cache lags."""

from __future__ import annotations

from typing import Any

from dockyard_fakes import FakeApi, FakeRecorder

from dockyard_operator.api.dockerhost import DockerHostSpec
from dockyard_operator.containers import indexing, scheduling
from dockyard_operator.deployments.reconciler import BY_DEPLOYMENT, DeploymentReconciler
from dockyard_operator.deployments.revisions import DEPLOYMENT_LABEL
from dockyard_operator.informer.store import Store
from dockyard_operator.runtime.consistency import WriteTracker
from dockyard_operator.runtime.controller import CONTROLLER_UID_INDEX, controller_uid
from dockyard_operator.runtime.expectations import Expectations


def _world(slow: bool) -> tuple[FakeApi, DeploymentReconciler, Expectations]:
    containers, deployments, revision_store, namespaces = Store(), Store(), Store(), Store()
    containers.add_index(CONTROLLER_UID_INDEX, controller_uid)
    containers.add_index(indexing.BY_NAMESPACE, indexing.namespace_of)
    containers.add_index(indexing.BY_HOST, indexing.hosts_of)
    revision_store.add_index(
        BY_DEPLOYMENT, lambda o: [f"{o['metadata']['namespace']}/{o['metadata']['labels'][DEPLOYMENT_LABEL]}"]
    )
    namespaces.put({"metadata": {"name": "apps", "resourceVersion": "1"}})
    api = FakeApi(
        {"dockercontainers": containers, "dockerdeployments": deployments, "controllerrevisions": revision_store},
        slow={"dockercontainers"} if slow else set(),
    )
    hosts = {
        name: scheduling.HostView(
            name=name, spec=DockerHostSpec(), labels={"site": "edge"}, decided=True, reachable=True
        )
        for name in ("a", "b")
    }
    expectations = Expectations()
    reconciler = DeploymentReconciler(
        kube=api,  # type: ignore[arg-type]
        recorder=FakeRecorder(),  # type: ignore[arg-type]
        deployments=deployments,
        containers=containers,
        revision_store=revision_store,
        namespaces=namespaces,
        host_views=lambda: hosts,
        expectations=expectations,
        tracker=WriteTracker(),
        operator_class="dockyard",
    )
    api.put(
        "dockerdeployments",
        {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "DockerDeployment",
            "metadata": {"name": "web", "namespace": "apps", "generation": 1},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"image": "busybox:1", "hostSelector": {"matchLabels": {"site": "edge"}}},
                },
            },
        },
    )
    return api, reconciler, expectations


def _created(api: FakeApi) -> list[str]:
    return [name for verb, plural, name in api.calls if (verb, plural) == ("create", "dockercontainers")]


async def test_a_slow_watch_never_makes_it_create_a_replica_twice() -> None:
    api, reconciler, expectations = _world(slow=True)
    await reconciler.reconcile("apps/web")
    assert len(_created(api)) == 3
    assert not expectations.satisfied("apps/web")
    for _ in range(5):  # woken again and again before the watch delivers anything
        await reconciler.reconcile("apps/web")
    assert len(_created(api)) == 3, "the cache shows no replica yet, but three are on their way"
    # The watch delivers them; the controller's child handler lowers the expectations (as Controller does).
    api.deliver()
    for _ in range(3):
        expectations.creation_observed("apps/web")
    await reconciler.reconcile("apps/web")
    assert len(_created(api)) == 3


async def test_without_expectations_the_same_lag_would_over_create() -> None:
    """The control case: the same lag and the expectations bypassed — the guard above is what prevents it."""
    api, reconciler, expectations = _world(slow=True)
    await reconciler.reconcile("apps/web")
    expectations.forget("apps/web")
    await reconciler.reconcile("apps/web")
    assert len(_created(api)) == 6


async def test_replicas_carry_the_owner_the_hash_and_the_chosen_host() -> None:
    api, reconciler, _ = _world(slow=False)
    await reconciler.reconcile("apps/web")
    replicas = [obj for (plural, _), obj in api.objects.items() if plural == "dockercontainers"]
    assert len(replicas) == 3
    for obj in replicas:
        ref = obj["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["controller"], ref["blockOwnerDeletion"]) == ("DockerDeployment", True, True)
        assert obj["metadata"]["labels"]["dockyard.dev/template-hash"]
        assert "hostSelector" not in obj["spec"]
        assert obj["spec"]["hostRef"]["name"] in ("a", "b")
    deployment: Any = api.objects[("dockerdeployments", "apps/web")]
    assert deployment["metadata"]["annotations"]["dockyard.dev/revision"] == "1"
    revisions = [obj for (plural, _), obj in api.objects.items() if plural == "controllerrevisions"]
    assert [r["revision"] for r in revisions] == [1]
