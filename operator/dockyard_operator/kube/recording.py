"""Kubernetes Events for every action the operator takes (events.k8s.io/v1), with repeat aggregation.

A repeated event (same object, reason, type and note) within `series_window` does not create a new object: the
existing one gets a `series` count, as client-go's recorder does, so a crash-looping container cannot flood etcd.
Recording never raises: losing an Event must not fail a reconcile.

While `run()` is running, `record()` only queues the Event and a background writer sends it, as client-go's
broadcaster does: a reconcile never waits for an Event's round trip (a replica's life is six Events; written
inline they were a third of a rollout's API time). The queue is bounded; when it is full the Event is dropped
with a warning, never the reconcile delayed. Without a running writer (`dockyard` CLI, tests) it writes inline.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime
import secrets
import time
from typing import Any

import structlog

from dockyard_operator.kube import errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import EVENTS

JSON = dict[str, Any]

REPORTING_CONTROLLER = "dockyard.dev/operator"


def micro_time(now: datetime.datetime | None = None) -> str:
    """RFC 3339 with microseconds, the MicroTime format Events require."""
    now = now or datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclasses.dataclass
class _Seen:
    name: str
    namespace: str
    count: int
    last: float


@dataclasses.dataclass(frozen=True)
class _Pending:
    obj: JSON
    reason: str
    note: str
    type_: str
    action: str
    when: str


class EventRecorder:
    """Writes Events about objects; cheap to call from reconcilers."""

    def __init__(
        self,
        *,
        client: KubeClient,
        instance: str,
        series_window: float = 600.0,
        cache_size: int = 4096,
        queue_size: int = 1000,
    ) -> None:
        self._client = client
        self._instance = instance[:128]
        self._window = series_window
        self._cache_size = cache_size
        self._seen: collections.OrderedDict[tuple[str, str, str, str], _Seen] = collections.OrderedDict()
        self._log = structlog.get_logger("dockyard.events")
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=queue_size)
        self._running = False
        self.written = 0
        self.dropped = 0

    async def record(self, obj: JSON, *, reason: str, note: str, type_: str = "Normal", action: str = "") -> None:
        pending = _Pending(obj=obj, reason=reason, note=note, type_=type_, action=action, when=micro_time())
        if not self._running:
            await self._write(pending)
            return
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            self.dropped += 1
            self._log.warning("event queue full; dropping an event", reason=reason, object=_name(obj))

    async def run(self) -> None:
        """Send queued Events until cancelled (one writer: a series count needs its first Event's name)."""
        self._running = True
        try:
            while True:
                await self._write_safely(await self._queue.get())
        finally:
            self._running = False

    async def drain(self, timeout: float) -> None:
        """Send what is still queued (at shutdown, after run() was cancelled), giving up after `timeout`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not self._queue.empty():
                    await self._write_safely(self._queue.get_nowait())
        if not self._queue.empty():
            self._log.warning("events not sent at shutdown", count=self._queue.qsize())

    async def _write_safely(self, pending: _Pending) -> None:
        # The writer runs in the operator's task group: anything one Event can raise (a 2xx whose body is not JSON,
        # a credentials refresh failing) must cost that Event, never the operator.
        try:
            await self._write(pending)
        except Exception as exc:
            self._log.warning("could not record event", reason=pending.reason, object=_name(pending.obj),
                              error=repr(exc))  # fmt: skip

    async def _write(self, pending: _Pending) -> None:
        obj, reason, note, type_, action = pending.obj, pending.reason, pending.note, pending.type_, pending.action
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        note = note[:1024]  # the API caps note at 1 kB
        key = (uid, reason, type_, note)
        now = time.monotonic()
        try:
            seen = self._seen.get(key)
            if seen is not None and now - seen.last < self._window:
                seen.count += 1
                seen.last = now
                self._seen.move_to_end(key)
                patch = {"series": {"count": seen.count, "lastObservedTime": pending.when}}
                await self._client.merge_patch(EVENTS, seen.name, patch, namespace=seen.namespace)
            else:
                namespace = meta.get("namespace") or "default"
                name = f"{meta.get('name', 'unknown')}.{secrets.token_hex(8)}"
                body: JSON = {
                    "apiVersion": "events.k8s.io/v1",
                    "kind": "Event",
                    "metadata": {"name": name, "namespace": namespace},
                    "eventTime": pending.when,
                    "reportingController": REPORTING_CONTROLLER,
                    "reportingInstance": self._instance,
                    "action": action or reason,
                    "reason": reason,
                    "note": note,
                    "type": type_,
                    "regarding": {
                        "apiVersion": obj.get("apiVersion"),
                        "kind": obj.get("kind"),
                        "name": meta.get("name"),
                        "namespace": meta.get("namespace"),
                        "uid": uid,
                        "resourceVersion": meta.get("resourceVersion"),
                    },
                }
                await self._client.create(EVENTS, body, namespace=namespace)
                self._seen[key] = _Seen(name=name, namespace=namespace, count=1, last=now)
                while len(self._seen) > self._cache_size:
                    self._seen.popitem(last=False)
            self.written += 1
        except errors.KubeError as exc:
            self._log.warning("could not record event", reason=reason, object=meta.get("name"), error=str(exc))
            self._seen.pop(key, None)


def _name(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))
