"""Errors of the container domain logic. Messages name objects, keys and fields, never Secret values."""

from dockyard_operator.errors import DockyardError, InvalidSpecError


class ContainersError(DockyardError):
    """Base class of the errors raised while turning a DockerContainer into a Docker container."""


class MissingReferenceError(ContainersError):
    """A non-optional Secret or ConfigMap, or a key in it, does not exist (yet).

    Retryable: the object may be created later, and the reconciler is triggered again when it is.
    """

    def __init__(self, *, kind: str, object_name: str, key: str | None, field: str) -> None:
        self.kind = kind
        self.object_name = object_name
        self.key = key
        self.field = field
        what = f"{kind} {object_name!r}" if key is None else f"key {key!r} of {kind} {object_name!r}"
        super().__init__(f"{field}: {what} does not exist (mark the reference optional to run without it)")


class UnusableValueError(ContainersError):
    """A referenced Secret or ConfigMap value cannot be used where it is referenced (e.g. binary data in env)."""

    def __init__(self, *, kind: str, object_name: str, key: str, field: str, reason: str) -> None:
        self.kind = kind
        self.object_name = object_name
        self.key = key
        self.field = field
        super().__init__(f"{field}: key {key!r} of {kind} {object_name!r} {reason}")


class UnbuildableSpecError(ContainersError, InvalidSpecError):
    """The spec passed admission but cannot be turned into one Docker container (e.g. two files on one path).

    Not retryable: only a change of the spec fixes it.
    """
