"""Status writes, one implementation for every kind: typed in, merge patch out, only when something changed.

The status model is validated before sending (never send what our own schema would reject), compared with the
cached status read through the same model (so formatting differences are not changes), and written to the status
subresource as a merge patch that also removes fields we no longer set. Every write is remembered in the
WriteTracker for read-your-writes.

`claim=True` adds the object's resourceVersion as a precondition: the write fails with 409 if anyone changed the
object since we read it. Placement uses it, so two operators (or an operator and its restarted self) can never
both record a different host for one object.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import pydantic

from dockyard_operator.informer.store import object_key
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import Resource
from dockyard_operator.runtime.consistency import WriteTracker

JSON = dict[str, Any]
S = TypeVar("S", bound=pydantic.BaseModel)


def dump(status: pydantic.BaseModel) -> JSON:
    """A status model as the JSON the API server stores (camelCase, unset fields omitted)."""
    return status.model_dump(by_alias=True, mode="json", exclude_none=True)


class StatusWriter(Generic[S]):
    """Writes the status of one resource kind."""

    def __init__(self, *, kube: KubeClient, resource: Resource, model: type[S], tracker: WriteTracker) -> None:
        self._kube = kube
        self._resource = resource
        self._model = model
        self._tracker = tracker
        self.writes = 0

    def read(self, obj: JSON) -> S:
        """The cached status as a model (an unreadable status counts as empty: we are its only writer)."""
        try:
            return self._model.model_validate(obj.get("status") or {})
        except pydantic.ValidationError:
            return self._model()

    def normalized(self, status: S) -> JSON:
        """The status as the API server will store it: validated (model_copy does not validate, so times may
        still carry microseconds) and dumped."""
        return dump(self._model.model_validate(dump(status)))

    def unchanged(self, obj: JSON, status: S) -> bool:
        current = obj.get("status") or {}
        try:
            stored = dump(self._model.model_validate(current))
        except pydantic.ValidationError:
            return False
        return stored == self.normalized(status)

    async def write(self, obj: JSON, status: S, *, claim: bool = False) -> JSON | None:
        """Patch the status if it changed; the updated object, or None (unchanged, or the object is gone).

        Raises kube ConflictError when `claim` is set and the object changed since `obj` was read.
        """
        if not claim and self.unchanged(obj, status):
            return None
        body = self.normalized(status)
        current = obj.get("status") or {}
        patch: JSON = {"status": {**{k: None for k in current if k not in body}, **body}}
        meta = obj["metadata"]
        if claim:
            patch["metadata"] = {"resourceVersion": meta["resourceVersion"]}
        try:
            response = await self._kube.merge_patch(
                self._resource, meta["name"], patch, namespace=meta.get("namespace"), subresource="status"
            )
        except kube_errors.NotFoundError:
            return None
        self.writes += 1
        self._tracker.wrote(object_key(obj), (response.get("metadata") or {}).get("resourceVersion"))
        return response
