"""Docker errors as the operator sees them: the daemon said no, or the daemon could not be reached."""

from __future__ import annotations

from dockyard_operator.errors import DockyardError


class DockerError(DockyardError):
    """A Docker API call failed."""


class DockerUnavailableError(DockerError):
    """The host's daemon cannot be reached (tunnel down, socket gone, timeout). Nothing is known about it now."""


class DockerAPIError(DockerError):
    """The daemon answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class DockerNotFoundError(DockerAPIError):
    """404: no such container or image."""


class DockerConflictError(DockerAPIError):
    """409: e.g. the container name is taken."""
