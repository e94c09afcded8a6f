"""DockerJob (namespaced): run a DockerContainer template to completion, with batch/v1 Job semantics.

A DockerJob runs its attempts as DockerContainer objects it owns (a controller ownerReference and the label
`dockyard.dev/job-name`), as a Job owns Pods: every attempt, its Docker container and its exit code stay
inspectable, and everything a DockerContainer does (Secrets, volumes, scheduling, host handling) is reused.
Field names, defaults and meanings are batch/v1 Job's, so `backoffLimit` means what Kubernetes users know;
docs/api.md lists where Dockyard differs (failurePolicy covers exit codes only).
"""

import enum
from typing import Annotated, ClassVar, Final, Literal

from pydantic import Field, field_validator

from dockyard_operator.api import common
from dockyard_operator.api.dockercontainer import DockerContainerSpec, RestartPolicy

KIND: Final = "DockerJob"

JOB_NAME_LABEL: Final = "dockyard.dev/job-name"
"""On every attempt: the name of its DockerJob (`kubectl get dc -l dockyard.dev/job-name=NAME`)."""

CONTROLLER_UID_LABEL: Final = "dockyard.dev/controller-uid"
"""On every attempt: the UID of its DockerJob (a name can be reused; a UID cannot)."""


class JobContainerSpec(DockerContainerSpec):
    """The DockerContainer spec of every attempt: a DockerContainer spec whose restartPolicy is Never (the default)
    or OnFailure."""

    restart_policy: RestartPolicy = Field(
        default=RestartPolicy.NEVER, json_schema_extra={"enum": ["Never", "OnFailure"]}
    )
    """Never (the default): a failed attempt stays as it is and a new attempt replaces it after the back-off.
    OnFailure: the attempt's container is restarted in place; each restart counts as a failure. Always is refused
    (an attempt must be able to finish)."""

    @field_validator("restart_policy")
    @classmethod
    def _can_finish(cls, value: RestartPolicy) -> RestartPolicy:
        if value is RestartPolicy.ALWAYS:
            raise ValueError("a DockerJob's restartPolicy must be Never or OnFailure")
        return value


class JobTemplateMetadata(common.ApiModel):
    """Labels and annotations every attempt gets."""

    labels: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, json_schema_extra={"maxProperties": 64}
    )
    """Labels of the attempts (DockerContainer objects), besides dockyard.dev/job-name and
    dockyard.dev/controller-uid."""

    annotations: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict, json_schema_extra={"maxProperties": 64}
    )
    """Annotations of the attempts."""


class JobTemplate(common.ApiModel):
    """The DockerContainer every attempt is made from."""

    metadata: JobTemplateMetadata = Field(default_factory=JobTemplateMetadata)
    """Labels and annotations of the attempts."""

    spec: JobContainerSpec
    """The DockerContainer spec of every attempt. With hostSelector, attempts may run on different hosts."""


class ExitCodeOperator(enum.StrEnum):
    """How an attempt's exit code relates to a rule's values."""

    IN = "In"
    NOT_IN = "NotIn"


class OnExitCodes(common.ApiModel):
    """Which exit codes a failure policy rule matches."""

    cross_field_rules: ClassVar[tuple[common.CrossFieldRule, ...]] = (
        common.CrossFieldRule(
            rule="self.operator != 'In' || !self.values.exists(v, v == 0)",
            message="0 is success and never a failure: it may not be in the values of an In rule",
            check=lambda m: m.operator is not ExitCodeOperator.IN or 0 not in m.values,
        ),
    )

    operator: ExitCodeOperator
    """In: the exit code is one of the values. NotIn: it is none of them."""

    values: list[Annotated[int, Field(ge=0, le=255)]] = Field(
        min_length=1, max_length=255, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Exit codes (0-255), each at most once."""

    @field_validator("values")
    @classmethod
    def _each_once(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("each exit code may appear only once")
        return value


class FailurePolicyAction(enum.StrEnum):
    """What a failure matching a rule does."""

    FAIL_JOB = "FailJob"
    IGNORE = "Ignore"
    COUNT = "Count"


class FailurePolicyRule(common.ApiModel):
    """One rule: a failed attempt whose exit code matches gets this action (the first matching rule wins)."""

    action: FailurePolicyAction
    """FailJob: the DockerJob fails at once (reason FailurePolicy), its running attempts are stopped. Ignore: the
    failure does not count toward backoffLimit and the attempt is replaced. Count: counted as usual."""

    on_exit_codes: OnExitCodes
    """The exit codes the rule matches."""


class FailurePolicy(common.ApiModel):
    """How failed attempts are judged, by exit code (batch/v1's podFailurePolicy, for exit codes)."""

    rules: list[FailurePolicyRule] = Field(min_length=1, max_length=20)
    """Rules, tried in order; a failure no rule matches is counted toward backoffLimit."""


class DockerJobSpec(common.ApiModel):
    """Desired state of the DockerJob, as batch/v1 Job's."""

    cross_field_rules: ClassVar[tuple[common.CrossFieldRule, ...]] = (
        common.CrossFieldRule(
            rule="!has(self.failurePolicy) || self.template.spec.restartPolicy == 'Never'",
            message="failurePolicy needs template.spec.restartPolicy Never (an attempt restarted in place has no "
            "final exit code to judge)",
            check=lambda m: m.failure_policy is None or m.template.spec.restart_policy is RestartPolicy.NEVER,
        ),
    )

    template: JobTemplate = Field(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "template is immutable; create a new DockerJob to change it"}
            ]
        }
    )
    """The attempts' metadata and DockerContainer spec. Immutable, as a Job's."""

    completions: int = Field(
        default=1,
        ge=1,
        le=10000,
        json_schema_extra={"x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "completions is "
                                                         "immutable"}]},
    )  # fmt: skip
    """Successful attempts needed for the DockerJob to be Complete. Default 1. Immutable."""

    parallelism: int = Field(default=1, ge=0, le=1000)
    """Attempts that may run at once (never more than the completions still missing). Default 1; 0 runs none."""

    backoff_limit: int = Field(default=6, ge=0, le=10000)
    """Failed attempts tolerated: the DockerJob fails (reason BackoffLimitExceeded) when more than this many
    failed. Default 6. A new attempt after a failure waits 10 s, doubled per failure up to 6 min."""

    active_deadline_seconds: int | None = Field(default=None, ge=1, le=86400 * 365)
    """Seconds from status.startTime the DockerJob may run, across all attempts; then running attempts are
    stopped and it fails with reason DeadlineExceeded."""

    ttl_seconds_after_finished: int | None = Field(default=None, ge=0, le=86400 * 365)
    """Seconds after it is Complete or Failed that the DockerJob is deleted, and with it its attempts and their
    Docker containers. Unset: kept until deleted by hand."""

    suspend: bool = False
    """A suspended DockerJob stops its running attempts and starts none; resuming starts the clock of
    activeDeadlineSeconds again."""

    failure_policy: FailurePolicy | None = None
    """Rules by exit code that fail the DockerJob at once, or ignore a failure (restartPolicy Never only)."""


class JobConditionType(enum.StrEnum):
    """Condition types of a DockerJob (batch/v1's)."""

    COMPLETE = "Complete"
    FAILED = "Failed"
    SUSPENDED = "Suspended"


class JobPhase(enum.StrEnum):
    """One word for the STATUS column, as `kubectl get jobs` shows it."""

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETE = "Complete"
    FAILED = "Failed"
    SUSPENDED = "Suspended"


class JobReason(enum.StrEnum):
    """Reasons on conditions and Events, batch/v1's words."""

    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    FAILURE_POLICY = "FailurePolicy"
    COMPLETIONS_REACHED = "CompletionsReached"
    JOB_SUSPENDED = "JobSuspended"
    JOB_RESUMED = "JobResumed"


class DockerJobStatus(common.ApiModel):
    """What the operator last observed about the attempts. Written only by the operator."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this status was computed from."""

    phase: JobPhase | None = None
    """Pending, Running, Complete, Failed or Suspended (the STATUS column)."""

    active: int = Field(default=0, ge=0)
    """Attempts not yet finished (created, running, or on a host that cannot be reached)."""

    ready: int = Field(default=0, ge=0)
    """Active attempts whose Ready condition is True."""

    succeeded: int = Field(default=0, ge=0)
    """Attempts that exited 0."""

    failed: int = Field(default=0, ge=0)
    """Failed attempts counted toward backoffLimit (not those a failurePolicy Ignore rule matched). Restarts of
    OnFailure attempts are not counted here; backoffLimit applies to them too, as in Kubernetes."""

    completions: str | None = Field(default=None, max_length=32)
    """succeeded/completions, as the COMPLETIONS column of `kubectl get jobs` shows it (for example 1/3)."""

    start_time: common.Time | None = None
    """When the DockerJob started (again, after a resume): the start of activeDeadlineSeconds."""

    completion_time: common.Time | None = None
    """When it became Complete."""

    finish_time: common.Time | None = None
    """When it became Complete or Failed (the start of ttlSecondsAfterFinished)."""

    duration: str | None = Field(default=None, max_length=32)
    """How long it ran, from startTime to its end (for example 2m5s), once finished."""

    last_failure_time: common.Time | None = None
    """When the operator saw the newest failed attempt (the start of the back-off before the next attempt; the
    operator's clock, not the Docker host's, which may be off)."""

    last_failed_attempt: str | None = Field(default=None, max_length=253)
    """The newest failed attempt: a different one is a new failure, and restarts the back-off."""

    conditions: list[common.Condition] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Complete, Failed (BackoffLimitExceeded, DeadlineExceeded or FailurePolicy, with the last lines of the
    failed attempt's output) and Suspended."""


class DockerJob(common.ApiModel):
    """A DockerContainer template run to completion, with retries, a deadline and a TTL, like a batch/v1 Job."""

    api_version: Literal["dockyard.dev/v1alpha1"] = common.API_VERSION
    """APIVersion of the object."""

    kind: Literal["DockerJob"] = KIND
    """Kind of the object."""

    metadata: common.ObjectMeta
    """Standard object metadata."""

    spec: DockerJobSpec
    """Desired state."""

    status: DockerJobStatus = Field(default_factory=DockerJobStatus)
    """Observed state, written by the operator."""
