"""Building blocks shared by the Dockyard kinds: the model base class, cross-field rules, conditions, references,
label selectors, object metadata and quantity types.

Every model is the single source of truth twice: pydantic validates objects the operator reads, and
:mod:`dockyard_operator.api.schemas` turns the same models into the CRDs' OpenAPI schemas. A cross-field rule is
written once (:class:`CrossFieldRule`) and becomes both a pydantic check and a CEL ``x-kubernetes-validations``
entry, so the API server and the operator can never disagree about what is valid.
"""

import datetime
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

from dockyard_operator.api import quantities

GROUP: Final = "dockyard.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = "dockyard.dev/v1alpha1"  # GROUP/VERSION, spelled out for Literal types

# Label keys under this prefix are written by the operator (identity, spec hash); users may not set them.
RESERVED_LABEL_PREFIX: Final = "dockyard.dev/"

# The operator class that DockerHosts and namespaces belong to unless they say otherwise (IngressClass-like).
DEFAULT_OPERATOR_CLASS: Final = "dockyard"

# Kubernetes name rules, as the API server applies them to metadata.name.
DNS_SUBDOMAIN_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Secret and ConfigMap data keys.
CONFIG_KEY_PATTERN: Final = r"^[-._a-zA-Z0-9]+$"
# metav1.Condition's rules for type and reason.
CONDITION_TYPE_PATTERN: Final = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN: Final = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


@dataclass(frozen=True, slots=True)
class CrossFieldRule:
    """A rule over several fields of one object, enforced by the API server (CEL) and by pydantic (``check``).

    ``rule`` and ``message`` go verbatim into ``x-kubernetes-validations``; ``check`` receives the model and
    returns True when the object is valid. Both must say the same thing: tests apply the CRDs to a real API server
    and feed the same objects to the models.
    """

    rule: str
    message: str
    check: Callable[[Any], bool]


def _json_name(attribute: str) -> str:
    # A trailing underscore dodges a Python keyword (exec_ -> "exec"); the JSON name has none.
    return to_camel(attribute.rstrip("_"))


def exactly_one_of(*attributes: str) -> CrossFieldRule:
    """Exactly one of the (optional) fields must be set."""
    names = [_json_name(a) for a in attributes]
    has = " + ".join(f"(has(self.{n}) ? 1 : 0)" for n in names)
    return CrossFieldRule(
        rule=f"{has} == 1",
        message=f"exactly one of {', '.join(names)} must be set",
        check=lambda m: sum(getattr(m, a) is not None for a in attributes) == 1,
    )


def at_most_one_of(*attributes: str) -> CrossFieldRule:
    """At most one of the (optional) fields may be set."""
    names = [_json_name(a) for a in attributes]
    has = " + ".join(f"(has(self.{n}) ? 1 : 0)" for n in names)
    return CrossFieldRule(
        rule=f"{has} <= 1",
        message=f"at most one of {', '.join(names)} may be set",
        check=lambda m: sum(getattr(m, a) is not None for a in attributes) <= 1,
    )


def _add_cross_field_rules(schema: dict[str, Any], model: type[Any]) -> None:
    rules: tuple[CrossFieldRule, ...] = getattr(model, "cross_field_rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [{"rule": r.rule, "message": r.message} for r in rules]


class ApiModel(BaseModel):
    """Base of every Dockyard API model: camelCase JSON names, unknown fields refused, immutable.

    Unknown fields are refused (not ignored) because the API server already prunes fields the CRD does not know:
    an unknown field reaching the operator means the CRD is newer than the operator, and acting on half an
    object would be wrong. Field docstrings become the schema descriptions that ``kubectl explain`` prints.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        json_schema_extra=_add_cross_field_rules,
    )

    cross_field_rules: ClassVar[tuple[CrossFieldRule, ...]] = ()

    @model_validator(mode="after")
    def _check_cross_field_rules(self) -> "ApiModel":
        for rule in self.cross_field_rules:
            if not rule.check(self):
                raise ValueError(rule.message)
        return self


def cel(rule: str, message: str) -> dict[str, Any]:
    """A field-level CEL rule, for ``Field(json_schema_extra=cel(...))``."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": message}]}


# --- Times ---------------------------------------------------------------------------------------------------


def _metav1_time(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return value.astimezone(datetime.UTC).replace(microsecond=0)


Time = Annotated[datetime.datetime, AfterValidator(_metav1_time)]
"""A point in time as metav1.Time stores it: UTC, whole seconds. Normalizing on the way in means a status built
now compares equal to the same status read back from the API server, so "patch only when changed" holds."""


# --- Quantities ------------------------------------------------------------------------------------------------


def _quantity_to_text(value: object) -> object:
    # YAML users write `cpu: 2`; Kubernetes accepts that as a quantity, and so do we (int-or-string).
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _check_cpu(text: str) -> str:
    quantities.cpu_to_nanocpus(text)
    return text


def _check_memory(text: str) -> str:
    quantities.memory_to_bytes(text)
    return text


_QUANTITY_SCHEMA: Final[dict[str, Any]] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
    "pattern": quantities.QUANTITY_PATTERN,
    "maxLength": quantities.QUANTITY_MAX_LENGTH,
    # Docker reads a zero limit as "unlimited": refuse it at admission, as the parser does. isQuantity first, so
    # text that fails the pattern gets the pattern's message and not an evaluation error.
    "x-kubernetes-validations": [
        {
            "rule": "!isQuantity(string(self)) || quantity(string(self)).isGreaterThan(quantity('0'))",
            "message": "must be greater than zero (omit the limit for no limit)",
        }
    ],
}

CpuQuantity = Annotated[
    str,
    BeforeValidator(_quantity_to_text),
    AfterValidator(_check_cpu),
    WithJsonSchema(_QUANTITY_SCHEMA),
]
"""A CPU quantity: "500m" (half a CPU), "2", "0.5". Kept as text (what the user wrote); convert with
:func:`dockyard_operator.api.quantities.cpu_to_nanocpus`."""

MemoryQuantity = Annotated[
    str,
    BeforeValidator(_quantity_to_text),
    AfterValidator(_check_memory),
    WithJsonSchema(_QUANTITY_SCHEMA),
]
"""A memory quantity: "256Mi", "1G", "128974848". Convert with
:func:`dockyard_operator.api.quantities.memory_to_bytes`."""


# --- References ------------------------------------------------------------------------------------------------


class LocalObjectReference(ApiModel):
    """A reference to an object by name, in the same namespace as the referring object."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    """Name of the referenced object."""


class SecretReference(ApiModel):
    """A reference to a Secret by namespace and name (used by cluster-scoped objects)."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    """Name of the Secret."""

    namespace: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)
    """Namespace of the Secret."""


# --- Label selectors -------------------------------------------------------------------------------------------


class SelectorOperator(enum.StrEnum):
    """How a label selector requirement relates a label's value to its values."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(ApiModel):
    """One requirement of a label selector: a key, an operator and (for In and NotIn) values."""

    cross_field_rules: ClassVar[tuple[CrossFieldRule, ...]] = (
        CrossFieldRule(
            rule="self.operator in ['In', 'NotIn'] ? size(self.values) > 0 : size(self.values) == 0",
            message="values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist",
            check=lambda m: (len(m.values) > 0) == (m.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN)),
        ),
    )

    key: str = Field(min_length=1, max_length=317)
    """The label key the requirement applies to."""

    operator: SelectorOperator
    """In, NotIn, Exists or DoesNotExist."""

    values: list[Annotated[str, Field(max_length=63)]] = Field(default_factory=list, max_length=64)
    """Values for In and NotIn (at least one); must be empty for Exists and DoesNotExist."""


class LabelSelector(ApiModel):
    """A label query, as in Kubernetes: all of matchLabels and all of matchExpressions must match.

    An empty selector ({}) matches everything.
    """

    match_labels: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, json_schema_extra={"maxProperties": 64}
    )
    """Labels that must all be present with exactly these values."""

    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list, max_length=64)
    """Requirements that must all hold."""

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether an object with these labels is selected."""
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator is SelectorOperator.IN and not (present and labels[req.key] in req.values):
                return False
            if req.operator is SelectorOperator.NOT_IN and present and labels[req.key] in req.values:
                return False
            if req.operator is SelectorOperator.EXISTS and not present:
                return False
            if req.operator is SelectorOperator.DOES_NOT_EXIST and present:
                return False
        return True


# --- Conditions ------------------------------------------------------------------------------------------------


class ConditionStatus(enum.StrEnum):
    """The status of a condition."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """One aspect of an object's current state, as a Kubernetes condition (metav1.Condition)."""

    type: str = Field(max_length=316, pattern=CONDITION_TYPE_PATTERN)
    """Type of the condition, in CamelCase (for example Ready)."""

    status: ConditionStatus
    """True, False or Unknown."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation the condition was computed from."""

    last_transition_time: Time
    """When the condition last changed status."""

    reason: str = Field(min_length=1, max_length=1024, pattern=CONDITION_REASON_PATTERN)
    """A CamelCase word saying why the condition is in its status, for machines (for example ImagePulled)."""

    message: str = Field(default="", max_length=32768)
    """A human-readable explanation of the condition."""


# --- Metadata --------------------------------------------------------------------------------------------------


class OwnerReference(BaseModel):
    """metav1.OwnerReference, as the operator reads it."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool = False
    block_owner_deletion: bool = False


class ObjectMeta(BaseModel):
    """The part of Kubernetes object metadata the operator reads. Other metadata fields are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    finalizers: list[str] = Field(default_factory=list)
    owner_references: list[OwnerReference] = Field(default_factory=list)
    creation_timestamp: datetime.datetime | None = None
    deletion_timestamp: datetime.datetime | None = None

    @property
    def key(self) -> str:
        """`namespace/name`, or `name` for a cluster-scoped object (the work queue's key)."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def controller_ref(self) -> OwnerReference | None:
        """The owner reference with controller=true, if any (at most one exists)."""
        return next((o for o in self.owner_references if o.controller), None)
