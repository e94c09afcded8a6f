"""Errors of DockerServices."""

from dockyard_operator.errors import DockyardError


class ServiceAddressError(DockyardError):
    """The data plane has no address an EndpointSlice may hold (none configured, found, or a loopback one)."""
