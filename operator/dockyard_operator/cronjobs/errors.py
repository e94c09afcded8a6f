"""Errors of DockerCronJob schedules."""

from dockyard_operator.errors import DockyardError


class ScheduleError(DockyardError):
    """A schedule the operator cannot follow; the message says why, for the Scheduled condition and an Event."""

    reason = "InvalidSchedule"


class UnknownTimeZoneError(ScheduleError):
    """timeZone names no zone in the operator's time zone database."""

    reason = "UnknownTimeZone"
