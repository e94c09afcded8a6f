"""Recording a decision's Events (the I/O half of runtime.plans)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dockyard_operator.kube.recording import EventRecorder
from dockyard_operator.runtime.plans import Event


async def record(recorder: EventRecorder, obj: dict[str, Any], events: Iterable[Event]) -> None:
    """Record `events` about `obj` (recording never raises: a lost Event must not fail a reconcile)."""
    for event in events:
        await recorder.record(obj, reason=event.reason, note=event.note, type_="Warning" if event.warning else "Normal")
