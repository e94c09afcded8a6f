"""A controller, declared by what it reconciles, what it owns and what else it watches (controller-runtime's shape).

- `for_`: the kind it reconciles. Its events enqueue the object's key, filtered by a predicate (by default: a
  status-only change is our own write and wakes nothing).
- `owns`: child kinds that carry our controller ownerReference (a DockerDeployment's DockerContainers). A child's
  event enqueues its owner, found through the ownerReference; the children of an owner are listed through the
  `controller-uid` index; creations and deletions lower the owner's expectations.
- `watches`: other sources with a map function from one of their objects to our keys, usually an index lookup
  (the DockerContainers on a host, those referencing a Secret) — never a scan of the whole cache.
- external events (a Docker event, a host connecting) call `enqueue()`.

Around the reconcile function the controller adds read-your-writes (a key whose last write is not yet in the cache
waits for it), metrics, and the work queue's three outcomes: raise (retry with backoff), return seconds (look again
then), return None (done).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from dockyard_operator import tracing
from dockyard_operator.informer.store import JSON, object_key
from dockyard_operator.metrics import Metrics
from dockyard_operator.runtime.consistency import WriteTracker
from dockyard_operator.runtime.expectations import Expectations
from dockyard_operator.runtime.informers import Source
from dockyard_operator.workqueue.clocks import Clock, LoopClock
from dockyard_operator.workqueue.config import QueueConfig
from dockyard_operator.workqueue.ratelimiting import RateLimitingQueue, new_queue
from dockyard_operator.workqueue.workers import Defer, run_workers

Reconcile = Callable[[str], Awaitable[float | None]]
"""Reconcile one key: raise to retry with backoff, return seconds to look again, None when done."""

Predicate = Callable[[str, JSON, "JSON | None"], bool]
"""(event type, object, previous object) -> whether the event matters."""

MapFunc = Callable[[str, JSON, "JSON | None"], Iterable[str]]
"""(event type, object, previous object) -> keys of the controller's own kind to reconcile."""

#: The index every owned source gets: the uid of an object's controller owner.
CONTROLLER_UID_INDEX = "controller-uid"


def intent(obj: JSON | None) -> str:
    """What a user or another controller can change: the object without its status and bookkeeping."""
    if obj is None:
        return ""
    meta = obj.get("metadata") or {}
    relevant = {
        "spec": obj.get("spec"),
        "generation": meta.get("generation"),
        "labels": meta.get("labels"),
        "annotations": meta.get("annotations"),
        "finalizers": meta.get("finalizers"),
        "deletionTimestamp": meta.get("deletionTimestamp"),
        "ownerReferences": meta.get("ownerReferences"),
    }
    return json.dumps(relevant, sort_keys=True, separators=(",", ":"))


def intent_changed(event: str, obj: JSON, old: JSON | None) -> bool:
    """Everything but a change of status alone: status is ours to write, so its echo is not news."""
    return event != "MODIFIED" or intent(obj) != intent(old)


def any_change(event: str, obj: JSON, old: JSON | None) -> bool:
    return True


def controller_ref(obj: JSON) -> JSON | None:
    """The ownerReference with controller=true, if any."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), None)


def controller_uid(obj: JSON) -> list[str]:
    """Index function: the controller owner's uid."""
    ref = controller_ref(obj)
    return [str(ref["uid"])] if ref is not None and ref.get("uid") else []


@dataclass(frozen=True)
class Watch:
    """Another source whose events wake objects of the controller's kind."""

    source: Source
    map: MapFunc
    predicate: Predicate = any_change
    delay: float = 0.0
    """Wake the mapped keys this many seconds later instead of at once. Events of a burst within the delay then
    cost one reconcile (the delaying queue keeps a key once): for summaries such as a host's container count."""


@dataclass(frozen=True)
class Owns:
    """A child kind whose objects carry the controller's ownerReference."""

    source: Source
    delay: float = 0.0
    """Wake the owner this many seconds after a child's change instead of at once (expectations are still
    lowered at once): a burst of child changes — a rollout's replicas turning Ready — then costs one reconcile
    and one status write instead of one each."""


class Controller:
    """Workers over a rate-limited queue of keys of one kind, fed by the sources the controller declares."""

    def __init__(
        self,
        *,
        name: str,
        kind: str,
        for_: Source,
        reconcile: Reconcile,
        owns: Sequence[Owns] = (),
        watches: Sequence[Watch] = (),
        predicate: Predicate = intent_changed,
        workers: int = 1,
        metrics: Metrics | None = None,
        clock: Clock | None = None,
        queue_config: QueueConfig | None = None,
        resync: bool = True,
        tracker: WriteTracker | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.source = for_
        self.workers = workers
        self.resync = resync
        self._reconcile_fn = reconcile
        self._predicate = predicate
        self._metrics = metrics
        self.tracker = tracker or WriteTracker()
        self.expectations = Expectations()
        self.queue: RateLimitingQueue[str] = new_queue(
            config=queue_config or QueueConfig(),
            clock=clock or LoopClock(),
            observer=metrics.queue_observer(name) if metrics is not None else None,
        )
        self._log = structlog.get_logger(f"dockyard.{name}")
        for_.add_handler(self._on_primary)
        for child in owns:
            child.source.add_index(CONTROLLER_UID_INDEX, controller_uid)
            child.source.add_handler(self._child_handler(child.delay))
        for watch in watches:
            watch.source.add_handler(self._mapper(watch))

    # -- event routing ----------------------------------------------------------------------------------------

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    def enqueue_after(self, key: str, seconds: float) -> None:
        self.queue.add_after(key, seconds)

    def _on_primary(self, event: str, obj: JSON, old: JSON | None) -> None:
        key = object_key(obj)
        if event == "DELETED":
            self.tracker.forget(key)
            self.enqueue(key)
            return
        caught_up = self.tracker.observed(key, (obj.get("metadata") or {}).get("resourceVersion"))
        if caught_up or self._predicate(event, obj, old):
            self.enqueue(key)

    def _owner_key(self, obj: JSON | None) -> str | None:
        if obj is None:
            return None
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != self.kind:
            return None
        namespace = (obj.get("metadata") or {}).get("namespace")
        return f"{namespace}/{ref['name']}" if namespace else str(ref["name"])

    def _child_handler(self, delay: float) -> Any:
        def handler(event: str, obj: JSON, old: JSON | None) -> None:
            self._on_child(event, obj, old, delay=delay)

        return handler

    def _on_child(self, event: str, obj: JSON, old: JSON | None, *, delay: float = 0.0) -> None:
        owner = self._owner_key(obj)
        uid = str((obj.get("metadata") or {}).get("uid") or "")
        if owner is not None:
            if event == "ADDED":
                self.expectations.creation_observed(owner)
            elif event == "DELETED" or (
                (obj.get("metadata") or {}).get("deletionTimestamp")
                and not ((old or {}).get("metadata") or {}).get("deletionTimestamp")
            ):
                self.expectations.deletion_observed(owner, uid)
            self._wake(owner, delay)
        previous = self._owner_key(old)
        if previous is not None and previous != owner:
            self._wake(previous, delay)  # released or adopted by someone else: the old owner recounts

    def _wake(self, key: str, delay: float) -> None:
        if delay > 0:
            self.enqueue_after(key, delay)
        else:
            self.enqueue(key)

    def _mapper(self, watch: Watch) -> Any:
        def handler(event: str, obj: JSON, old: JSON | None) -> None:
            if watch.predicate(event, obj, old):
                for key in watch.map(event, obj, old):
                    if watch.delay > 0:
                        self.enqueue_after(key, watch.delay)
                    else:
                        self.enqueue(key)

        return handler

    # -- running ----------------------------------------------------------------------------------------------

    def resync_all(self) -> None:
        """Enqueue every object of the kind (the level-triggered safety net)."""
        for key in self.source.store.list_keys():
            self.enqueue(key)

    async def run(self) -> None:
        """Run the workers until the queue shuts down."""
        await run_workers(self.queue, self._reconcile, workers=self.workers, logger=self._log)

    def shut_down(self) -> None:
        self.queue.shut_down()

    async def _reconcile(self, key: str) -> float | Defer | None:
        cached = self.source.store.get(key)
        if cached is not None:
            wait = self.tracker.wait_for(key, cached["metadata"].get("resourceVersion"))
            if wait is not None:
                # Our own write's watch event re-queues the key sooner. Deferred, not "done": a reconcile that
                # wrote status and then failed keeps its backoff while it waits for the echo.
                self._log.debug("waiting for our write to reach the cache", key=key, at_most=round(wait, 3))
                return Defer(wait)
        else:
            self.tracker.forget(key)
        started = time.perf_counter()
        # The attributes a trace is searched by: kind, key, result (the span itself has the duration).
        span = tracing.span(f"reconcile {self.kind}", {"dockyard.kind": self.kind, "dockyard.key": key})
        with span:
            try:
                result = await self._reconcile_fn(key)
            except Exception as error:
                span.set_attribute("dockyard.result", "error")
                if self._metrics is not None:
                    self._metrics.reconcile_total.labels(self.name, "error").inc()
                    self._metrics.reconcile_errors.labels(self.name).inc()
                    self._metrics.reconcile_time.labels(self.name).observe(time.perf_counter() - started)
                # Inside the span: this line carries the trace id (the worker's retry line does not).
                self._log.debug("reconcile failed", key=key, error=repr(error))
                raise
            except BaseException:  # cancelled: still timed, never counted as a result
                if self._metrics is not None:
                    self._metrics.reconcile_time.labels(self.name).observe(time.perf_counter() - started)
                raise
            outcome = "requeue_after" if result else "success"
            span.set_attribute("dockyard.result", outcome)
            if result:
                span.set_attribute("dockyard.requeue_after", float(result))
            if self._metrics is not None:
                self._metrics.reconcile_time.labels(self.name).observe(time.perf_counter() - started)
                self._metrics.reconcile_total.labels(self.name, outcome).inc()
            self._log.debug(
                "reconciled", key=key, seconds=round(time.perf_counter() - started, 4), requeue_after=result
            )
        return result
