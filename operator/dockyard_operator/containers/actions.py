"""The Docker actions a DockerContainer decision can ask for; the executor performs them in order.

Each action is a value: the decision that produced it can be compared with a table of expected actions.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard_operator.api.dockercontainer import PullPolicy


@dataclass(frozen=True)
class RemoveContainer:
    """Stop (with the grace period, if running) and remove one container."""

    host: str
    container_id: str
    running: bool
    grace_seconds: int
    why: str
    keep_as_previous: bool = False
    """Keep it, stopped, as the one previous container (`dockyard logs --previous`), replacing the last one: the
    kubelet keeps a Pod's last dead container for `kubectl logs --previous` the same way."""


@dataclass(frozen=True)
class EnsureImage:
    """Make the image present as the pull policy says (pull for Always, or when absent for IfNotPresent)."""

    image: str
    policy: PullPolicy


@dataclass(frozen=True)
class CreateContainer:
    """Create the desired container, copy its Secret/ConfigMap files in, start it."""

    host: str


@dataclass(frozen=True)
class StartContainer:
    container_id: str


@dataclass(frozen=True)
class RestartContainer:
    container_id: str
    grace_seconds: int


Action = RemoveContainer | EnsureImage | CreateContainer | StartContainer | RestartContainer
