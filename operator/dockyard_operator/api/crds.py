"""The CustomResourceDefinitions of dockyard.dev, built from the models (hack/gen-crds writes them to manifests/crds/).

Everything about a kind that is not its schema lives here: names, scope, printer columns. The schemas come from
:mod:`dockyard_operator.api.schemas`; nothing in a CRD is written by hand.
"""

from dataclasses import dataclass
from typing import Any, Final

import yaml
from pydantic import BaseModel

from dockyard_operator.api import (
    common,
    dockercontainer,
    dockercronjob,
    dockerdeployment,
    dockerhost,
    dockerjob,
    dockerservice,
    schemas,
)

CATEGORY: Final = "dockyard"


@dataclass(frozen=True, slots=True)
class PrinterColumn:
    """One column of `kubectl get`; priority 1 shows only with -o wide."""

    name: str
    type: str
    json_path: str
    description: str
    priority: int = 0

    def to_crd(self) -> dict[str, Any]:
        column: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        if self.priority:
            column["priority"] = self.priority
        return column


@dataclass(frozen=True, slots=True)
class KindInfo:
    """What a CRD needs to know about a kind besides its spec and status models."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    namespaced: bool
    description: str
    spec: type[BaseModel]
    status: type[BaseModel]
    spec_required: bool
    columns: tuple[PrinterColumn, ...]
    scale: tuple[str, str, str] | None = None
    """The scale subresource: (specReplicasPath, statusReplicasPath, labelSelectorPath)."""
    max_name_length: int | None = None
    """A limit on metadata.name below the 253 of a DNS subdomain, with the reason (CEL at the root)."""
    name_reason: str = ""
    name_pattern: str | None = None
    """A pattern metadata.name must match (CEL at the root; the reason is name_reason)."""


def _condition_status(condition_type: str) -> str:
    return f'.status.conditions[?(@.type=="{condition_type}")].status'


_AGE: Final = PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since the object was created.")

DOCKER_CONTAINER: Final = KindInfo(
    kind=dockercontainer.KIND,
    plural="dockercontainers",
    short_names=("dc",),
    namespaced=True,
    description=(
        "A Docker container on a DockerHost, kept in the state its spec describes: created, started, restarted "
        "per restartPolicy, recreated when it drifts from the spec (driftPolicy), removed when deleted."
    ),
    spec=dockercontainer.DockerContainerSpec,
    status=dockercontainer.DockerContainerStatus,
    spec_required=True,
    columns=(
        PrinterColumn("Host", "string", ".status.host", "The DockerHost the container runs on."),
        PrinterColumn("Image", "string", ".spec.image", "The image reference."),
        PrinterColumn("Status", "string", ".status.reason", "Where the container is and why, in one word."),
        PrinterColumn("Ready", "string", _condition_status("Ready"), "Whether the container is ready."),
        PrinterColumn("Restarts", "integer", ".status.restartCount", "Restarts and recreations."),
        _AGE,
        PrinterColumn("State", "string", ".status.state", "Docker's state of the container.", priority=1),
        PrinterColumn("Health", "string", ".status.health", "Docker's health status.", priority=1),
        PrinterColumn("IP", "string", ".status.ip", "The container's IP address.", priority=1),
        PrinterColumn("Drift", "string", ".status.drift.fields", "Spec fields that differ.", priority=1),
    ),
)

DOCKER_HOST: Final = KindInfo(
    kind=dockerhost.KIND,
    plural="dockerhosts",
    short_names=("dh",),
    namespaced=False,
    description=(
        "A Docker daemon Dockyard may place DockerContainers on, reached through the Dockyard tunnel (the agent "
        "dials in) or directly. Cluster-scoped: creating one grants access to a Docker daemon."
    ),
    spec=dockerhost.DockerHostSpec,
    status=dockerhost.DockerHostStatus,
    spec_required=False,
    columns=(
        PrinterColumn("Phase", "string", ".status.phase", "Connected or Disconnected."),
        PrinterColumn("Agent", "string", ".status.agentVersion", "Version of the Dockyard agent."),
        PrinterColumn("Docker", "string", ".status.dockerVersion", "Version of the Docker Engine."),
        PrinterColumn("Containers", "integer", ".status.containers", "Containers Dockyard manages here."),
        _AGE,
        PrinterColumn("OS", "string", ".status.operatingSystem", "Operating system.", priority=1),
        PrinterColumn("Arch", "string", ".status.architecture", "CPU architecture.", priority=1),
        PrinterColumn("URL", "string", ".spec.url", "Direct address of the daemon (unset: tunnel).", priority=1),
        PrinterColumn("Class", "string", ".spec.operatorClass", "The operator class that manages it.", priority=1),
    ),
)

DOCKER_DEPLOYMENT: Final = KindInfo(
    kind=dockerdeployment.KIND,
    plural="dockerdeployments",
    short_names=("ddeploy",),
    namespaced=True,
    description=(
        "Replicas of a DockerContainer template, spread over Docker hosts, with health-gated rolling updates, "
        "revisions and rollback, like an apps/v1 Deployment. The replicas are DockerContainers it owns."
    ),
    spec=dockerdeployment.DockerDeploymentSpec,
    status=dockerdeployment.DockerDeploymentStatus,
    spec_required=True,
    columns=(
        PrinterColumn("Ready", "string", ".status.ready", "Ready replicas of the desired number."),
        PrinterColumn("Up-to-date", "integer", ".status.updatedReplicas", "Replicas of the current template."),
        PrinterColumn("Available", "integer", ".status.availableReplicas", "Replicas available to serve."),
        _AGE,
        PrinterColumn("Image", "string", ".spec.template.spec.image", "The template's image.", priority=1),
        PrinterColumn("Selector", "string", ".status.selector", "The label selector of the replicas.", priority=1),
    ),
    scale=(".spec.replicas", ".status.replicas", ".status.selector"),
    max_name_length=63,
    name_reason="its ControllerRevisions carry it as a label value",
)

DOCKER_JOB: Final = KindInfo(
    kind=dockerjob.KIND,
    plural="dockerjobs",
    short_names=("dj",),
    namespaced=True,
    description=(
        "A DockerContainer template run to completion on Docker hosts, with retries after a growing back-off, a "
        "deadline, parallelism and a TTL, like a batch/v1 Job. The attempts are DockerContainers it owns."
    ),
    spec=dockerjob.DockerJobSpec,
    status=dockerjob.DockerJobStatus,
    spec_required=True,
    columns=(
        PrinterColumn("Status", "string", ".status.phase", "Running, Complete, Failed or Suspended."),
        PrinterColumn("Completions", "string", ".status.completions", "Successful attempts of those needed."),
        PrinterColumn("Duration", "string", ".status.duration", "How long it ran, once finished."),
        _AGE,
        PrinterColumn("Image", "string", ".spec.template.spec.image", "The template's image.", priority=1),
        PrinterColumn("Failed", "integer", ".status.failed", "Failures counted toward backoffLimit.", priority=1),
    ),
    max_name_length=63,
    name_reason="its attempts carry it as the label dockyard.dev/job-name",
)

DOCKER_CRONJOB: Final = KindInfo(
    kind=dockercronjob.KIND,
    plural="dockercronjobs",
    short_names=("dcj",),
    namespaced=True,
    description=(
        "DockerJobs started on a cron schedule in a time zone, with a concurrency policy, a starting deadline and "
        "history limits, like a batch/v1 CronJob."
    ),
    spec=dockercronjob.DockerCronJobSpec,
    status=dockercronjob.DockerCronJobStatus,
    spec_required=True,
    columns=(
        PrinterColumn("Schedule", "string", ".spec.schedule", "The cron schedule."),
        PrinterColumn("Timezone", "string", ".spec.timeZone", "The time zone it is read in (empty: UTC)."),
        PrinterColumn("Suspend", "boolean", ".spec.suspend", "Whether new runs are held back."),
        PrinterColumn("Active", "integer", ".status.activeCount", "Runs still going."),
        PrinterColumn("Last Schedule", "date", ".status.lastScheduleTime", "The newest run's schedule time."),
        _AGE,
        PrinterColumn("Next", "string", ".status.nextScheduleTime", "When the next run is due (UTC).", priority=1),
    ),
    max_name_length=52,
    name_reason="a run is a DockerJob named <name>-<minutes since the epoch>, 11 more (as for a CronJob)",
)

DOCKER_SERVICE: Final = KindInfo(
    kind=dockerservice.KIND,
    plural="dockerservices",
    short_names=("dsvc",),
    namespaced=True,
    description=(
        "DockerContainers on any Docker host behind a Kubernetes Service of the same name: the operator's data "
        "plane takes each connection through the tunnel to a Ready container the selector picks."
    ),
    spec=dockerservice.DockerServiceSpec,
    status=dockerservice.DockerServiceStatus,
    spec_required=True,
    columns=(
        PrinterColumn("Type", "string", ".spec.service.type", "The type of the Kubernetes Service."),
        PrinterColumn("Cluster-IP", "string", ".status.clusterIP", "The Service's ClusterIP."),
        PrinterColumn("Ports", "string", ".status.ports", "The Service's ports."),
        PrinterColumn("Ready", "string", ".status.ready", "Ready backends of those selected."),
        _AGE,
    ),
    max_name_length=63,
    name_reason="it names a Kubernetes Service, whose name is a DNS-1035 label",
    name_pattern=dockerservice.NAME_PATTERN,
)

KINDS: Final = (DOCKER_CONTAINER, DOCKER_HOST, DOCKER_DEPLOYMENT, DOCKER_JOB, DOCKER_CRONJOB, DOCKER_SERVICE)


def build_crd(info: KindInfo) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind, as a plain dict ready for YAML."""
    spec_schema = schemas.structural_schema(info.spec)
    if not info.spec_required:
        spec_schema["default"] = {}
    status_schema = schemas.structural_schema(info.status)
    root: dict[str, Any] = {
        "type": "object",
        "description": info.description,
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "APIVersion defines the versioned schema of this representation of an object.",
            },
            "kind": {"type": "string", "description": "Kind is a string value representing the REST resource."},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    if info.spec_required:
        root["required"] = ["spec"]
    if info.max_name_length is not None:
        root["x-kubernetes-validations"] = [
            {
                "rule": f"size(self.metadata.name) <= {info.max_name_length}",
                "message": f"metadata.name may be at most {info.max_name_length} characters: {info.name_reason}",
            }
        ]
    if info.name_pattern is not None:
        root.setdefault("x-kubernetes-validations", []).append(
            {
                "rule": f"self.metadata.name.matches('{info.name_pattern}')",
                "message": f"metadata.name must match {info.name_pattern}: {info.name_reason}",
            }
        )
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{info.plural}.{common.GROUP}"},
        "spec": {
            "group": common.GROUP,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.kind.lower(),
                "shortNames": list(info.short_names),
                "categories": [CATEGORY],
            },
            "scope": "Namespaced" if info.namespaced else "Cluster",
            "versions": [
                {
                    "name": common.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": _subresources(info),
                    "additionalPrinterColumns": [c.to_crd() for c in info.columns],
                }
            ],
        },
    }


def _subresources(info: KindInfo) -> dict[str, Any]:
    subresources: dict[str, Any] = {"status": {}}
    if info.scale is not None:
        spec_path, status_path, selector_path = info.scale
        subresources["scale"] = {
            "specReplicasPath": spec_path,
            "statusReplicasPath": status_path,
            "labelSelectorPath": selector_path,
        }
    return subresources


def crd_file_name(info: KindInfo) -> str:
    """File name under manifests/crds/ (group and plural, as controller-gen names them)."""
    return f"{common.GROUP}_{info.plural}.yaml"


_HEADER: Final = (
    "# Generated by hack/gen-crds from dockyard_operator.api. Do not edit: change the models and regenerate.\n"
)


def render_files() -> dict[str, str]:
    """Every file of manifests/crds/, by name: one YAML per CRD and the kustomization listing them."""
    files = {
        crd_file_name(info): _HEADER + yaml.safe_dump(build_crd(info), sort_keys=False, width=10_000) for info in KINDS
    }
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(files),
    }
    files["kustomization.yaml"] = _HEADER + yaml.safe_dump(kustomization, sort_keys=False)
    return files
