"""Cron schedules read the way Kubernetes reads them (robfig/cron v3's standard parser), on croniter.

- Grammar: five fields (minute hour day-of-month month day-of-week) or a macro (@yearly, @annually, @monthly,
  @weekly, @daily, @midnight, @hourly); names (JAN, MON); `?` for either day field; no L, W, #, seconds or
  day-of-week 7. The CRD refuses the rest at admission; `parse` checks again, since the operator must never act
  on a schedule it reads differently from the API server.
- Day-of-month and day-of-week both restricted (not `*`) match either, as in cron; `*/2` counts as restricted,
  as in robfig's parser (croniter agrees, cronsim does not: one reason croniter was chosen, docs/decisions.md).
- Time zones: the schedule is wall-clock time in the zone. On the day clocks spring forward, a time that does not
  exist does not run (robfig walks absolute time; croniter alone would move it to the next valid minute, so
  candidates whose wall-clock time does not match the fields are dropped). On the day clocks fall back, a time
  that happens twice runs twice, as in Kubernetes (each run has its own name: minutes since the epoch differ).

All times in and out are timezone-aware; results are in UTC.
"""

from __future__ import annotations

import datetime
import re
import zoneinfo
from dataclasses import dataclass
from typing import Final

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from dockyard_operator.api.dockercronjob import SCHEDULE_PATTERN
from dockyard_operator.cronjobs.errors import ScheduleError, UnknownTimeZoneError

UTC: Final = datetime.UTC
#: Candidates looked at for one answer before the schedule is called impossible (a time that never comes: 30 Feb).
#: A valid schedule needs at most a handful (a skipped spring-forward time costs one).
_SEARCH_LIMIT: Final = 64
#: Schedule times counted between two reconciles before "too many missed" (batch/v1's 100).
MISSED_LIMIT: Final = 100

_MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule in its time zone."""

    expression: str
    """The five-field form (macros expanded, `?` as `*`)."""

    zone: zoneinfo.ZoneInfo

    def next_after(self, when: datetime.datetime) -> datetime.datetime:
        """The first schedule time strictly after `when`."""
        start = when.astimezone(self.zone)
        cursor = croniter(self.expression, start)
        for _ in range(_SEARCH_LIMIT):
            candidate = self._step(cursor, forward=True)
            if candidate > when and self._really(candidate):
                return candidate.astimezone(UTC)
        raise ScheduleError(f"schedule {self.expression!r} has no time after {when.isoformat()}")

    def latest_at_or_before(self, when: datetime.datetime) -> datetime.datetime | None:
        """The newest schedule time at or before `when` (None: none within the search window)."""
        start = (when + datetime.timedelta(microseconds=1)).astimezone(self.zone)
        cursor = croniter(self.expression, start)
        for _ in range(_SEARCH_LIMIT):
            try:
                candidate = self._step(cursor, forward=False)
            except ScheduleError:
                return None
            if candidate <= when and self._really(candidate):
                return candidate.astimezone(UTC)
        return None

    def due(self, earliest: datetime.datetime, now: datetime.datetime) -> tuple[datetime.datetime | None, int]:
        """The newest schedule time in (earliest, now] and how many there were (counted up to MISSED_LIMIT + 1)."""
        first = self.next_after(earliest)
        if first > now:
            return None, 0
        count, at = 1, first
        while count <= MISSED_LIMIT:
            at = self.next_after(at)
            if at > now:
                return self.latest_at_or_before(now) or first, count
            count += 1
        return self.latest_at_or_before(now) or first, count

    def _step(self, cursor: croniter, *, forward: bool) -> datetime.datetime:
        try:
            value = cursor.get_next(datetime.datetime) if forward else cursor.get_prev(datetime.datetime)
        except CroniterBadDateError as exc:
            raise ScheduleError(f"schedule {self.expression!r} never comes: {exc}") from exc
        if not isinstance(value, datetime.datetime):
            raise ScheduleError(f"schedule {self.expression!r}: no time")
        return value

    def _really(self, candidate: datetime.datetime) -> bool:
        # croniter moves a wall-clock time that does not exist (the spring-forward gap) to the next minute that
        # does; Kubernetes skips it. A candidate whose wall clock does not match the fields is such a move.
        local = candidate.astimezone(self.zone)
        return bool(croniter.match(self.expression, local.replace(tzinfo=None)))


_MONTHS: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_NAMES: Final = {name: n for n, name in enumerate(_MONTHS, 1)} | {name: n for n, name in enumerate(_DAYS)}
_FIELDS: Final = ("minute", "hour", "day of month", "month", "day of week")


def _refuse_reversed_ranges(schedule: str, expression: str) -> None:
    # croniter reads 22-2 as a range that wraps past midnight; robfig (and so the API server of a Kubernetes
    # CronJob) refuses it. Refusing keeps one meaning for one text.
    for field, part in zip(_FIELDS, expression.split(), strict=True):
        for start, end in re.findall(r"([0-9A-Za-z]+)-([0-9A-Za-z]+)", part):
            first, last = (_NAMES.get(v.upper(), None) if not v.isdigit() else int(v) for v in (start, end))
            if first is not None and last is not None and first > last:
                raise ScheduleError(
                    f"schedule {schedule!r}: the {field} range {start}-{end} runs backwards (write it as two ranges)"
                )


def parse(schedule: str, time_zone: str | None = None) -> Schedule:
    """Read a schedule in a time zone (None: UTC). Raises ScheduleError / UnknownTimeZoneError with the reason."""
    text = " ".join(schedule.split())
    if not re.fullmatch(SCHEDULE_PATTERN, text):
        raise ScheduleError(f"schedule {schedule!r} is not five cron fields or a macro such as @daily")
    expression = _MACROS.get(text, text).replace("?", "*")
    _refuse_reversed_ranges(schedule, expression)
    try:
        zone = zoneinfo.ZoneInfo(time_zone) if time_zone else zoneinfo.ZoneInfo("UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimeZoneError(f"unknown time zone {time_zone!r} (not in the operator's tz database)") from exc
    try:
        croniter(expression, datetime.datetime(2000, 1, 1, tzinfo=zone))
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise ScheduleError(f"schedule {schedule!r} cannot be read: {exc}") from exc
    result = Schedule(expression=expression, zone=zone)
    result.next_after(datetime.datetime(2000, 1, 1, tzinfo=UTC))  # a schedule that never comes fails here
    return result
