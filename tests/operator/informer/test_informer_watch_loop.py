"""The informer's loop: list, watch from the list's version, resume, re-list on 410, survive silent streams.

The API server is a scripted fake here: these are unit tests of the loop's decisions (the real apiserver path is
covered end to end in tests/e2e and tests/foundation).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dockyard_operator.informer.informing import Informer, WatchSettings
from dockyard_operator.kube import errors
from dockyard_operator.kube.resources import DOCKERCONTAINERS

JSON = dict[str, Any]


def obj(name: str, rv: str) -> JSON:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}, "spec": {}}


class ScriptedServer:
    """Answers list() and watch() from scripts; records what the informer asked for."""

    def __init__(self, lists: list[JSON], watches: list[list[JSON | BaseException]]) -> None:
        self.lists = lists
        self.watches = watches
        self.list_calls = 0
        self.watch_rvs: list[str] = []
        self.idle = asyncio.Event()

    async def list(self, resource: Any, **_: Any) -> JSON:
        self.list_calls += 1
        return self.lists.pop(0)

    async def watch(self, resource: Any, *, resource_version: str, **_: Any) -> AsyncIterator[JSON]:
        self.watch_rvs.append(resource_version)
        if not self.watches:
            self.idle.set()
            await asyncio.Event().wait()  # nothing more scripted: a quiet, healthy watch
        for item in self.watches.pop(0):
            if isinstance(item, BaseException):
                raise item
            yield item


def listing(rv: str, *objs: JSON) -> JSON:
    return {"apiVersion": "dockyard.dev/v1alpha1", "kind": "DockerContainerList",
            "metadata": {"resourceVersion": rv}, "items": list(objs)}  # fmt: skip


async def run_until_idle(server: ScriptedServer) -> tuple[Informer, list[tuple[str, str]]]:
    informer = Informer(
        client=server,  # type: ignore[arg-type]
        resource=DOCKERCONTAINERS,
        settings=WatchSettings(backoff_initial=0.001, backoff_max=0.002),
    )
    seen: list[tuple[str, str]] = []
    informer.add_handler(lambda kind, o, _old: seen.append((kind, o["metadata"]["name"])))
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(server.idle.wait(), timeout=5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return informer, seen


async def test_lists_then_watches_from_the_list_version_and_bookmarks_advance_it() -> None:
    server = ScriptedServer(
        lists=[listing("10", obj("a", "9"))],
        watches=[
            [{"type": "ADDED", "object": obj("b", "11")}, {"type": "BOOKMARK", "object": obj("", "15")}],
            [{"type": "MODIFIED", "object": obj("a", "16")}, {"type": "DELETED", "object": obj("b", "17")}],
        ],
    )
    informer, seen = await run_until_idle(server)
    assert server.watch_rvs == ["10", "15", "17"]  # resumed after the server ended each watch
    assert server.list_calls == 1
    assert seen == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    assert informer.store.list_keys() == ["ns/a"]


async def test_410_gone_relists_and_reports_what_changed_across_the_gap() -> None:
    server = ScriptedServer(
        lists=[listing("10", obj("a", "9"), obj("b", "9")), listing("50", obj("b", "9"), obj("c", "40"))],
        watches=[[errors.GoneError(410, "Expired", "too old resource version")]],
    )
    informer, seen = await run_until_idle(server)
    assert server.list_calls == 2
    assert server.watch_rvs == ["10", "50"]
    # a vanished in the gap (its DELETED event was never seen), c appeared, b did not change: not reported.
    assert seen[2:] == [("DELETED", "a"), ("ADDED", "c")]
    assert sorted(informer.store.list_keys()) == ["ns/b", "ns/c"]
    stored = informer.store.get("ns/b")
    assert stored is not None
    assert (stored["apiVersion"], stored["kind"]) == (
        "dockyard.dev/v1alpha1",
        "DockerContainer",
    )  # list items omit them


async def test_a_silent_watch_is_resumed_and_repeated_failures_fall_back_to_a_relist() -> None:
    stalled = errors.WatchStalledError("watch on dockercontainers was silent for 70s")
    server = ScriptedServer(
        lists=[listing("10"), listing("30")],
        watches=[
            [{"type": "ADDED", "object": obj("a", "12")}, stalled],  # resume from 12, no relist
            [stalled],
            [stalled],  # third failure in a row: relist
        ],
    )
    informer, _ = await run_until_idle(server)
    assert server.watch_rvs == ["10", "12", "12", "30"]
    assert server.list_calls == 2
    assert informer.watch_restarts >= 3
    assert informer.synced.is_set()


async def test_throttling_honours_retry_after() -> None:
    busy = errors.TooManyRequestsError(429, "TooManyRequests", "slow down", {"retryAfterSeconds": 0.05})
    server = ScriptedServer(lists=[listing("10")], watches=[[busy]])
    loop = asyncio.get_running_loop()
    started = loop.time()
    await run_until_idle(server)
    assert loop.time() - started >= 0.05
    assert server.watch_rvs == ["10", "10"]


async def test_a_watch_that_ends_at_once_without_events_backs_off_instead_of_spinning() -> None:
    """A broken proxy (or server) that closes every watch at once must not turn the informer into a hot loop."""

    class EmptyWatches(ScriptedServer):
        async def watch(self, resource: Any, *, resource_version: str, **_: Any) -> AsyncIterator[JSON]:
            self.watch_rvs.append(resource_version)
            nothing: list[JSON] = []
            for item in nothing:
                yield item

    server = EmptyWatches(lists=[listing("10")] * 100, watches=[])
    informer = Informer(
        client=server,  # type: ignore[arg-type]
        resource=DOCKERCONTAINERS,
        settings=WatchSettings(backoff_initial=0.01, backoff_max=0.1),
    )
    task = asyncio.create_task(informer.run())
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Before the fix: tens of thousands of watch calls in half a second. With backoff (10 ms doubling to 100 ms):
    # a handful, and a relist after every third failure in a row.
    assert 3 <= len(server.watch_rvs) <= 15, len(server.watch_rvs)
    assert server.list_calls >= 2


async def test_one_failing_handler_does_not_keep_the_event_from_the_others() -> None:
    server = ScriptedServer(lists=[listing("10")], watches=[[{"type": "ADDED", "object": obj("a", "11")}]])
    informer = Informer(client=server, resource=DOCKERCONTAINERS)  # type: ignore[arg-type]
    seen: list[str] = []

    def broken(kind: str, o: JSON, old: JSON | None) -> None:
        raise RuntimeError("a bug in one handler")

    informer.add_handler(broken)
    informer.add_handler(lambda kind, o, _old: seen.append(o["metadata"]["name"]))
    task = asyncio.create_task(informer.run())
    await asyncio.wait_for(server.idle.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["a"]


async def test_410_again_right_after_a_relist_backs_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resourceVersion that is too old again at once (a lagging cache behind a load balancer) must not spin."""
    from dockyard_operator.informer import informing

    pauses: list[float] = []
    real_sleep = asyncio.sleep

    class RecordingAsyncio:
        def __getattr__(self, name: str) -> Any:
            return getattr(asyncio, name)

        async def sleep(self, delay: float) -> None:
            pauses.append(delay)
            await real_sleep(0)

    monkeypatch.setattr(informing, "asyncio", RecordingAsyncio())
    gone = errors.GoneError(410, "Expired", "too old resource version")
    server = ScriptedServer(lists=[listing(str(n)) for n in range(10, 15)], watches=[[gone]] * 4)
    await run_until_idle(server)
    assert server.list_calls == 5
    assert pauses == [0.001, 0.002, 0.002], "no pause after the first 410, then doubling (capped)"
