"""The operator's error vocabulary: every error we raise on purpose derives from :class:`DockyardError`.

Subpackages add their own subclasses (``workqueue.errors``, ``api.quantities``) so callers can catch one base class
for "a Dockyard error" and still tell the cases apart.
"""


class DockyardError(Exception):
    """Base class of every error the Dockyard operator raises on purpose."""


class InvalidSpecError(DockyardError, ValueError):
    """A resource's spec cannot be acted on (the API server accepted it, but the operator cannot use it).

    Also a ValueError so that pydantic validators that raise it produce a normal ValidationError.
    """
