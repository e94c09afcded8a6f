"""Kubernetes API errors, built from the server's Status body; foreign exceptions never leak past kube/."""

from __future__ import annotations

from typing import Any

from dockyard_operator.errors import DockyardError

#: Non-JSON error bodies are cut so that a misbehaving proxy cannot dump secrets into our logs.
MAX_TEXT_ERROR = 256


class KubeError(DockyardError):
    """Talking to the Kubernetes API failed."""


class KubeConnectionError(KubeError):
    """The API server could not be reached or the connection broke mid-request."""


class WatchStalledError(KubeConnectionError):
    """A watch stream delivered nothing (not even a bookmark) for longer than the inactivity timeout."""


class LeadershipLostError(KubeError):
    """We were the leader and could not renew the Lease in time; the process must stop acting at once."""


class APIError(KubeError):
    """The API server answered with an error Status."""

    def __init__(self, status: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details or {}

    @property
    def retry_after(self) -> float | None:
        value = self.details.get("retryAfterSeconds")
        return float(value) if isinstance(value, int | float) else None


class BadRequestError(APIError):
    """400: the request was malformed."""


class UnauthorizedError(APIError):
    """401: our credential was rejected."""


class ForbiddenError(APIError):
    """403: RBAC does not allow this verb on this resource."""


class NotFoundError(APIError):
    """404: the object (or its API) does not exist."""


class ConflictError(APIError):
    """409: resourceVersion conflict or the object already exists."""


class GoneError(APIError):
    """410: the requested resourceVersion is too old; re-list."""


class UnprocessableError(APIError):
    """422: validation (schema, CEL) rejected the object."""


class TooManyRequestsError(APIError):
    """429: throttled (API priority and fairness, or storage still initializing)."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    422: UnprocessableError,
    429: TooManyRequestsError,
}


def from_status(status: int, body: Any) -> APIError:
    """Build the matching error from an HTTP status and a decoded (or raw) body."""
    if isinstance(body, dict) and body.get("kind") == "Status":
        code = int(body.get("code") or status)
        reason = str(body.get("reason") or "")
        message = str(body.get("message") or "")
        details = body.get("details") if isinstance(body.get("details"), dict) else None
    else:
        code, reason, message, details = status, "", str(body)[:MAX_TEXT_ERROR], None
    return _BY_STATUS.get(code, APIError)(code, reason, message, details)
