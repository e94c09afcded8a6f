"""What every pure decision returns besides its actions: Events to record and when to look again.

A decision function is `facts -> Plan`: it never calls Docker or the API server and never reads a clock (the caller
passes `now`). The executor performs the actions, records the events and writes the status, so the decision can be
tested as a table of cases and each case runs in microseconds (the kubelet's `computePodActions` shape).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to record about the object being reconciled.

    `note` must not vary between retries of the same failure (no delays, counts or timestamps in it): the recorder
    aggregates identical notes into one Event with a growing count instead of one Event per retry.
    """

    reason: str
    note: str
    warning: bool = False
