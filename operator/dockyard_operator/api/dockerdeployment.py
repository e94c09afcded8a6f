"""DockerDeployment (namespaced): replicas of a DockerContainer template, rolled out like an apps/v1 Deployment.

The replicas are DockerContainer objects the DockerDeployment owns (a controller ownerReference, as a ReplicaSet
owns Pods), so health, Secrets, drift, identity and host handling are the DockerContainer's. Field names,
defaults and rules follow apps/v1 Deployment; docs/api.md lists where and why Dockyard differs (placement across
hosts, host failure, no ReplicaSets in between).
"""

import enum
import re
from typing import Annotated, ClassVar, Final, Literal

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, field_validator

from dockyard_operator.api import common
from dockyard_operator.api.dockercontainer import DockerContainerSpec, RestartPolicy

KIND: Final = "DockerDeployment"

INT_OR_PERCENT_PATTERN: Final = r"^([0-9]+|[0-9]+%)$"
AT_MOST_ALL_PATTERN: Final = r"^([0-9]+|([0-9]|[1-9][0-9]|100)%)$"
"""A count, or a percentage of at most 100%: more than all replicas cannot be unavailable."""


def _int_or_percent_text(value: object) -> object:
    # `maxSurge: 1` and `maxSurge: "25%"` are both valid, as in Kubernetes.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _check_int_or_percent(value: str) -> str:
    if not re.fullmatch(INT_OR_PERCENT_PATTERN, value):
        raise ValueError(f"must be a non-negative integer or a percentage like 25%, not {value!r}")
    return value


def _check_at_most_all(value: str) -> str:
    _check_int_or_percent(value)
    if not re.fullmatch(AT_MOST_ALL_PATTERN, value):
        raise ValueError(f"a percentage must be at most 100%, not {value!r}")
    return value


def _int_or_percent_schema(pattern: str) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "pattern": pattern,
            "maxLength": 8,
        }
    )


IntOrPercent = Annotated[
    str,
    BeforeValidator(_int_or_percent_text),
    AfterValidator(_check_int_or_percent),
    _int_or_percent_schema(INT_OR_PERCENT_PATTERN),
]
"""An absolute number of replicas (`1`) or a percentage of the desired replicas (`"25%"`), as Kubernetes'
intstr.IntOrString. A surge may exceed 100% (Kubernetes allows it: `200%` triples the replicas mid-rollout)."""

UnavailablePercent = Annotated[
    str,
    BeforeValidator(_int_or_percent_text),
    AfterValidator(_check_at_most_all),
    _int_or_percent_schema(AT_MOST_ALL_PATTERN),
]
"""As IntOrPercent, with a percentage of at most 100% (Kubernetes refuses more for maxUnavailable)."""


def _zero(value: str) -> bool:
    return value in ("0", "0%")


class RollingUpdate(common.ApiModel):
    """How far a rolling update may go above and below the desired number of replicas."""

    cross_field_rules: ClassVar[tuple[common.CrossFieldRule, ...]] = (
        common.CrossFieldRule(
            rule="!(string(self.maxSurge) in ['0', '0%'] && string(self.maxUnavailable) in ['0', '0%'])",
            message="maxSurge and maxUnavailable may not both be zero (the rollout could never proceed)",
            check=lambda m: not (_zero(m.max_surge) and _zero(m.max_unavailable)),
        ),
    )

    max_surge: IntOrPercent = "25%"
    """Replicas that may run above the desired number during an update: a number or a percentage of the desired
    replicas, rounded up. Default 25%."""

    max_unavailable: UnavailablePercent = "25%"
    """Replicas that may be unavailable during an update: a number or a percentage of the desired replicas,
    rounded down. Default 25%. maxSurge and maxUnavailable may not both be zero."""


class StrategyType(enum.StrEnum):
    """How replicas are replaced when the template changes."""

    ROLLING_UPDATE = "RollingUpdate"
    RECREATE = "Recreate"


class DeploymentStrategy(common.ApiModel):
    """The update strategy: RollingUpdate (the default) or Recreate (all old replicas go before new ones come)."""

    cross_field_rules: ClassVar[tuple[common.CrossFieldRule, ...]] = (
        common.CrossFieldRule(
            rule="self.type == 'RollingUpdate' || !has(self.rollingUpdate)",
            message="rollingUpdate may only be set when type is RollingUpdate",
            check=lambda m: m.type is StrategyType.ROLLING_UPDATE or m.rolling_update is None,
        ),
    )

    type: StrategyType = StrategyType.ROLLING_UPDATE
    """RollingUpdate or Recreate."""

    rolling_update: RollingUpdate | None = None
    """Limits of a rolling update (unset means maxSurge 25%, maxUnavailable 25%)."""

    @property
    def effective_rolling_update(self) -> RollingUpdate:
        return self.rolling_update or RollingUpdate()


class TemplateMetadata(common.ApiModel):
    """Labels and annotations every replica gets."""

    labels: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, json_schema_extra={"maxProperties": 64}
    )
    """Labels of the replicas (DockerContainer objects); spec.selector must match them."""

    annotations: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict, json_schema_extra={"maxProperties": 64}
    )
    """Annotations of the replicas. A change of them is a change of the template (a new revision)."""


class ContainerTemplate(common.ApiModel):
    """The DockerContainer every replica is made from."""

    cross_field_rules: ClassVar[tuple[common.CrossFieldRule, ...]] = (
        common.CrossFieldRule(
            rule="!has(self.spec.restartPolicy) || self.spec.restartPolicy == 'Always'",
            message="template.spec.restartPolicy must be Always for a DockerDeployment (as for a Deployment)",
            check=lambda m: m.spec.restart_policy is RestartPolicy.ALWAYS,
        ),
    )

    metadata: TemplateMetadata = Field(default_factory=TemplateMetadata)
    """Labels and annotations of the replicas."""

    spec: DockerContainerSpec
    """The DockerContainer spec of every replica. With hostSelector the replicas are spread over the matching
    hosts (spec.spread); with hostRef they all go to that host."""


class Spread(common.ApiModel):
    """How replicas are spread over the hosts hostSelector matches."""

    max_skew: int = Field(default=1, ge=1, le=1000)
    """At most this many more replicas on one eligible host than on another. Default 1: as even as possible."""


_SELECTOR_MATCHES_TEMPLATE: Final = (
    "has(self.template.metadata) && has(self.template.metadata.labels) && "
    "(!has(self.selector.matchLabels) || self.selector.matchLabels.all(k, k in self.template.metadata.labels && "
    "self.template.metadata.labels[k] == self.selector.matchLabels[k])) && "
    "(!has(self.selector.matchExpressions) || self.selector.matchExpressions.all(e, "
    "e.operator == 'In' ? (e.key in self.template.metadata.labels && "
    "self.template.metadata.labels[e.key] in e.values) : "
    "e.operator == 'NotIn' ? (!(e.key in self.template.metadata.labels) || "
    "!(self.template.metadata.labels[e.key] in e.values)) : "
    "e.operator == 'Exists' ? e.key in self.template.metadata.labels : "
    "!(e.key in self.template.metadata.labels)))"
)


class DockerDeploymentSpec(common.ApiModel):
    """Desired state of the DockerDeployment, as apps/v1 Deployment's, plus placement across Docker hosts."""

    cross_field_rules: ClassVar[tuple[common.CrossFieldRule, ...]] = (
        common.CrossFieldRule(
            rule=_SELECTOR_MATCHES_TEMPLATE,
            message="selector does not match the template's labels",
            check=lambda m: m.selector.matches(dict(m.template.metadata.labels)),
        ),
        common.CrossFieldRule(
            rule="self.progressDeadlineSeconds > self.minReadySeconds",
            message="progressDeadlineSeconds must be greater than minReadySeconds",
            check=lambda m: m.progress_deadline_seconds > m.min_ready_seconds,
        ),
    )

    replicas: int = Field(default=1, ge=0, le=10000)
    """Desired number of replicas. Default 1. `kubectl scale` (the scale subresource) sets it."""

    selector: common.LabelSelector = Field(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "selector is immutable"},
                {
                    "rule": "(has(self.matchLabels) && size(self.matchLabels) > 0) || "
                    "(has(self.matchExpressions) && size(self.matchExpressions) > 0)",
                    "message": "selector must not be empty",
                },
            ]
        }
    )
    """Which DockerContainers are this DockerDeployment's replicas; must match template.metadata.labels.
    Required, non-empty and immutable, as for a Deployment."""

    template: ContainerTemplate
    """The replicas' metadata and DockerContainer spec. A change starts a rollout."""

    strategy: DeploymentStrategy = Field(default_factory=DeploymentStrategy, json_schema_extra={"default": {}})
    """How replicas are replaced when the template changes."""

    min_ready_seconds: int = Field(default=0, ge=0, le=86400)
    """Seconds a replica must be Ready before it counts as available. Default 0."""

    revision_history_limit: int = Field(default=10, ge=0, le=1000)
    """Old revisions (ControllerRevisions) kept for rollback. Default 10."""

    progress_deadline_seconds: int = Field(default=600, ge=1, le=86400 * 7)
    """Seconds a rollout may make no progress before Progressing turns False with reason
    ProgressDeadlineExceeded. Default 600."""

    paused: bool = False
    """A paused DockerDeployment keeps its replicas but does not roll out template changes."""

    spread: Spread = Field(default_factory=Spread, json_schema_extra={"default": {}})
    """How replicas are spread over the hosts template.spec.hostSelector matches."""

    host_failure_tolerance_seconds: int = Field(default=300, ge=0, le=86400)
    """How long a replica's host may be unreachable before the replica is replaced on another eligible host
    (default 300, as a Pod tolerates an unreachable node). The old copy is removed once its host is back."""

    @field_validator("selector")
    @classmethod
    def _non_empty(cls, value: common.LabelSelector) -> common.LabelSelector:
        if not value.match_labels and not value.match_expressions:
            raise ValueError("selector must not be empty")
        return value


class DeploymentConditionType(enum.StrEnum):
    """Condition types of a DockerDeployment (apps/v1's)."""

    AVAILABLE = "Available"
    PROGRESSING = "Progressing"
    REPLICA_FAILURE = "ReplicaFailure"


class DockerDeploymentStatus(common.ApiModel):
    """What the operator last observed about the replicas. Written only by the operator."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this status was computed from."""

    replicas: int = Field(default=0, ge=0)
    """Replicas (DockerContainers) that exist and are not being replaced, of any revision."""

    updated_replicas: int = Field(default=0, ge=0)
    """Replicas of the current template."""

    ready_replicas: int = Field(default=0, ge=0)
    """Replicas whose Ready condition is True."""

    available_replicas: int = Field(default=0, ge=0)
    """Replicas Ready for at least minReadySeconds."""

    unavailable_replicas: int = Field(default=0, ge=0)
    """Desired replicas minus available ones."""

    selector: str | None = Field(default=None, max_length=4096)
    """spec.selector as a label-selector string (for the scale subresource, HPA and KEDA)."""

    ready: str | None = Field(default=None, max_length=32)
    """ready/desired, as the READY column of `kubectl get deployments` shows it (for example 2/3)."""

    current_revision: str | None = Field(default=None, max_length=128)
    """The ControllerRevision of the replicas that were complete before the current rollout began."""

    update_revision: str | None = Field(default=None, max_length=128)
    """The ControllerRevision of the current template."""

    last_progress_time: common.Time | None = None
    """When the rollout last made progress (the start of the progress deadline)."""

    conditions: list[common.Condition] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Available, Progressing (ProgressDeadlineExceeded when stuck) and ReplicaFailure."""


class DockerDeployment(common.ApiModel):
    """Replicas of a DockerContainer template with health-gated rolling updates and rollback."""

    api_version: Literal["dockyard.dev/v1alpha1"] = common.API_VERSION
    """APIVersion of the object."""

    kind: Literal["DockerDeployment"] = KIND
    """Kind of the object."""

    metadata: common.ObjectMeta
    """Standard object metadata."""

    spec: DockerDeploymentSpec
    """Desired state."""

    status: DockerDeploymentStatus = Field(default_factory=DockerDeploymentStatus)
    """Observed state, written by the operator."""


def selector_string(selector: common.LabelSelector) -> str:
    """The label-selector string form (`a=b,c in (d,e)`) that `kubectl get -l` and the scale subresource use."""
    parts = [f"{k}={v}" for k, v in sorted(selector.match_labels.items())]
    for req in selector.match_expressions:
        op = req.operator.value
        if op == "In":
            parts.append(f"{req.key} in ({','.join(sorted(req.values))})")
        elif op == "NotIn":
            parts.append(f"{req.key} notin ({','.join(sorted(req.values))})")
        elif op == "Exists":
            parts.append(req.key)
        else:
            parts.append(f"!{req.key}")
    return ",".join(parts)
