"""The controller runtime's routing: indexes instead of scans, read-your-writes, owners and expectations."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dockyard_operator.informer.informing import Informer
from dockyard_operator.informer.store import Store
from dockyard_operator.kube.resources import DOCKERCONTAINERS, DOCKERHOSTS
from dockyard_operator.runtime.consistency import WriteTracker
from dockyard_operator.runtime.controller import CONTROLLER_UID_INDEX, Controller, Owns, Watch
from dockyard_operator.runtime.expectations import Expectations
from dockyard_operator.runtime.informers import Source
from dockyard_operator.workqueue.clocks import FakeClock
from dockyard_operator.workqueue.workers import Defer

JSON = dict[str, Any]


def obj(name: str, rv: str = "1", *, status: JSON | None = None, owner: str | None = None, **spec: Any) -> JSON:
    meta: JSON = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": rv, "generation": 1}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": "x/v1", "kind": "Parent", "name": owner, "uid": f"uid-{owner}",
                                    "controller": True}]  # fmt: skip
    return {"metadata": meta, "spec": spec, "status": status or {}}


def source(resource: Any = DOCKERCONTAINERS) -> tuple[Source, Informer]:
    informer = Informer(client=None, resource=resource)  # type: ignore[arg-type]  # never run: events are fed
    return Source([informer]), informer


def feed(informer: Informer, event: str, new: JSON) -> None:
    """What the informer does with a watch event."""
    informer._apply({"type": event, "object": new})


# -- stores and indexes ---------------------------------------------------------------------------------------


def test_an_index_follows_puts_deletes_and_relists() -> None:
    store = Store()
    store.add_index("host", lambda o: [o["spec"]["host"]] if o["spec"].get("host") else [])
    store.put(obj("a", host="h1"))
    store.put(obj("b", host="h1"))
    store.put(obj("c", host="h2"))
    assert [o["metadata"]["name"] for o in store.by_index("host", "h1")] == ["a", "b"]
    store.put(obj("a", "2", host="h2"))  # moved
    assert [o["metadata"]["name"] for o in store.by_index("host", "h1")] == ["b"]
    store.delete("ns/b")
    assert store.by_index("host", "h1") == []
    assert store.index_values("host") == ["h2"]
    store.replace([obj("d", host="h3")])
    assert store.index_values("host") == ["h3"]
    with pytest.raises(ValueError, match="already registered"):
        store.add_index("host", lambda o: [])


def test_an_index_registered_late_files_what_is_already_there() -> None:
    store = Store()
    store.put(obj("a", host="h1"))
    store.add_index("host", lambda o: [o["spec"]["host"]])
    assert [o["metadata"]["name"] for o in store.by_index("host", "h1")] == ["a"]


# -- routing ---------------------------------------------------------------------------------------------------


async def _nothing(key: str) -> float | None:
    return None


def controller(src: Source, **kw: Any) -> Controller:
    return Controller(name="test", kind="Parent", for_=src, reconcile=kw.pop("reconcile", _nothing),
                      clock=kw.pop("clock", None) or FakeClock(), **kw)  # fmt: skip


def queued(c: Controller) -> list[str]:
    keys = []
    while len(c.queue):
        key = c.queue._queue.popleft()  # test-only peek at the FIFO
        c.queue._dirty.discard(key)
        keys.append(key)
    return keys


async def test_a_status_only_change_of_our_own_kind_wakes_nothing() -> None:
    src, informer = source()
    c = controller(src)
    feed(informer, "ADDED", obj("a"))
    assert queued(c) == ["ns/a"]
    feed(informer, "MODIFIED", obj("a", "2", status={"phase": "Running"}))
    assert queued(c) == [], "our own status write echoing back"
    feed(informer, "MODIFIED", obj("a", "3", status={"phase": "Running"}, image="new"))
    assert queued(c) == ["ns/a"]
    feed(informer, "DELETED", obj("a", "4"))
    assert queued(c) == ["ns/a"]


async def test_a_reconcile_waits_until_the_cache_shows_our_write_and_that_write_wakes_it() -> None:
    src, informer = source()
    calls: list[str] = []

    async def reconcile(key: str) -> float | None:
        calls.append(key)
        return None

    tracker = WriteTracker(timeout=5.0)
    c = controller(src, reconcile=reconcile, tracker=tracker)
    feed(informer, "ADDED", obj("a", "10"))
    queued(c)
    tracker.wrote("ns/a", "11")  # we patched status; the API server answered with resourceVersion 11
    wait = await c._reconcile("ns/a")  # woken meanwhile (a Docker event), but the cache still holds 10
    assert calls == []
    assert isinstance(wait, Defer), "deferred, not done: the key keeps its backoff"
    assert 0 < wait.seconds <= 5.0
    feed(informer, "MODIFIED", obj("a", "11", status={"phase": "Running"}))  # status only, but awaited
    assert queued(c) == ["ns/a"], "the echo of the awaited write wakes the deferred key"
    assert await c._reconcile("ns/a") is None
    assert calls == ["ns/a"]


async def test_read_your_writes_gives_up_after_the_timeout() -> None:
    src, informer = source()
    now = [0.0]
    tracker = WriteTracker(timeout=5.0, clock=lambda: now[0])
    calls: list[str] = []

    async def reconcile(key: str) -> float | None:
        calls.append(key)
        return None

    c = controller(src, reconcile=reconcile, tracker=tracker)
    feed(informer, "ADDED", obj("a", "10"))
    tracker.wrote("ns/a", "11")
    assert await c._reconcile("ns/a") == Defer(5.0)
    now[0] = 5.1  # the watch lost our event: go ahead with what the cache has
    assert await c._reconcile("ns/a") is None
    assert calls == ["ns/a"]


async def test_a_write_whose_echo_came_before_its_response_does_not_stall_the_next_reconcile() -> None:
    """Both arrive on one event loop: the watch event of our status patch can be handled first, and a user's edit
    right after it hides it from the cache. The tracker must not then wait out its timeout for an event that has
    already passed (it did: a rollout sat still for 5 s after every template change that raced a status write)."""
    src, informer = source()
    calls: list[str] = []

    async def reconcile(key: str) -> float | None:
        calls.append(key)
        return None

    tracker = WriteTracker(timeout=5.0)
    c = controller(src, reconcile=reconcile, tracker=tracker)
    feed(informer, "ADDED", obj("a", "10"))
    feed(informer, "MODIFIED", obj("a", "11", status={"phase": "Running"}))  # the echo of our write...
    tracker.wrote("ns/a", "11")  # ...handled before the patch's own response
    feed(informer, "MODIFIED", obj("a", "12", image="b"))  # and a user's edit on top
    queued(c)
    assert await c._reconcile("ns/a") is None
    assert calls == ["ns/a"]
    assert tracker.pending == 0


async def test_children_wake_their_owner_and_lower_its_expectations() -> None:
    parents, parent_informer = source()
    children, child_informer = source()
    c = controller(parents, owns=[Owns(children)])
    feed(parent_informer, "ADDED", obj("p"))
    queued(c)
    c.expectations.expect("ns/p", adds=2, delete_uids=["uid-old"])
    assert not c.expectations.satisfied("ns/p")
    feed(child_informer, "ADDED", obj("p-1", owner="p"))
    feed(child_informer, "ADDED", obj("p-2", owner="p"))
    assert queued(c) == ["ns/p"]
    assert not c.expectations.satisfied("ns/p"), "a deletion is still expected"
    feed(child_informer, "ADDED", obj("old", owner="p"))
    deleting = obj("old", "2", owner="p")
    deleting["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    feed(child_informer, "MODIFIED", deleting)
    assert c.expectations.satisfied("ns/p")
    assert [o["metadata"]["name"] for o in children.store.by_index(CONTROLLER_UID_INDEX, "uid-p")] == [
        "old",
        "p-1",
        "p-2",
    ]


async def test_a_child_released_by_its_owner_wakes_the_former_owner() -> None:
    parents, _ = source()
    children, child_informer = source()
    c = controller(parents, owns=[Owns(children)])
    feed(child_informer, "ADDED", obj("c", owner="p"))
    queued(c)
    feed(child_informer, "MODIFIED", obj("c", "2"))
    assert queued(c) == ["ns/p"]


async def test_watches_map_through_an_index_not_a_scan() -> None:
    containers, container_informer = source()
    hosts, host_informer = source(DOCKERHOSTS)
    containers.add_index("host", lambda o: [o["spec"].get("host", "")])
    looked_at: list[str] = []

    def by_host(event: str, new: JSON, old: JSON | None) -> list[str]:
        looked_at.append(new["metadata"]["name"])
        return [f"ns/{o['metadata']['name']}" for o in containers.store.by_index("host", new["metadata"]["name"])]

    c = controller(containers, watches=[Watch(hosts, by_host)])
    for i in range(100):
        feed(container_informer, "ADDED", obj(f"c{i}", host="h1" if i < 3 else "h2"))
    queued(c)
    feed(host_informer, "MODIFIED", {"metadata": {"name": "h1", "resourceVersion": "5"}, "spec": {}})
    assert queued(c) == ["ns/c0", "ns/c1", "ns/c2"]
    assert looked_at == ["h1"]


async def test_a_delayed_watch_turns_a_burst_into_one_wake() -> None:
    """A host's container count: 50 placements within the delay wake the host once, after the delay."""
    containers, container_informer = source()
    hosts, _ = source(DOCKERHOSTS)

    def to_host(event: str, new: JSON, old: JSON | None) -> list[str]:
        return ["h1"]

    clock = FakeClock()
    c = controller(hosts, watches=[Watch(containers, to_host, delay=1.0)], clock=clock)
    for i in range(50):
        feed(container_informer, "ADDED", obj(f"c{i}"))
        clock.advance(0.01)
    assert queued(c) == [], "nothing at once"
    clock.advance(1.0)
    assert queued(c) == ["h1"]
    clock.advance(5.0)
    assert queued(c) == [], "once"


async def test_a_delayed_owner_wake_lowers_expectations_at_once_and_wakes_once() -> None:
    """A rollout's replicas turning Ready one after another: one reconcile of the owner, and the expectation of
    each creation met the moment its event arrives (a reconcile in between must not think it is still missing)."""
    clock = FakeClock()
    parents, parent_informer = source()
    children, child_informer = source()
    c = controller(parents, owns=[Owns(children, delay=0.2)], clock=clock)
    feed(parent_informer, "ADDED", obj("p"))
    queued(c)
    c.expectations.expect("ns/p", adds=3)
    for i in range(3):
        feed(child_informer, "ADDED", obj(f"p-{i}", owner="p"))
    assert c.expectations.satisfied("ns/p")
    assert queued(c) == []
    for i in range(3):
        feed(child_informer, "MODIFIED", obj(f"p-{i}", "2", owner="p", status={"ready": True}))
        clock.advance(0.05)
    clock.advance(0.2)
    assert queued(c) == ["ns/p"]


async def test_expectations_expire_so_a_lost_event_cannot_block_forever() -> None:
    now = [0.0]
    expectations = Expectations(ttl=300, clock=lambda: now[0])
    expectations.expect("k", adds=1)
    assert not expectations.satisfied("k")
    expectations.creation_failed("k")
    assert expectations.satisfied("k")
    expectations.expect("k", adds=1)
    now[0] = 301
    assert expectations.satisfied("k")


async def test_the_controller_runs_reconciles_and_retries_failures() -> None:
    src, informer = source()
    attempts: list[str] = []
    done = asyncio.Event()

    async def reconcile(key: str) -> float | None:
        attempts.append(key)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        done.set()
        return None

    c = Controller(name="test", kind="Parent", for_=src, reconcile=reconcile)
    task = asyncio.create_task(c.run())
    feed(informer, "ADDED", obj("a"))
    await asyncio.wait_for(done.wait(), timeout=5)
    c.shut_down()
    await task
    assert attempts == ["ns/a", "ns/a"]
