"""The informer's cache: the latest object per key, as the API server last told us."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

JSON = dict[str, Any]


def object_key(obj: JSON) -> str:
    """`namespace/name` for namespaced objects, `name` for cluster-scoped ones (client-go's MetaNamespaceKey)."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else str(meta["name"])


def split_key(key: str) -> tuple[str | None, str]:
    namespace, sep, name = key.rpartition("/")
    return (namespace if sep else None), name


class Store:
    """Key -> object. Readers get the object itself: treat it as read-only (copy before changing)."""

    def __init__(self) -> None:
        self._items: dict[str, JSON] = {}

    def get(self, key: str) -> JSON | None:
        return self._items.get(key)

    def list_keys(self) -> list[str]:
        return list(self._items)

    def values(self) -> Iterator[JSON]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def put(self, obj: JSON) -> bool:
        """Store `obj`; True when it is new or its resourceVersion changed."""
        key = object_key(obj)
        old = self._items.get(key)
        self._items[key] = obj
        return old is None or old["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion")

    def delete(self, key: str) -> JSON | None:
        return self._items.pop(key, None)

    def replace(self, objs: list[JSON]) -> tuple[list[str], list[JSON]]:
        """Swap in a full list; return (keys whose object is new or changed, objects that disappeared)."""
        fresh = {object_key(o): o for o in objs}
        gone = [o for k, o in self._items.items() if k not in fresh]
        changed = [
            k
            for k, o in fresh.items()
            if k not in self._items
            or self._items[k]["metadata"].get("resourceVersion") != o["metadata"].get("resourceVersion")
        ]
        self._items = fresh
        return changed, gone
