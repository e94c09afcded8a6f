"""The DockerContainer reconciler end to end on fakes at the adapter boundary (Docker, Kubernetes, connections).

The paths here are the ones a real environment cannot easily produce on demand: a move whose previous host is
down, duplicates after a crash, a crash between create and status, the deletion timeout, a failing pull or start
over minutes of back-off (on a fake clock).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import pytest
from dockyard_fakes import (
    FakeClock,
    FakeConnections,
    FakeDocker,
    FakeFetched,
    FakeKube,
    FakeRecorder,
    container_object,
    host_object,
)

from dockyard_operator.api.dockercontainer import DockerContainerSpec
from dockyard_operator.containers import desired, indexing
from dockyard_operator.containers.reconciler import ContainerReconciler
from dockyard_operator.dockerapi import errors as docker_errors
from dockyard_operator.informer.store import Store
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.runtime.consistency import WriteTracker
from dockyard_operator.settings import ReconcileSettings

JSON = dict[str, Any]
SLEEPER = {"args": ["sleep", "3600"]}


class World:
    """One operator's view: caches, connections, the API server and Docker daemons, all fake."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.containers = Store()
        for name, func in (
            (indexing.BY_HOST, indexing.hosts_of),
            (indexing.BY_SECRET, indexing.secrets_of),
            (indexing.BY_CONFIG_MAP, indexing.config_maps_of),
            (indexing.BY_NAMESPACE, indexing.namespace_of),
        ):
            self.containers.add_index(name, func)
        self.dockerhosts = Store()
        self.namespaces = Store()
        self.namespaces.put({"metadata": {"name": "apps", "resourceVersion": "1"}})
        self.connections = FakeConnections()
        self.kube = FakeKube(self.containers)
        self.recorder = FakeRecorder()
        self.secrets = FakeFetched()
        self.reconciler = ContainerReconciler(
            kube=self.kube,  # type: ignore[arg-type]
            recorder=self.recorder,  # type: ignore[arg-type]
            hosts=self.connections,  # type: ignore[arg-type]
            containers=self.containers,
            dockerhosts=self.dockerhosts,
            namespaces=self.namespaces,
            secrets=self.secrets,  # type: ignore[arg-type]
            config_maps=FakeFetched(),  # type: ignore[arg-type]
            settings=ReconcileSettings(deletion_host_timeout=600),
            tracker=WriteTracker(),
            operator_class="dockyard",
            monotonic=self.clock,
        )

    def host(self, name: str, *, reachable: bool = True, **kw: Any) -> FakeDocker:
        self.dockerhosts.put(host_object(name, **kw))
        return self.connections.add(name, reachable=reachable)

    def add(self, name: str, spec: Mapping[str, Any], **kw: Any) -> str:
        obj = self.kube.put(container_object(name, {**SLEEPER, **spec}, **kw))
        return f"{obj['metadata']['namespace']}/{name}"

    def edit(self, key: str, **spec: Any) -> None:
        obj = self.kube.objects[key]
        obj["spec"].update(spec)
        obj["metadata"]["generation"] += 1
        self.kube.put(obj)

    def delete(self, key: str, *, ago: float = 0.0, annotations: Mapping[str, str] | None = None) -> None:
        obj = self.kube.objects[key]
        at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=ago)
        obj["metadata"]["deletionTimestamp"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        obj["metadata"]["annotations"].update(annotations or {})
        self.kube.put(obj)

    async def reconcile(self, key: str) -> float | None:
        return await self.reconciler.reconcile(key)

    def status(self, key: str) -> JSON:
        obj = self.containers.get(key)
        assert obj is not None, f"{key} is gone"
        return dict(obj.get("status") or {})

    def condition(self, key: str, type_: str) -> JSON:
        return next((c for c in self.status(key).get("conditions", []) if c["type"] == type_), {})

    def desired(self, key: str) -> desired.DesiredContainer:
        obj = self.kube.objects[key]
        meta = obj["metadata"]
        spec = DockerContainerSpec.model_validate(obj["spec"])
        return desired.build_desired(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"], spec=spec,
                                     refs=desired.ResolvedRefs())  # fmt: skip


@pytest.fixture
def world() -> World:
    return World()


async def test_create_then_a_steady_reconcile_writes_nothing(world: World) -> None:
    docker = world.host("a")
    key = world.add("web", {"hostRef": {"name": "a"}})
    await world.reconcile(key)
    status = world.status(key)
    assert (status["phase"], status["reason"], status["host"]) == ("Running", "Running", "a")
    assert docker.with_uid("uid-web") == [status["containerID"]]
    assert {"Scheduled", "Pulling", "Created", "Started"} <= set(world.recorder.reasons()) - {"Pulled"} | {"Pulling"}
    writes = len(world.kube.writes)
    await world.reconcile(key)
    assert len(world.kube.writes) == writes, "an unchanged container costs the API server nothing"


async def test_the_placement_is_recorded_before_anything_is_created(world: World) -> None:
    """A crash between create and the status write can then never put a second copy on another host."""
    docker = world.host("a", labels={"site": "lab"})
    key = world.add("sel", {"hostSelector": {"matchLabels": {"site": "lab"}}})
    order: list[str] = []
    docker.on_call = lambda verb, _: order.append(verb)
    original = world.kube.merge_patch

    async def recording(*args: Any, **kw: Any) -> JSON:
        if kw.get("subresource") == "status" and args[2]["status"].get("host"):
            order.append("status host=" + args[2]["status"]["host"])
        return await original(*args, **kw)

    world.kube.merge_patch = recording  # type: ignore[method-assign]
    await world.reconcile(key)
    assert order.index("status host=a") < order.index("create")


async def test_a_first_placement_removes_copies_a_crash_left_on_other_eligible_hosts(world: World) -> None:
    a = world.host("a", labels={"site": "lab"})
    b = world.host("b", labels={"site": "lab"})
    key = world.add("sel", {"hostSelector": {"matchLabels": {"site": "lab"}}})
    # An earlier operator created the container on b and crashed before recording the placement anywhere.
    b.add(world.desired(key).create_config, name="apps_sel")
    a.add({**world.desired(key).create_config, "Labels": {"dockyard.dev/uid": "uid-sel"}}, name="older-copy")
    b.images.clear()  # b would now need a pull: the scheduler prefers a anyway (fewer containers, by name)
    await world.reconcile(key)
    status = world.status(key)
    placed, other = (a, b) if status["host"] == "a" else (b, a)
    assert other.with_uid("uid-sel") == [], "the copy on the other eligible host is gone"
    current = [c for c in placed.with_uid("uid-sel") if not placed.containers[c]["Name"].endswith("_previous")]
    assert current == [status["containerID"]], "exactly one copy, the one recorded (a drifted one is kept stopped)"


async def test_a_claim_that_lost_a_race_creates_nothing(world: World) -> None:
    """Someone (another replica, a user) wrote the object after we read it: our claim fails, nothing is created."""
    docker = world.host("a")
    key = world.add("web", {"hostRef": {"name": "a"}})
    world.kube.objects[key]["metadata"]["resourceVersion"] = "changed-elsewhere"
    with pytest.raises(kube_errors.ConflictError):
        await world.reconcile(key)
    assert docker.with_uid("uid-web") == []


async def test_a_move_removes_the_old_container_first(world: World) -> None:
    a, b = world.host("a"), world.host("b")
    key = world.add("web", {"hostRef": {"name": "a"}})
    await world.reconcile(key)
    world.edit(key, hostRef={"name": "b"})
    await world.reconcile(key)
    assert a.with_uid("uid-web") == []
    assert b.with_uid("uid-web") == [world.status(key)["containerID"]]
    assert world.status(key)["host"] == "b"
    assert "Moved" in world.recorder.reasons()
    assert a.verbs().index("remove") >= 0


async def test_a_move_waits_while_the_previous_host_is_unreachable(world: World) -> None:
    a, b = world.host("a"), world.host("b")
    key = world.add("web", {"hostRef": {"name": "a"}})
    await world.reconcile(key)
    first = world.status(key)["containerID"]
    world.connections.set_reachable("a", False)
    world.edit(key, hostRef={"name": "b"})
    assert await world.reconcile(key) is None  # the host's return wakes us
    assert b.with_uid("uid-web") == [], "never two copies"
    assert world.condition(key, "Scheduled")["reason"] == "PreviousHostUnreachable"
    assert a.with_uid("uid-web") == [first]
    world.connections.set_reachable("a", True)
    await world.reconcile(key)
    assert a.with_uid("uid-web") == []
    assert len(b.with_uid("uid-web")) == 1


async def test_duplicates_are_reduced_to_the_newest_with_the_wanted_spec(world: World) -> None:
    docker = world.host("a")
    key = world.add("web", {"hostRef": {"name": "a"}})
    want = world.desired(key)
    stale = docker.add({**want.create_config, "Labels": {**want.labels, "dockyard.dev/spec-hash": "old"}},
                       name="apps_web_old")  # fmt: skip
    keep = docker.add(want.create_config, name="apps_web")
    newest_but_wrong = docker.add({**want.create_config, "Labels": {**want.labels, "dockyard.dev/spec-hash": "x"}},
                                  name="apps_web_x")  # fmt: skip
    await world.reconcile(key)
    assert docker.with_uid("uid-web") == [keep]
    assert stale not in docker.containers
    assert newest_but_wrong not in docker.containers
    assert world.status(key)["containerID"] == keep


async def test_on_failure_restarts_only_after_a_failure(world: World) -> None:
    docker = world.host("a")
    key = world.add("job", {"hostRef": {"name": "a"}, "restartPolicy": "OnFailure"})
    await world.reconcile(key)
    cid = world.status(key)["containerID"]
    docker.set_state(cid, "exited", exit_code=1)
    await world.reconcile(key)
    assert docker.containers[cid]["State"]["Status"] == "running"
    assert world.status(key)["restartCount"] == 1
    assert "Restarted" in world.recorder.reasons()
    world.clock.now += 3600  # long enough that no crash back-off is pending
    docker.set_state(cid, "exited", exit_code=0)
    await world.reconcile(key)
    status = world.status(key)
    assert docker.containers[cid]["State"]["Status"] == "exited"
    assert (status["phase"], status["reason"], status["restartCount"]) == ("Succeeded", "Completed", 1)


async def test_never_reports_completed_and_error(world: World) -> None:
    docker = world.host("a")
    key = world.add("once", {"hostRef": {"name": "a"}, "restartPolicy": "Never"})
    await world.reconcile(key)
    cid = world.status(key)["containerID"]
    docker.set_state(cid, "exited", exit_code=3)
    await world.reconcile(key)
    status = world.status(key)
    assert (status["phase"], status["reason"], status["lastExitCode"]) == ("Failed", "Error", 3)
    assert world.condition(key, "Ready")["reason"] == "Error"


async def test_a_container_that_keeps_exiting_backs_off_like_the_kubelet(world: World) -> None:
    docker = world.host("a")
    key = world.add("crash", {"hostRef": {"name": "a"}})
    await world.reconcile(key)
    cid = world.status(key)["containerID"]
    docker.set_state(cid, "exited", exit_code=1)
    await world.reconcile(key)  # the first restart happens at once
    assert world.status(key)["restartCount"] == 1
    docker.set_state(cid, "exited", exit_code=1)
    requeue = await world.reconcile(key)
    status = world.status(key)
    assert (status["reason"], requeue) == ("CrashLoopBackOff", 10.0)
    assert "back-off 10s" in world.condition(key, "Ready")["message"]
    world.clock.now += 10
    await world.reconcile(key)
    assert world.status(key)["restartCount"] == 2
    docker.set_state(cid, "exited", exit_code=1)
    assert await world.reconcile(key) == 20.0


async def test_a_failing_pull_shows_err_image_pull_then_back_off_doubling(world: World) -> None:
    docker = world.host("a")
    docker.fail_pull = "manifest for nope:1 not found"
    key = world.add("bad", {"hostRef": {"name": "a"}, "image": "nope:1"})
    delays = []
    requeue = await world.reconcile(key)
    assert (world.status(key)["reason"], world.status(key)["phase"], requeue) == ("ErrImagePull", "Pending", 1.0)
    assert "manifest for nope:1 not found" in world.condition(key, "Ready")["message"]
    for _ in range(7):
        world.clock.now += 1
        requeue = await world.reconcile(key)  # during the back-off: ImagePullBackOff, nothing pulled
        assert world.status(key)["reason"] == "ImagePullBackOff"
        assert requeue is not None
        delays.append(round(requeue + 1))
        pulls = docker.verbs().count("pull")
        world.clock.now += requeue
        await world.reconcile(key)  # the next attempt
        assert docker.verbs().count("pull") == pulls + 1
    assert delays == [10, 20, 40, 80, 160, 300, 300]
    failed = [e for e in world.recorder.events if e[1] == "Failed"]
    assert len({note for _, _, note in failed}) == 1, "one distinct Warning, aggregated by the recorder"
    assert world.status(key)["restartCount"] == 0


async def test_a_command_that_does_not_exist_is_run_container_error_then_crash_loop(world: World) -> None:
    docker = world.host("a")
    docker.fail_start = 'exec: "nope": executable file not found in $PATH'
    key = world.add("bad", {"hostRef": {"name": "a"}, "command": ["nope"]})
    assert await world.reconcile(key) == 1.0
    status = world.status(key)
    assert (status["reason"], status["state"], status["restartCount"]) == ("RunContainerError", "created", 0)
    world.clock.now += 1
    assert await world.reconcile(key) == pytest.approx(9.0)
    assert world.status(key)["reason"] == "CrashLoopBackOff"
    assert "back-off 10s restarting failed container" in world.condition(key, "Ready")["message"]
    world.clock.now += 9
    await world.reconcile(key)  # the retry: a restart in the kubelet's counting
    assert world.status(key)["restartCount"] == 1
    docker.fail_start = None
    world.clock.now += 20
    await world.reconcile(key)
    status = world.status(key)
    assert (status["reason"], status["restartCount"]) == ("Running", 2)


async def test_a_missing_secret_is_create_container_config_error_until_it_exists(world: World) -> None:
    docker = world.host("a")
    ref = {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}
    key = world.add("needs", {"hostRef": {"name": "a"}, "env": [ref]})
    await world.reconcile(key)
    await world.reconcile(key)
    status = world.status(key)
    assert (status["phase"], status["reason"]) == ("Pending", "CreateContainerConfigError")
    assert world.recorder.reasons().count("Failed") == 1, "one Warning, not one per look"
    assert docker.with_uid("uid-needs") == []
    world.secrets.objects["apps/creds"] = {"metadata": {"name": "creds"}, "data": {"token": "czNjcjN0"}}
    await world.reconcile(key)
    assert world.status(key)["reason"] == "Running"


async def test_unschedulable_says_why_once(world: World) -> None:
    key = world.add("lost", {"hostRef": {"name": "nowhere"}})
    await world.reconcile(key)
    await world.reconcile(key)
    status = world.status(key)
    assert (status["phase"], status["reason"]) == ("Pending", "Unschedulable")
    assert world.condition(key, "Scheduled")["reason"] == "HostNotFound"
    assert world.recorder.reasons().count("FailedScheduling") == 1


async def test_hosts_and_namespaces_of_another_class_are_not_ours(world: World) -> None:
    world.host("theirs", operator_class="team-b")
    key = world.add("web", {"hostRef": {"name": "theirs"}})
    await world.reconcile(key)
    assert world.condition(key, "Scheduled")["reason"] == "OtherOperatorClass"
    world.namespaces.put({"metadata": {"name": "elsewhere", "resourceVersion": "1",
                                       "labels": {"dockyard.dev/operator-class": "team-b"}}})  # fmt: skip
    other = world.add("x", {"hostRef": {"name": "theirs"}}, namespace="elsewhere")
    writes = len(world.kube.writes)
    await world.reconcile(other)
    assert len(world.kube.writes) == writes, "another class's namespace: not even the finalizer is ours to add"


async def test_docker_going_away_mid_reconcile_reports_unknown_and_retries(world: World) -> None:
    docker = world.host("a")
    key = world.add("web", {"hostRef": {"name": "a"}})
    await world.reconcile(key)
    docker.unavailable = True
    with pytest.raises(docker_errors.DockerUnavailableError):
        await world.reconcile(key)
    ready = world.condition(key, "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "DockerUnavailable")


async def test_an_unreachable_host_is_reported_and_nothing_is_touched(world: World) -> None:
    docker = world.host("a")
    key = world.add("web", {"hostRef": {"name": "a"}})
    await world.reconcile(key)
    world.connections.set_reachable("a", False)
    calls = len(docker.calls)
    await world.reconcile(key)
    status = world.status(key)
    assert (status["phase"], status["reason"]) == ("Unknown", "HostUnreachable")
    assert world.condition(key, "HostReachable")["status"] == "False"
    assert len(docker.calls) == calls


# -- deletion -------------------------------------------------------------------------------------------------


async def test_deletion_removes_the_container_then_the_finalizer(world: World) -> None:
    docker = world.host("a")
    key = world.add("web", {"hostRef": {"name": "a"}})
    await world.reconcile(key)
    world.delete(key)
    before = len(world.kube.status_writes())
    await world.reconcile(key)
    assert docker.with_uid("uid-web") == []
    assert world.containers.get(key) is None
    assert world.kube.status_writes()[before:] == [{"reason": "Terminating"}], "STATUS reads as kubectl's for a Pod"


async def test_a_refused_terminating_write_does_not_keep_the_object_from_going(world: World) -> None:
    """Terminating is cosmetic: the API server refusing it (429, 5xx, a stricter schema) must not block deletion."""
    docker = world.host("a")
    key = world.add("web", {"hostRef": {"name": "a"}})
    await world.reconcile(key)
    world.delete(key)
    patch_for_real = world.kube.merge_patch

    async def refusing(resource: Any, name: str, patch: JSON, **kw: Any) -> JSON:
        if patch == {"status": {"reason": "Terminating"}}:
            raise kube_errors.from_status(503, {"message": "etcdserver: request timed out"})
        return await patch_for_real(resource, name, patch, **kw)

    world.kube.merge_patch = refusing  # type: ignore[method-assign]
    await world.reconcile(key)
    assert docker.with_uid("uid-web") == []
    assert world.containers.get(key) is None


async def test_a_new_container_gets_its_finalizer_and_is_created_in_the_same_pass(world: World) -> None:
    """No queue round between adding the finalizer and creating: the pass goes on with the object the API server
    returned (the cache, lagging here, still shows it without the finalizer; the claim's precondition holds)."""
    docker = world.host("a")
    key = world.add("web", {"hostRef": {"name": "a"}}, finalizers=False)
    world.kube.lag = True
    await world.reconcile(key)
    assert len(docker.with_uid("uid-web")) == 1
    world.kube.deliver()
    obj = world.containers.get(key)
    assert obj is not None
    assert obj["metadata"]["finalizers"] == ["dockyard.dev/container-cleanup"]
    assert (world.status(key)["phase"], world.status(key)["host"]) == ("Running", "a")


async def test_deletion_waits_for_an_unreachable_host_then_gives_up_after_the_timeout(world: World) -> None:
    world.host("a")
    key = world.add("web", {"hostRef": {"name": "a"}})
    await world.reconcile(key)
    world.connections.set_reachable("a", False)
    world.delete(key, ago=60)
    requeue = await world.reconcile(key)
    assert requeue == 30.0
    assert world.containers.get(key) is not None, "the container may still run there: wait"
    world.delete(key, ago=601)
    assert await world.reconcile(key) is None
    assert world.containers.get(key) is None
    assert any(t == "Warning" and "orphaned" in note for t, _, note in world.recorder.events)


async def test_deletion_does_not_wait_for_a_host_that_is_gone(world: World) -> None:
    world.host("a")
    key = world.add("web", {"hostRef": {"name": "a"}})
    await world.reconcile(key)
    world.connections.set_reachable("a", False)
    world.dockerhosts.delete("a")
    world.delete(key)
    await world.reconcile(key)
    assert world.containers.get(key) is None
    assert any(t == "Warning" and "may remain" in note for t, _, note in world.recorder.events)


async def test_containers_leave_a_host_being_deleted(world: World) -> None:
    """Deleting a DockerHost drains it: its containers are removed there (or released at once if it is down)."""
    a, b = world.host("a", labels={"site": "lab"}), world.host("b", labels={"site": "lab"})
    on_ref = world.add("pinned", {"hostRef": {"name": "a"}})
    on_sel = world.add("mobile", {"hostSelector": {"matchLabels": {"site": "lab"}}})
    await world.reconcile(on_ref)
    await world.reconcile(on_sel)
    assert world.status(on_sel)["host"] == "a" or world.status(on_sel)["host"] == "b"
    world.dockerhosts.put(host_object("a", labels={"site": "lab"}, deleting=True))
    await world.reconcile(on_ref)
    await world.reconcile(on_sel)
    assert a.with_uid("uid-pinned") == []
    assert a.with_uid("uid-mobile") == []
    assert world.status(on_ref)["reason"] == "Unschedulable"
    assert world.condition(on_ref, "Scheduled")["reason"] == "HostDeleting"
    assert world.status(on_sel)["host"] == "b"
    assert len(b.with_uid("uid-mobile")) == 1


async def test_the_orphan_annotation_releases_at_once_and_leaves_the_container(world: World) -> None:
    docker = world.host("a")
    key = world.add("web", {"hostRef": {"name": "a"}})
    await world.reconcile(key)
    world.connections.set_reachable("a", False)
    world.delete(key, annotations={"dockyard.dev/orphan": "true"})
    await world.reconcile(key)
    assert world.containers.get(key) is None
    assert len(docker.with_uid("uid-web")) == 1


async def test_a_namespace_not_in_the_cache_yet_belongs_to_nobody(world: World) -> None:
    """Its watch event may trail the DockerContainer's: acting as the default class then could be wrong."""
    world.host("a")
    key = world.add("early", {"hostRef": {"name": "a"}}, namespace="brand-new")
    await world.reconcile(key)
    assert world.kube.writes == []
    world.namespaces.put({"metadata": {"name": "brand-new", "resourceVersion": "1"}})
    await world.reconcile(key)
    assert world.kube.writes, "served once the namespace is known"


async def test_a_start_that_fails_again_after_an_exit_backs_off(world: World) -> None:
    """A restart of an exited container that Docker refuses (a host port taken since) must back off, not spin."""
    docker = world.host("a")
    key = world.add("web", {"hostRef": {"name": "a"}})
    await world.reconcile(key)
    cid = world.status(key)["containerID"]
    docker.set_state(cid, "exited", exit_code=1)
    docker.fail_start = "port is already allocated"
    assert await world.reconcile(key) == 1.0
    assert docker.verbs().count("start") == 2, "the initial start and one retry, not one per round"
    assert world.status(key)["reason"] == "RunContainerError"
    world.clock.now += 1
    await world.reconcile(key)
    assert world.status(key)["reason"] == "CrashLoopBackOff"
    assert docker.verbs().count("start") == 2


async def test_a_container_created_but_never_started_is_made_again(world: World) -> None:
    """An operator crash between create and start may have skipped the Secret files: never start such a one."""
    docker = world.host("a")
    key = world.add("web", {"hostRef": {"name": "a"}})
    world.kube.put({**world.kube.objects[key], "status": {"host": "a"}})
    half = docker.add(world.desired(key).create_config, name="apps_web", state="created")
    await world.reconcile(key)
    assert half not in docker.containers
    assert world.status(key)["reason"] == "Running"
    assert "Recreated" in world.recorder.reasons()


async def test_an_object_the_operator_cannot_read_can_still_be_deleted(world: World) -> None:
    docker = world.host("a")
    key = world.add("web", {"hostRef": {"name": "a"}})
    await world.reconcile(key)
    broken = world.kube.objects[key]
    broken["spec"]["fieldFromTheFuture"] = True
    world.kube.put(broken)
    world.delete(key)
    await world.reconcile(key)
    assert world.containers.get(key) is None
    assert docker.with_uid("uid-web") == []


async def test_deletion_on_a_host_that_refuses_gives_up_after_the_timeout(world: World) -> None:
    docker = world.host("a")
    key = world.add("web", {"hostRef": {"name": "a"}})
    await world.reconcile(key)

    async def refuse(ref: str, *, force: bool = True) -> None:
        raise docker_errors.DockerAPIError(500, "driver failed to remove the root filesystem")

    docker.remove = refuse  # type: ignore[method-assign]
    world.delete(key, ago=10)
    with pytest.raises(docker_errors.DockerAPIError):
        await world.reconcile(key)
    world.delete(key, ago=601)
    await world.reconcile(key)
    assert world.containers.get(key) is None
    assert any("orphaned" in note for _, _, note in world.recorder.events)


async def test_a_host_this_operator_cannot_read_releases_nothing(world: World) -> None:
    """A DockerHost with a spec from a newer CRD is not "gone": its containers stay, nothing is duplicated."""
    a, b = world.host("a", labels={"site": "lab"}), world.host("b", labels={"site": "lab"})
    key = world.add("sel", {"hostSelector": {"matchLabels": {"site": "lab"}}})
    await world.reconcile(key)
    placed = world.status(key)["host"]
    docker = a if placed == "a" else b
    unreadable = host_object(placed, labels={"site": "lab"})
    unreadable["spec"]["fieldFromTheFuture"] = 1
    world.dockerhosts.put(unreadable)
    await world.reconcile(key)
    assert world.status(key)["host"] == placed
    assert len(docker.with_uid("uid-sel")) == 1
    other = b if docker is a else a
    assert other.with_uid("uid-sel") == []


async def test_scheduled_turns_true_again_when_a_move_is_reverted(world: World) -> None:
    world.host("a")
    world.host("b")
    key = world.add("web", {"hostRef": {"name": "a"}})
    await world.reconcile(key)
    world.connections.set_reachable("a", False)
    world.edit(key, hostRef={"name": "b"})
    await world.reconcile(key)
    assert world.condition(key, "Scheduled")["reason"] == "PreviousHostUnreachable"
    world.connections.set_reachable("a", True)
    world.edit(key, hostRef={"name": "a"})
    await world.reconcile(key)
    assert world.condition(key, "Scheduled")["status"] == "True"
