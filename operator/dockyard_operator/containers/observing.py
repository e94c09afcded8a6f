"""What a container is doing, read from ``GET /containers/{id}/json``, and the DockerContainer phase it implies."""

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from dockyard_operator.api import labels
from dockyard_operator.api.dockercontainer import ContainerPhase, RestartPolicy

#: Docker's health states; anything else (no health check, "none") is reported as None.
HEALTH_STATES: Final = frozenset({"starting", "healthy", "unhealthy"})
#: States where the process has exited (and State.ExitCode means something).
EXITED_STATES: Final = frozenset({"exited", "dead"})
# Go's zero time, which Docker reports for "never".
_ZERO_TIME_PREFIX: Final = "0001-01-01"


@dataclass(frozen=True)
class Observed:
    """The parts of a container's inspect that status and decisions need."""

    container_id: str
    #: created, running, paused, restarting, removing, exited or dead.
    state: str
    running: bool
    #: starting, healthy, unhealthy, or None without a health check.
    health: str | None
    #: The IP on the first network by name (names sorted, so the choice is stable), or None.
    ip: str | None
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    #: The last exit code while exited, dead or restarting; None otherwise (Docker reports a meaningless 0).
    exit_code: int | None
    oom_killed: bool
    #: The image ID (sha256:...) the container was created from.
    image_id: str | None
    #: Restarts done by Docker's own restart policy since the container was created.
    docker_restart_count: int
    #: Docker's error text for a failed start, or None.
    error: str | None
    #: The dockyard.dev/spec-hash label, or None for a container we do not manage.
    spec_hash: str | None


def observe(inspect: Mapping[str, Any]) -> Observed:
    """Read the state out of an inspect result (Docker Engine API v1.41)."""
    state: Mapping[str, Any] = inspect.get("State") or {}
    status = str(state.get("Status") or "")
    health = (state.get("Health") or {}).get("Status")
    config_labels: Mapping[str, str] = (inspect.get("Config") or {}).get("Labels") or {}
    return Observed(
        container_id=str(inspect.get("Id") or ""),
        state=status,
        running=bool(state.get("Running")),
        health=health if health in HEALTH_STATES else None,
        ip=_ip(inspect),
        started_at=parse_docker_time(state.get("StartedAt")),
        finished_at=parse_docker_time(state.get("FinishedAt")),
        exit_code=int(state.get("ExitCode") or 0) if status in EXITED_STATES or status == "restarting" else None,
        oom_killed=bool(state.get("OOMKilled")),
        image_id=inspect.get("Image") or None,
        docker_restart_count=int(inspect.get("RestartCount") or 0),
        error=state.get("Error") or None,
        spec_hash=config_labels.get(labels.SPEC_HASH),
    )


def phase_for(observed: Observed | None, restart_policy: RestartPolicy) -> ContainerPhase:
    """The DockerContainer phase for what we observed (None: no container exists yet), following Kubernetes.

    An exited container that its restart policy will start again (Always; OnFailure after a failure) is still
    Running, like a Pod in CrashLoopBackOff: its state field says "exited". Otherwise exit code 0 is Succeeded and
    anything else Failed. dead is Failed; removing is Unknown (we cannot say what comes next).
    """
    if observed is None:
        return ContainerPhase.PENDING
    state = observed.state
    if state == "created":
        return ContainerPhase.CREATING
    if state in ("running", "paused", "restarting"):
        return ContainerPhase.RUNNING
    if state == "dead":
        return ContainerPhase.FAILED
    if state == "exited":
        succeeded = observed.exit_code == 0
        if restart_policy is RestartPolicy.ALWAYS or (restart_policy is RestartPolicy.ON_FAILURE and not succeeded):
            return ContainerPhase.RUNNING
        return ContainerPhase.SUCCEEDED if succeeded else ContainerPhase.FAILED
    return ContainerPhase.UNKNOWN


def is_ready(observed: Observed | None) -> bool:
    """Ready: running and, if it has a health check (its own or the image's), healthy."""
    return observed is not None and observed.running and observed.health in (None, "healthy")


def parse_docker_time(value: object) -> datetime.datetime | None:
    """An aware UTC datetime from Docker's RFC 3339 nanosecond timestamp; None for Go's zero time or garbage."""
    if not isinstance(value, str) or not value or value.startswith(_ZERO_TIME_PREFIX):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python parses at most microseconds; Docker writes up to nanoseconds.
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)].ljust(6, '0')}{rest[digits:]}"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.astimezone(datetime.UTC)


def _ip(inspect: Mapping[str, Any]) -> str | None:
    settings: Mapping[str, Any] = inspect.get("NetworkSettings") or {}
    networks: Mapping[str, Any] = settings.get("Networks") or {}
    for name in sorted(networks):
        network = networks[name] or {}
        address = network.get("IPAddress") or network.get("GlobalIPv6Address")
        if address:
            return str(address)
    return str(settings["IPAddress"]) if settings.get("IPAddress") else None
