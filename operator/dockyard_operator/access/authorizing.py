"""May this user do this? One SubjectAccessReview per request, on the virtual subresource in our group: the same
question kube-apiserver asked before proxying, asked again here because this server must not trust that every
route to it went through that check (the delegated authorization every aggregated API server performs)."""

from __future__ import annotations

from dockyard_operator.access import protocol
from dockyard_operator.access.requestheader import User
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import SUBJECTACCESSREVIEWS


async def allowed(kube: KubeClient, user: User, *, namespace: str, name: str, subresource: str) -> tuple[bool, str]:
    """(allowed, reason) for `get` on dockercontainers/<subresource> of namespace/name."""
    spec = {
        "user": user.name,
        "groups": list(user.groups),
        "extra": user.extra,
        "resourceAttributes": {
            "group": protocol.GROUP,
            "version": protocol.VERSION,
            "resource": protocol.RESOURCE,
            "subresource": subresource,
            "verb": "get",
            "namespace": namespace,
            "name": name,
        },
    }
    if user.uid:
        spec["uid"] = user.uid
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
    review = await kube.create(SUBJECTACCESSREVIEWS, body)
    status = review.get("status") or {}
    return bool(status.get("allowed")) and not status.get("denied"), str(status.get("reason") or "")
