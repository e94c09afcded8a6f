"""Kubernetes Events for every action the operator takes (events.k8s.io/v1), with repeat aggregation.

A repeated event (same object, reason, type and note) within `series_window` does not create a new object: the
existing one gets a `series` count, as client-go's recorder does, so a crash-looping container cannot flood etcd.
Recording never raises: losing an Event must not fail a reconcile.
"""

from __future__ import annotations

import collections
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


class EventRecorder:
    """Writes Events about objects; cheap to call from reconcilers."""

    def __init__(
        self,
        *,
        client: KubeClient,
        instance: str,
        series_window: float = 600.0,
        cache_size: int = 4096,
    ) -> None:
        self._client = client
        self._instance = instance[:128]
        self._window = series_window
        self._cache_size = cache_size
        self._seen: collections.OrderedDict[tuple[str, str, str, str], _Seen] = collections.OrderedDict()
        self._log = structlog.get_logger("dockyard.events")
        self.written = 0

    async def record(self, obj: JSON, *, reason: str, note: str, type_: str = "Normal", action: str = "") -> None:
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
                patch = {"series": {"count": seen.count, "lastObservedTime": micro_time()}}
                await self._client.merge_patch(EVENTS, seen.name, patch, namespace=seen.namespace)
            else:
                namespace = meta.get("namespace") or "default"
                name = f"{meta.get('name', 'unknown')}.{secrets.token_hex(8)}"
                body: JSON = {
                    "apiVersion": "events.k8s.io/v1",
                    "kind": "Event",
                    "metadata": {"name": name, "namespace": namespace},
                    "eventTime": micro_time(),
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
