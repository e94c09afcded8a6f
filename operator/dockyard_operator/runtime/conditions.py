"""Kubernetes conditions (metav1.Condition) on typed status models, kept without churn. Shared by every kind.

Pure: the caller passes ``now``. lastTransitionTime changes only when a condition's status changes, and times have
whole seconds, as the API server stores them; so setting the same conditions again yields an equal list, and a
reconciler's "patch only when changed" check holds across a round trip through the API server. The list is kept
sorted by type for the same reason.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from dockyard_operator.api.common import CONDITION_REASON_PATTERN, CONDITION_TYPE_PATTERN, Condition, ConditionStatus
from dockyard_operator.runtime.errors import RuntimeContractError

#: metav1.Condition's limit on message length; longer messages (Docker errors can be long) are cut.
MAX_MESSAGE: Final = 32768
_REASON_RE: Final = re.compile(CONDITION_REASON_PATTERN)
_TYPE_RE: Final = re.compile(CONDITION_TYPE_PATTERN)


class InvalidConditionError(RuntimeContractError, ValueError):
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


def whole_seconds(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` in UTC without its fraction of a second (metav1.Time's precision); naive datetimes are refused."""
    if moment.tzinfo is None:
        raise InvalidConditionError("condition times must be timezone-aware")
    return moment.astimezone(datetime.UTC).replace(microsecond=0)


def format_time(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with whole seconds, as metav1.Time serializes; naive datetimes are refused."""
    return whole_seconds(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_conditions(
    conditions: Sequence[Condition],
    updates: Iterable[ConditionUpdate],
    *,
    observed_generation: int | None,
    now: datetime.datetime,
) -> list[Condition]:
    """The conditions with the updates applied; conditions not updated are kept as they are.

    A condition keeps its lastTransitionTime when its status is unchanged (reason and message may change);
    otherwise, and for a new condition, lastTransitionTime is ``now``. observedGeneration is set on every updated
    condition. The result is a new list sorted by type.
    """
    stamp = whole_seconds(now)
    by_type: dict[str, Condition] = {c.type: c for c in conditions}
    for update in updates:
        old = by_type.get(update.type)
        unchanged = old is not None and old.status is update.status
        by_type[update.type] = Condition(
            type=update.type,
            status=update.status,
            reason=update.reason,
            message=update.message[:MAX_MESSAGE],
            last_transition_time=old.last_transition_time if unchanged and old is not None else stamp,
            observed_generation=observed_generation,
        )
    return [by_type[key] for key in sorted(by_type)]


def set_condition(
    conditions: Sequence[Condition],
    update: ConditionUpdate,
    *,
    observed_generation: int | None,
    now: datetime.datetime,
) -> list[Condition]:
    """:func:`set_conditions` with one update."""
    return set_conditions(conditions, [update], observed_generation=observed_generation, now=now)


def remove_condition(conditions: Sequence[Condition], condition_type: str) -> list[Condition]:
    """The conditions without the one of this type (sorted by type)."""
    return sorted((c for c in conditions if c.type != condition_type), key=lambda c: c.type)


def find_condition(conditions: Sequence[Condition], condition_type: str) -> Condition | None:
    """The condition of this type, or None."""
    return next((c for c in conditions if c.type == condition_type), None)


def is_true(conditions: Sequence[Condition], condition_type: str) -> bool:
    """Whether the condition of this type exists and has status True."""
    found = find_condition(conditions, condition_type)
    return found is not None and found.status is ConditionStatus.TRUE


class Conditions:
    """A mutable working set of conditions for one reconcile: ``set`` as decisions are made, ``result`` at the end.

    Keeps the generation and clock so call sites read as the decision they record.
    """

    def __init__(self, current: Sequence[Condition], *, generation: int | None, now: datetime.datetime) -> None:
        self._items = list(current)
        self._generation = generation
        self._now = now

    def set(self, type_: str, status: ConditionStatus | str, reason: str, message: str = "") -> None:
        update = ConditionUpdate(type_, ConditionStatus(status), reason, message)
        self._items = set_condition(self._items, update, observed_generation=self._generation, now=self._now)

    def remove(self, type_: str) -> None:
        self._items = remove_condition(self._items, type_)

    def get(self, type_: str) -> Condition | None:
        return find_condition(self._items, type_)

    def reason(self, type_: str) -> str | None:
        found = self.get(type_)
        return found.reason if found is not None else None

    def status(self, type_: str) -> ConditionStatus | None:
        found = self.get(type_)
        return found.status if found is not None else None

    @property
    def result(self) -> list[Condition]:
        return list(self._items)
