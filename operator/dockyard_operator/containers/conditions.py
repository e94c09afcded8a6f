"""Kubernetes conditions (metav1.Condition) as the JSON the status subresource stores, kept without churn.

Pure: the caller passes ``now``. lastTransitionTime changes only when a condition's status changes, and times are
written with whole seconds, as the API server stores them; so setting the same conditions again yields an equal
list, and the reconciler's "patch only when changed" check holds across a round trip through the API server.
The list is kept sorted by type for the same reason.
"""

import datetime
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from dockyard_operator.api.common import CONDITION_REASON_PATTERN, CONDITION_TYPE_PATTERN, ConditionStatus
from dockyard_operator.containers.errors import ContainersError

#: metav1.Condition's limit on message length; longer messages (Docker errors can be long) are cut.
MAX_MESSAGE: Final = 32768
_REASON_RE: Final = re.compile(CONDITION_REASON_PATTERN)
_TYPE_RE: Final = re.compile(CONDITION_TYPE_PATTERN)


class InvalidConditionError(ContainersError, ValueError):
    """A condition that the API server would reject (a programming error in the caller)."""


@dataclass(frozen=True)
class ConditionUpdate:
    """The new state of one condition: type, status (True/False/Unknown), CamelCase reason and a message."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""

    def __post_init__(self) -> None:
        if not _TYPE_RE.fullmatch(self.type):
            raise InvalidConditionError(f"condition type {self.type!r} is not a valid condition type")
        if not _REASON_RE.fullmatch(self.reason):
            raise InvalidConditionError(f"condition reason {self.reason!r} must be a CamelCase word")
        # Accept "True" as well as ConditionStatus.TRUE, and refuse anything else now rather than at the API server.
        object.__setattr__(self, "status", ConditionStatus(self.status))


def format_time(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with whole seconds, as metav1.Time serializes; naive datetimes are refused."""
    if moment.tzinfo is None:
        raise InvalidConditionError("condition times must be timezone-aware")
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_conditions(
    conditions: Sequence[Mapping[str, Any]],
    updates: Iterable[ConditionUpdate],
    *,
    observed_generation: int | None,
    now: datetime.datetime,
) -> list[dict[str, Any]]:
    """The conditions with the updates applied; conditions not updated are kept as they are.

    A condition keeps its lastTransitionTime when its status is unchanged (reason and message may change);
    otherwise, and for a new condition, lastTransitionTime is ``now``. observedGeneration is set on every updated
    condition (omitted when None). The result is a new list sorted by type; the input is not modified.
    """
    stamp = format_time(now)
    by_type: dict[str, dict[str, Any]] = {str(c.get("type")): dict(c) for c in conditions}
    for update in updates:
        old = by_type.get(update.type)
        unchanged = old is not None and old.get("status") == update.status.value and old.get("lastTransitionTime")
        new: dict[str, Any] = {
            "type": update.type,
            "status": update.status.value,
            "reason": update.reason,
            "message": update.message[:MAX_MESSAGE],
            "lastTransitionTime": old["lastTransitionTime"] if unchanged and old is not None else stamp,
        }
        if observed_generation is not None:
            new["observedGeneration"] = observed_generation
        by_type[update.type] = new
    return [by_type[key] for key in sorted(by_type)]


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    update: ConditionUpdate,
    *,
    observed_generation: int | None,
    now: datetime.datetime,
) -> list[dict[str, Any]]:
    """:func:`set_conditions` with one update."""
    return set_conditions(conditions, [update], observed_generation=observed_generation, now=now)


def remove_condition(conditions: Sequence[Mapping[str, Any]], condition_type: str) -> list[dict[str, Any]]:
    """The conditions without the one of this type (a copy, sorted by type)."""
    kept = [dict(c) for c in conditions if c.get("type") != condition_type]
    return sorted(kept, key=lambda c: str(c.get("type")))


def find_condition(conditions: Sequence[Mapping[str, Any]], condition_type: str) -> Mapping[str, Any] | None:
    """The condition of this type, or None."""
    return next((c for c in conditions if c.get("type") == condition_type), None)


def is_true(conditions: Sequence[Mapping[str, Any]], condition_type: str) -> bool:
    """Whether the condition of this type exists and has status True."""
    found = find_condition(conditions, condition_type)
    return found is not None and found.get("status") == ConditionStatus.TRUE.value
