"""Errors of the access API and of the CLI commands that use it."""

from __future__ import annotations

from dockyard_operator.errors import DockyardError


class AccessError(DockyardError):
    """A request to the access API cannot be served (the message is for the user)."""


class UsageError(AccessError):
    """The command line is wrong (exit 2)."""
