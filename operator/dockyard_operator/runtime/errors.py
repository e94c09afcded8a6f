"""Errors of the controller runtime."""

from dockyard_operator.errors import DockyardError


class ControllerRuntimeError(DockyardError):
    """Base class of the errors the controller runtime raises."""


class RuntimeContractError(ControllerRuntimeError):
    """A caller broke one of the runtime's contracts (a programming error, never bad user input)."""
