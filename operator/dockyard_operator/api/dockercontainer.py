"""DockerContainer (namespaced): one Docker container on a DockerHost, shaped like a Kubernetes container.

Field names and meanings follow the Kubernetes Container API wherever Docker has the same concept (image,
imagePullPolicy, command/args, env/envFrom, ports, resources.limits), so users feel at home; docs/api.md lists every
place we differ and why.
"""

import enum
import ipaddress
from typing import Annotated, ClassVar, Final, Literal

from pydantic import Field, field_validator

from dockyard_operator.api import common

KIND: Final = "DockerContainer"

IMAGE_PATTERN: Final = r"^[^\s]+$"
ABSOLUTE_PATH_PATTERN: Final = r"^/.*$"
# Relative, "/"-separated, no empty segment and no ".." segment (RE2 has no look-ahead, hence the spelling out).
_SEGMENT: Final = r"([^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+|\.)"
RELATIVE_PATH_PATTERN: Final = rf"^{_SEGMENT}(/{_SEGMENT})*$"
ENV_NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
PORT_NAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DOCKER_VOLUME_NAME_PATTERN: Final = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"
MAX_MODE: Final = 0o777


# --- Images ----------------------------------------------------------------------------------------------------


class PullPolicy(enum.StrEnum):
    """When to pull the image."""

    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


def default_pull_policy(image: str) -> PullPolicy:
    """Kubernetes' rule: Always for an image without a tag or with :latest, else IfNotPresent.

    A digest (image@sha256:...) pins the content, so it is IfNotPresent even without a tag.
    """
    if "@" in image:
        return PullPolicy.IF_NOT_PRESENT
    last_component = image.rsplit("/", 1)[-1]
    if ":" not in last_component:
        return PullPolicy.ALWAYS
    return PullPolicy.ALWAYS if last_component.rsplit(":", 1)[1] == "latest" else PullPolicy.IF_NOT_PRESENT


# --- Environment -----------------------------------------------------------------------------------------------


class SecretKeySelector(common.ApiModel):
    """One key of a Secret in the DockerContainer's namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=common.DNS_SUBDOMAIN_PATTERN)
    """Name of the Secret."""

    key: str = Field(min_length=1, max_length=253, pattern=common.CONFIG_KEY_PATTERN)
    """Key within the Secret's data."""

    optional: bool = False
    """If true, a missing Secret or key leaves the variable unset instead of failing the container."""


class ConfigMapKeySelector(common.ApiModel):
    """One key of a ConfigMap in the DockerContainer's namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=common.DNS_SUBDOMAIN_PATTERN)
    """Name of the ConfigMap."""

    key: str = Field(min_length=1, max_length=253, pattern=common.CONFIG_KEY_PATTERN)
    """Key within the ConfigMap's data."""

    optional: bool = False
    """If true, a missing ConfigMap or key leaves the variable unset instead of failing the container."""


class EnvVarSource(common.ApiModel):
    """Where an environment variable's value comes from. Exactly one of secretKeyRef and configMapKeyRef."""

    cross_field_rules: ClassVar[tuple[common.CrossFieldRule, ...]] = (
        common.exactly_one_of("secret_key_ref", "config_map_key_ref"),
    )

    secret_key_ref: SecretKeySelector | None = None
    """Take the value from a key of a Secret. Rotating the Secret recreates the container."""

    config_map_key_ref: ConfigMapKeySelector | None = None
    """Take the value from a key of a ConfigMap. Changing the ConfigMap recreates the container."""


class EnvVar(common.ApiModel):
    """An environment variable. Set at most one of value and valueFrom; neither means the empty string."""

    cross_field_rules: ClassVar[tuple[common.CrossFieldRule, ...]] = (common.at_most_one_of("value", "value_from"),)

    name: str = Field(min_length=1, max_length=256, pattern=ENV_NAME_PATTERN)
    """Name of the variable."""

    value: str | None = Field(default=None, max_length=32768)
    """Literal value."""

    value_from: EnvVarSource | None = None
    """Take the value from a Secret or ConfigMap key instead."""


class SecretEnvSource(common.ApiModel):
    """A Secret whose every key becomes an environment variable."""

    name: str = Field(min_length=1, max_length=253, pattern=common.DNS_SUBDOMAIN_PATTERN)
    """Name of the Secret."""

    optional: bool = False
    """If true, a missing Secret is ignored instead of failing the container."""


class ConfigMapEnvSource(common.ApiModel):
    """A ConfigMap whose every key becomes an environment variable."""

    name: str = Field(min_length=1, max_length=253, pattern=common.DNS_SUBDOMAIN_PATTERN)
    """Name of the ConfigMap."""

    optional: bool = False
    """If true, a missing ConfigMap is ignored instead of failing the container."""


class EnvFromSource(common.ApiModel):
    """A set of environment variables from all keys of a Secret or ConfigMap. Exactly one of the two."""

    cross_field_rules: ClassVar[tuple[common.CrossFieldRule, ...]] = (
        common.exactly_one_of("secret_ref", "config_map_ref"),
    )

    prefix: str | None = Field(default=None, max_length=256, pattern=ENV_NAME_PATTERN)
    """Prepended to every key to form the variable name."""

    secret_ref: SecretEnvSource | None = None
    """The Secret to read."""

    config_map_ref: ConfigMapEnvSource | None = None
    """The ConfigMap to read."""


# --- Ports -----------------------------------------------------------------------------------------------------


class Protocol(enum.StrEnum):
    """A transport protocol for a port."""

    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class ContainerPort(common.ApiModel):
    """A port the container listens on, optionally published on the Docker host."""

    cross_field_rules: ClassVar[tuple[common.CrossFieldRule, ...]] = (
        common.CrossFieldRule(
            rule="!has(self.hostIP) || has(self.hostPort)",
            message="hostIP requires hostPort",
            check=lambda m: m.host_ip is None or m.host_port is not None,
        ),
    )

    name: str | None = Field(default=None, min_length=1, max_length=15, pattern=PORT_NAME_PATTERN)
    """A name for the port (documentation only)."""

    container_port: int = Field(ge=1, le=65535)
    """Port number inside the container."""

    host_port: int | None = Field(default=None, ge=1, le=65535)
    """Publish the port on this port of the Docker host. Unset means not published."""

    host_ip: str | None = Field(
        default=None,
        alias="hostIP",
        max_length=64,
        json_schema_extra=common.cel("isIP(self)", "hostIP must be an IPv4 or IPv6 address"),
    )
    """Host address to publish on. Unset means all addresses (0.0.0.0 and ::)."""

    protocol: Protocol = Protocol.TCP
    """TCP, UDP or SCTP."""

    @field_validator("host_ip")
    @classmethod
    def _check_ip(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_address(value)
        return value


# --- Resources -------------------------------------------------------------------------------------------------


class ResourceLimits(common.ApiModel):
    """Upper bounds on what the container may use, as Kubernetes quantities."""

    cpu: common.CpuQuantity | None = None
    """CPU limit in cores: "500m" is half a core, "2" two cores (Docker --cpus). Must be greater than zero."""

    memory: common.MemoryQuantity | None = None
    """Memory limit in bytes: "256Mi", "1G", "128974848" (Docker --memory). Must be greater than zero."""


class ResourceRequirements(common.ApiModel):
    """Compute resources of the container."""

    limits: ResourceLimits | None = None
    """Limits enforced by Docker. Unset means unlimited."""


# --- Volumes ---------------------------------------------------------------------------------------------------


class KeyToPath(common.ApiModel):
    """Project one key of a Secret or ConfigMap to a file."""

    key: str = Field(min_length=1, max_length=253, pattern=common.CONFIG_KEY_PATTERN)
    """The key to project."""

    # A pattern, not CEL: splitting the path in CEL blows the API server's cost budget.
    path: str = Field(min_length=1, max_length=1024, pattern=RELATIVE_PATH_PATTERN)
    """File path relative to the mount point. Must not be absolute or contain '..'."""

    mode: int | None = Field(default=None, ge=0, le=MAX_MODE)
    """File mode bits (0 to 0777); defaults to the volume's defaultMode."""


class HostPathVolumeSource(common.ApiModel):
    """A directory or file on the Docker host, bind-mounted."""

    path: str = Field(min_length=1, max_length=1024, pattern=ABSOLUTE_PATH_PATTERN)
    """Absolute path on the Docker host."""


class DockerVolumeSource(common.ApiModel):
    """A named Docker volume, created if missing and never deleted by Dockyard."""

    name: str = Field(min_length=1, max_length=255, pattern=DOCKER_VOLUME_NAME_PATTERN)
    """Name of the Docker volume."""


class SecretVolumeSource(common.ApiModel):
    """The keys of a Secret as files."""

    secret_name: str = Field(min_length=1, max_length=253, pattern=common.DNS_SUBDOMAIN_PATTERN)
    """Name of the Secret in the DockerContainer's namespace."""

    items: list[KeyToPath] = Field(default_factory=list, max_length=64)
    """Keys to project, and their file names. Empty means every key, each as a file named like the key."""

    default_mode: int = Field(default=0o444, ge=0, le=MAX_MODE)
    """File mode bits for files without their own mode (0 to 0777). Defaults to 0444 (292)."""

    optional: bool = False
    """If true, a missing Secret gives an empty directory instead of failing the container."""


class ConfigMapVolumeSource(common.ApiModel):
    """The keys of a ConfigMap as files."""

    name: str = Field(min_length=1, max_length=253, pattern=common.DNS_SUBDOMAIN_PATTERN)
    """Name of the ConfigMap in the DockerContainer's namespace."""

    items: list[KeyToPath] = Field(default_factory=list, max_length=64)
    """Keys to project, and their file names. Empty means every key, each as a file named like the key."""

    default_mode: int = Field(default=0o444, ge=0, le=MAX_MODE)
    """File mode bits for files without their own mode (0 to 0777). Defaults to 0444 (292)."""

    optional: bool = False
    """If true, a missing ConfigMap gives an empty directory instead of failing the container."""


class Volume(common.ApiModel):
    """A volume and where it is mounted. Exactly one source: hostPath, dockerVolume, secret or configMap.

    Unlike a Pod, a DockerContainer has one container, so the mount point lives on the volume itself.
    """

    cross_field_rules: ClassVar[tuple[common.CrossFieldRule, ...]] = (
        common.exactly_one_of("host_path", "docker_volume", "secret", "config_map"),
    )

    name: str = Field(min_length=1, max_length=63, pattern=common.DNS_LABEL_PATTERN)
    """Name of the volume, unique within the DockerContainer."""

    mount_path: str = Field(min_length=1, max_length=1024, pattern=ABSOLUTE_PATH_PATTERN)
    """Absolute path inside the container where the volume is mounted."""

    read_only: bool = False
    """Mount read-only. Secret and ConfigMap volumes are always read-only."""

    host_path: HostPathVolumeSource | None = None
    """Bind-mount a path of the Docker host."""

    docker_volume: DockerVolumeSource | None = None
    """Mount a named Docker volume."""

    secret: SecretVolumeSource | None = None
    """Mount the keys of a Secret as files. Rotating the Secret recreates the container."""

    config_map: ConfigMapVolumeSource | None = None
    """Mount the keys of a ConfigMap as files. Changing the ConfigMap recreates the container."""


# --- Health ----------------------------------------------------------------------------------------------------


class ExecAction(common.ApiModel):
    """Run a command directly, without a shell (Docker's CMD form)."""

    command: list[Annotated[str, Field(max_length=4096)]] = Field(min_length=1, max_length=64)
    """The command and its arguments; exit status 0 means healthy."""


class ShellAction(common.ApiModel):
    """Run a command line with the container's /bin/sh (Docker's CMD-SHELL form)."""

    command: str = Field(min_length=1, max_length=8192)
    """The command line; exit status 0 means healthy."""


class HealthCheck(common.ApiModel):
    """A Docker HEALTHCHECK. Exactly one of exec and shell."""

    cross_field_rules: ClassVar[tuple[common.CrossFieldRule, ...]] = (
        common.exactly_one_of("exec_", "shell"),
        common.CrossFieldRule(
            rule="self.timeoutSeconds <= self.intervalSeconds",
            message="timeoutSeconds must not exceed intervalSeconds",
            check=lambda m: m.timeout_seconds <= m.interval_seconds,
        ),
    )

    exec_: ExecAction | None = Field(default=None, alias="exec")
    """Run a command without a shell."""

    shell: ShellAction | None = None
    """Run a command line with /bin/sh."""

    interval_seconds: int = Field(default=30, ge=1, le=86400)
    """Seconds between checks."""

    timeout_seconds: int = Field(default=30, ge=1, le=86400)
    """Seconds before a check counts as failed. At most intervalSeconds."""

    retries: int = Field(default=3, ge=1, le=100)
    """Consecutive failures before the container is unhealthy."""

    start_period_seconds: int = Field(default=0, ge=0, le=86400)
    """Seconds after start during which failures do not count."""

    restart_on_unhealthy: bool = False
    """Restart the container (with backoff) when it becomes unhealthy. Docker itself never does; off by default,
    as in Docker, so health is reported without surprise restarts."""


# --- The spec --------------------------------------------------------------------------------------------------


DNS_LABEL_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SERVICE_NAME_PATTERN: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
HOSTNAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class ServiceImport(common.ApiModel):
    """A Kubernetes Service the container reaches by a host name, through the tunnel (docs/services.md)."""

    service: str = Field(min_length=1, max_length=63, pattern=SERVICE_NAME_PATTERN)
    """The Service's name."""

    namespace: str | None = Field(default=None, min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)
    """The Service's namespace. Default: the DockerContainer's. Another namespace must allow this one (its
    annotation dockyard.dev/allow-imports-from lists it, or is "*")."""

    port: int = Field(ge=1, le=65535)
    """The Service's port; the container connects to alias:port."""

    alias: str | None = Field(default=None, min_length=1, max_length=253, pattern=HOSTNAME_PATTERN)
    """The host name the container uses (an /etc/hosts entry). Default: <service>.<namespace>."""

    def target_namespace(self, own: str) -> str:
        return self.namespace or own

    def host_name(self, own: str) -> str:
        return self.alias or f"{self.service}.{self.target_namespace(own)}"

    def target(self, own: str) -> str:
        """NS/NAME:PORT: how the container label, the agent's listeners and the import streams name it."""
        return f"{self.target_namespace(own)}/{self.service}:{self.port}"


def _imports_rule() -> common.CrossFieldRule:
    return common.CrossFieldRule(
        rule="self.all(i, self.filter(j, j.port == i.port).size() == 1)",
        message="each import needs a port of its own (the agent listens on that port of the container network's "
        "gateway)",
        check=lambda imports: len({i.port for i in imports}) == len(imports),
    )


_IMPORTS: Final = _imports_rule()


class RestartPolicy(enum.StrEnum):
    """When a stopped container is started again."""

    ALWAYS = "Always"
    ON_FAILURE = "OnFailure"
    NEVER = "Never"


class DriftPolicy(enum.StrEnum):
    """What to do when the running container no longer matches the spec."""

    ENFORCE = "Enforce"
    REPORT = "Report"


class DockerContainerSpec(common.ApiModel):
    """Desired state of the DockerContainer: the container, and where it runs (exactly one of hostRef and
    hostSelector)."""

    cross_field_rules: ClassVar[tuple[common.CrossFieldRule, ...]] = (
        common.exactly_one_of("host_ref", "host_selector"),
    )

    @field_validator("service_imports")
    @classmethod
    def _one_port_each(cls, value: list[ServiceImport]) -> list[ServiceImport]:
        if not _IMPORTS.check(value):
            raise ValueError(_IMPORTS.message)
        return value

    image: str = Field(min_length=1, max_length=1024, pattern=IMAGE_PATTERN)
    """Image reference, as for docker pull: name[:tag][@digest], for example nginx:1.27 or
    registry.example.com/team/app@sha256:..."""

    image_pull_policy: PullPolicy | None = None
    """Always, IfNotPresent or Never. Unset means Always for an image without a tag or tagged :latest, else
    IfNotPresent (the Kubernetes rule; the operator applies it)."""

    image_pull_secrets: list[common.LocalObjectReference] = Field(default_factory=list, max_length=16)
    """Secrets of type kubernetes.io/dockerconfigjson in this namespace, holding registry credentials."""

    command: list[Annotated[str, Field(max_length=8192)]] = Field(default_factory=list, max_length=256)
    """Entrypoint (replaces the image's ENTRYPOINT). Empty means the image's."""

    args: list[Annotated[str, Field(max_length=8192)]] = Field(default_factory=list, max_length=256)
    """Arguments to the entrypoint (replace the image's CMD). Empty means the image's."""

    working_dir: str | None = Field(default=None, max_length=4096, pattern=ABSOLUTE_PATH_PATTERN)
    """Working directory inside the container. Unset means the image's."""

    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=256,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Environment variables. Later entries see no expansion of earlier ones ($(VAR) is not interpreted)."""

    env_from: list[EnvFromSource] = Field(default_factory=list, max_length=32)
    """Environment variables from all keys of Secrets and ConfigMaps. env wins on a name clash."""

    ports: list[ContainerPort] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
        },
    )
    """Ports the container listens on, optionally published on the host."""

    resources: ResourceRequirements | None = None
    """CPU and memory limits."""

    volumes: list[Volume] = Field(
        default_factory=list,
        max_length=32,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            **common.cel(
                "self.all(v, self.filter(w, w.mountPath == v.mountPath).size() == 1)",
                "each volume needs its own mountPath",
            ),
        },
    )
    """Volumes and their mount points."""

    restart_policy: RestartPolicy = RestartPolicy.ALWAYS
    """Always, OnFailure or Never: whether an exited container is started again (with backoff)."""

    health_check: HealthCheck | None = None
    """A Docker health check. Unset means the image's HEALTHCHECK, if any."""

    # Key bounds are a CEL rule, not a key schema: structural schemas have no propertyNames.
    labels: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict,
        json_schema_extra={
            "maxProperties": 64,
            **common.cel(
                "self.all(k, size(k) <= 256 && !k.startsWith('dockyard.dev/'))",
                "label keys must be at most 256 characters and must not start with dockyard.dev/ (reserved)",
            ),
        },
    )
    """Docker labels for the container. Keys under dockyard.dev/ are reserved for the operator."""

    service_imports: list[ServiceImport] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={
            "x-kubernetes-list-type": "atomic",
            **common.cel(_imports_rule().rule, _imports_rule().message),
        },
    )
    """Kubernetes Services (in-cluster ones, and other DockerServices) the container reaches as alias:port, through
    the tunnel: the agent listens on the container network's gateway, and the operator connects to the Service.
    Changing the list recreates the container (its /etc/hosts changes)."""

    host_ref: common.LocalObjectReference | None = None
    """Run on the DockerHost with this name."""

    host_selector: common.LabelSelector | None = None
    """Run on a connected DockerHost whose labels match; the operator picks one and records it in status.host.
    The choice sticks while that host exists."""

    drift_policy: DriftPolicy = DriftPolicy.ENFORCE
    """What to do when the container differs from the spec: Enforce recreates it, Report only sets the Drifted
    condition and leaves the container alone."""

    stop_grace_period_seconds: int = Field(default=10, ge=0, le=3600)
    """Seconds between SIGTERM and SIGKILL when the container is stopped."""

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, value: dict[str, str]) -> dict[str, str]:
        if any(len(k) > 256 for k in value):
            raise ValueError("label keys must be at most 256 characters")
        reserved = sorted(k for k in value if k.startswith(common.RESERVED_LABEL_PREFIX))
        if reserved:
            raise ValueError(f"label keys under {common.RESERVED_LABEL_PREFIX} are reserved: {reserved}")
        return value

    @field_validator("volumes")
    @classmethod
    def _check_volumes(cls, value: list[Volume]) -> list[Volume]:
        _require_unique("volume name", [v.name for v in value])
        _require_unique("mountPath", [v.mount_path for v in value])
        return value

    # The API server enforces list-map keys (x-kubernetes-list-map-keys); the models check the same.
    @field_validator("env")
    @classmethod
    def _check_env(cls, value: list[EnvVar]) -> list[EnvVar]:
        _require_unique("env name", [e.name for e in value])
        return value

    @field_validator("ports")
    @classmethod
    def _check_ports(cls, value: list[ContainerPort]) -> list[ContainerPort]:
        _require_unique("port (containerPort, protocol)", [(p.container_port, p.protocol.value) for p in value])
        return value

    @property
    def effective_image_pull_policy(self) -> PullPolicy:
        """imagePullPolicy, or the Kubernetes default for this image."""
        return self.image_pull_policy or default_pull_policy(self.image)


def _require_unique(what: str, keys: list[object]) -> None:
    duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"duplicate {what}: {', '.join(duplicates)}")


# --- Status ----------------------------------------------------------------------------------------------------


class ContainerPhase(enum.StrEnum):
    """Where the container is in its life, in one word."""

    PENDING = "Pending"
    CREATING = "Creating"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


class ContainerReason(enum.StrEnum):
    """One word for where the container is and why, as `kubectl get pods` shows in its STATUS column.

    The words are the kubelet's wherever it has one, so they mean what Kubernetes users already know.
    """

    PENDING = "Pending"
    """Not placed on a host yet, or waiting for the host's first verdict."""
    UNSCHEDULABLE = "Unschedulable"
    """No DockerHost can take it (see the Scheduled condition)."""
    CONTAINER_CREATING = "ContainerCreating"
    """Placed; the image is being pulled or the container created."""
    RUNNING = "Running"
    """The container runs (READY says whether it is also healthy)."""
    PAUSED = "Paused"
    """The container is paused in Docker."""
    COMPLETED = "Completed"
    """Exited with code 0 and will not be started again (restartPolicy)."""
    ERROR = "Error"
    """Exited with a non-zero code and will not be started again (restartPolicy)."""
    OOM_KILLED = "OOMKilled"
    """Killed for exceeding its memory limit and not started again."""
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
    """It keeps exiting or failing to start; the next start waits for a back-off (10 s doubling to 5 min)."""
    ERR_IMAGE_PULL = "ErrImagePull"
    """The last image pull failed."""
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    """Waiting for a back-off before pulling the image again."""
    ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
    """The image is not on the host and imagePullPolicy is Never."""
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    """A referenced Secret or ConfigMap (or a key in it) does not exist."""
    CREATE_CONTAINER_ERROR = "CreateContainerError"
    """Docker refused to create the container."""
    RUN_CONTAINER_ERROR = "RunContainerError"
    """Docker could not start the container (for example: the command does not exist)."""
    NAME_CONFLICT = "NameConflict"
    """A container with its name exists on the host and is not Dockyard's."""
    HOST_PATH_NOT_ALLOWED = "HostPathNotAllowed"
    """A hostPath volume the DockerHost does not allow."""
    INVALID_SPEC = "InvalidSpec"
    """The spec cannot be turned into a Docker container; only a change of the spec helps."""
    HOST_UNREACHABLE = "HostUnreachable"
    """Its host cannot be reached; the container is left alone until it can."""
    TERMINATING = "Terminating"
    """Being deleted."""


class ContainerConditionType(enum.StrEnum):
    """Condition types of a DockerContainer."""

    SCHEDULED = "Scheduled"
    HOST_REACHABLE = "HostReachable"
    READY = "Ready"
    HEALTHY = "Healthy"
    DRIFTED = "Drifted"
    SERVICE_IMPORTS = "ServiceImports"


class EventReason(enum.StrEnum):
    """Reasons of the Kubernetes Events the operator records on a DockerContainer."""

    SCHEDULED = "Scheduled"
    FAILED_SCHEDULING = "FailedScheduling"
    PULLING = "Pulling"
    PULLED = "Pulled"
    CREATED = "Created"
    STARTED = "Started"
    RECREATED = "Recreated"
    UNHEALTHY = "Unhealthy"
    RESTARTED = "Restarted"
    BACK_OFF = "BackOff"
    FAILED = "Failed"
    HOST_UNREACHABLE = "HostUnreachable"
    MOVED = "Moved"
    ORPHANED = "Orphaned"
    KILLING = "Killing"


class Drift(common.ApiModel):
    """How the running container differs from the spec. Values are not recorded: they may be Secret data."""

    fields: list[Annotated[str, Field(max_length=256)]] = Field(default_factory=list, max_length=64)
    """Spec fields that differ (for example image, env, args)."""

    since: common.Time | None = None
    """When the drift was first seen."""


class DockerContainerStatus(common.ApiModel):
    """What the operator last observed about the container. Written only by the operator."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this status was computed from."""

    phase: ContainerPhase | None = None
    """Pending, Creating, Running, Succeeded, Failed or Unknown (host unreachable)."""

    reason: ContainerReason | None = None
    """Why it is in its phase, in one word (the STATUS column): Running, ImagePullBackOff, CrashLoopBackOff, …"""

    host: str | None = Field(default=None, max_length=253)
    """Name of the DockerHost the container is placed on."""

    container_id: str | None = Field(default=None, max_length=128, alias="containerID")
    """Docker container ID."""

    state: str | None = Field(default=None, max_length=64)
    """Docker's state of the container: created, running, paused, restarting, removing, exited or dead."""

    health: str | None = Field(default=None, max_length=64)
    """Docker's health status: starting, healthy or unhealthy. Unset without a health check."""

    ip: str | None = Field(default=None, max_length=64)
    """The container's IP address on its Docker network."""

    started_at: common.Time | None = None
    """When the container last started."""

    finished_at: common.Time | None = None
    """When the container last exited (Docker's State.FinishedAt), while it is not running."""

    restart_count: int = Field(default=0, ge=0)
    """How many times the container was restarted or recreated by Docker or Dockyard."""

    last_exit_code: int | None = None
    """Exit code of the container's last exit."""

    image_id: str | None = Field(default=None, max_length=256, alias="imageID")
    """ID (digest) of the image the container runs."""

    drift: Drift | None = None
    """How the container differs from the spec; unset when it matches."""

    conditions: list[common.Condition] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Current conditions: Scheduled, HostReachable, Ready, Healthy, Drifted and (with serviceImports)
    ServiceImports."""


class DockerContainer(common.ApiModel):
    """A Docker container on a DockerHost, kept in the state its spec describes."""

    api_version: Literal["dockyard.dev/v1alpha1"] = common.API_VERSION
    """APIVersion of the object."""

    kind: Literal["DockerContainer"] = KIND
    """Kind of the object."""

    metadata: common.ObjectMeta
    """Standard object metadata."""

    spec: DockerContainerSpec
    """Desired state of the container."""

    status: DockerContainerStatus = Field(default_factory=DockerContainerStatus)
    """Observed state, written by the operator."""
