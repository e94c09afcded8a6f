"""DockerCronJob (namespaced): DockerJobs on a cron schedule, with batch/v1 CronJob semantics.

Each run is a DockerJob named `<cronjob>-<scheduled time in minutes since the epoch>`, owned by the DockerCronJob,
so two operators (or one restarted) can never start the same run twice: the second create is refused by name.
"""

import enum
import re
from typing import Annotated, Final, Literal

from pydantic import Field, field_validator

from dockyard_operator.api import common
from dockyard_operator.api.dockerjob import DockerJobSpec

KIND: Final = "DockerCronJob"

CRONJOB_NAME_LABEL: Final = "dockyard.dev/cronjob-name"
"""On every DockerJob a DockerCronJob starts: the DockerCronJob's name."""

SCHEDULED_AT_ANNOTATION: Final = "dockyard.dev/scheduled-at"
"""On every DockerJob a DockerCronJob starts: the schedule time it is the run of (RFC 3339)."""


def _schedule_pattern() -> str:
    """The standard cron grammar (robfig/cron's, which Kubernetes uses) as one regular expression: five fields of
    numbers in range, names (JAN-DEC, SUN-SAT), ranges, lists and steps, `?` for either day field, or a macro.
    The operator's cron library reads it again (and reports what it cannot follow as a condition)."""

    def field(value: str, *, either: bool = False) -> str:
        item = rf"(\*|{value}(-{value})?)(/[0-9]{{1,2}})?"
        return f"({item}(,{item})*" + (r"|\?" if either else "") + ")"

    months = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
    days = "SUN|MON|TUE|WED|THU|FRI|SAT"
    fields = [
        field("[0-5]?[0-9]"),
        field("([01]?[0-9]|2[0-3])"),
        field("(0?[1-9]|[12][0-9]|3[01])", either=True),
        field(f"(0?[1-9]|1[0-2]|{months}|{months.lower()})"),
        field(f"([0-6]|{days}|{days.lower()})", either=True),
    ]
    return "^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|" + " +".join(fields) + ")$"


SCHEDULE_PATTERN: Final = _schedule_pattern()
SCHEDULE_MESSAGE: Final = (
    "schedule must be five cron fields with values in range (minute 0-59, hour 0-23, day of month 1-31, month "
    "1-12 or JAN-DEC, day of week 0-6 or SUN-SAT; *, lists, ranges and /steps) or one of @yearly, @monthly, "
    "@weekly, @daily, @hourly; a time zone goes in timeZone"
)
#: An IANA time zone name: Area/Location (with more levels), or UTC and the like. Whether it exists is checked
#: against the operator's tz database (it is not known at admission).
TIME_ZONE_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"


class ConcurrencyPolicy(enum.StrEnum):
    """What to do when a run is due while an earlier one is still running."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


class JobTemplateMetadata(common.ApiModel):
    """Labels and annotations every DockerJob of the schedule gets."""

    labels: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, json_schema_extra={"maxProperties": 64}
    )
    """Labels of the DockerJobs, besides dockyard.dev/cronjob-name."""

    annotations: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict, json_schema_extra={"maxProperties": 64}
    )
    """Annotations of the DockerJobs, besides dockyard.dev/scheduled-at."""


class JobTemplate(common.ApiModel):
    """The DockerJob every run is made from."""

    metadata: JobTemplateMetadata = Field(default_factory=JobTemplateMetadata)
    """Labels and annotations of the DockerJobs."""

    spec: DockerJobSpec
    """The DockerJob spec of every run."""


class DockerCronJobSpec(common.ApiModel):
    """Desired state of the DockerCronJob, as batch/v1 CronJob's."""

    schedule: str = Field(
        min_length=1,
        max_length=128,
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": f"self.matches(r'{SCHEDULE_PATTERN}')", "message": SCHEDULE_MESSAGE}]
        },
    )
    """Standard cron: minute hour day-of-month month day-of-week (for example "*/15 * * * *" or "0 3 * * MON"),
    or @yearly, @monthly, @weekly, @daily, @hourly. Day-of-month and day-of-week both restricted means either, as
    in cron. The time zone goes in timeZone, not in a TZ= prefix."""

    time_zone: str | None = Field(default=None, max_length=64, pattern=TIME_ZONE_PATTERN)
    """The IANA time zone the schedule is read in (for example Europe/Berlin). Unset: UTC. Runs at times a
    daylight-saving change skips do not happen that day; times it repeats run twice, as in Kubernetes."""

    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    """Allow: runs may overlap. Forbid: a run due while the last one is active is skipped. Replace: the active run
    is deleted and the new one starts."""

    starting_deadline_seconds: int | None = Field(default=None, ge=0, le=86400 * 365)
    """A run that could not start on time (operator down, Forbid) is started late only within this many seconds
    of its schedule time. Unset: no limit, but at most one missed run is ever started."""

    suspend: bool = False
    """A suspended DockerCronJob starts no runs; runs already started go on."""

    successful_jobs_history_limit: int = Field(default=3, ge=0, le=1000)
    """Finished successful DockerJobs kept (the oldest are deleted). Default 3."""

    failed_jobs_history_limit: int = Field(default=1, ge=0, le=1000)
    """Finished failed DockerJobs kept (the oldest are deleted). Default 1."""

    job_template: JobTemplate
    """The DockerJob every run is made from."""

    @field_validator("schedule")
    @classmethod
    def _readable(cls, value: str) -> str:
        if not re.fullmatch(SCHEDULE_PATTERN, value):
            raise ValueError(SCHEDULE_MESSAGE)
        return value


class CronJobConditionType(enum.StrEnum):
    """Condition types of a DockerCronJob."""

    SCHEDULED = "Scheduled"


class DockerCronJobStatus(common.ApiModel):
    """What the operator last observed. Written only by the operator."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this status was computed from."""

    active: list[common.LocalObjectReference] = Field(default_factory=list, max_length=1000)
    """The DockerJobs of this schedule that are still running."""

    active_count: int = Field(default=0, ge=0)
    """How many DockerJobs are in `active` (the ACTIVE column)."""

    last_schedule_time: common.Time | None = None
    """The schedule time of the newest run started."""

    last_successful_time: common.Time | None = None
    """When the newest successful run completed."""

    next_schedule_time: common.Time | None = None
    """When the next run is due (empty while suspended or when the schedule cannot be read)."""

    conditions: list[common.Condition] = Field(
        default_factory=list,
        max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Scheduled: False with InvalidSchedule or UnknownTimeZone when the schedule cannot be followed."""


class DockerCronJob(common.ApiModel):
    """DockerJobs started on a cron schedule, like a batch/v1 CronJob."""

    api_version: Literal["dockyard.dev/v1alpha1"] = common.API_VERSION
    """APIVersion of the object."""

    kind: Literal["DockerCronJob"] = KIND
    """Kind of the object."""

    metadata: common.ObjectMeta
    """Standard object metadata."""

    spec: DockerCronJobSpec
    """Desired state."""

    status: DockerCronJobStatus = Field(default_factory=DockerCronJobStatus)
    """Observed state, written by the operator."""
