"""The informer's cache: the latest object per key, as the API server last told us, with secondary indexes.

An index maps each object to zero or more string values (its host, its owner's uid, the Secrets it references)
and answers "which keys have value V" in O(result), so an event about a host or a Secret wakes exactly the
objects that depend on it instead of scanning the whole cache (client-go's Indexer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

JSON = dict[str, Any]

IndexFunc = Callable[[JSON], Iterable[str]]
"""The values an object is indexed under; must be pure and cheap (it runs on every event)."""


def object_key(obj: JSON) -> str:
    """`namespace/name` for namespaced objects, `name` for cluster-scoped ones (client-go's MetaNamespaceKey)."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else str(meta["name"])


def split_key(key: str) -> tuple[str | None, str]:
    namespace, sep, name = key.rpartition("/")
    return (namespace if sep else None), name


class Reader(Protocol):
    """Read access to a cache: one informer's store, or several merged (one per watched namespace)."""

    def get(self, key: str) -> JSON | None: ...

    def list_keys(self) -> list[str]: ...

    def values(self) -> Iterator[JSON]: ...

    def by_index(self, index: str, value: str) -> list[JSON]: ...

    def __len__(self) -> int: ...


class Store:
    """Key -> object. Readers get the object itself: treat it as read-only (copy before changing)."""

    def __init__(self) -> None:
        self._items: dict[str, JSON] = {}
        self._index_funcs: dict[str, IndexFunc] = {}
        # index name -> value -> keys; and key -> the values it is filed under, to unfile it on change
        self._indexes: dict[str, dict[str, set[str]]] = {}
        self._filed: dict[str, dict[str, tuple[str, ...]]] = {}

    def add_index(self, name: str, func: IndexFunc) -> None:
        """Register an index; objects already stored are indexed at once. Registering a name twice is a bug."""
        if name in self._index_funcs:
            raise ValueError(f"index {name!r} is already registered")
        self._index_funcs[name] = func
        self._indexes[name] = {}
        self._filed[name] = {}
        for key, obj in self._items.items():
            self._file(name, key, obj)

    def has_index(self, name: str) -> bool:
        return name in self._index_funcs

    def get(self, key: str) -> JSON | None:
        return self._items.get(key)

    def list_keys(self) -> list[str]:
        return list(self._items)

    def values(self) -> Iterator[JSON]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def by_index(self, index: str, value: str) -> list[JSON]:
        """Objects filed under `value` in `index` (a KeyError for an unknown index: a wiring bug)."""
        keys = self._indexes[index].get(value, ())
        return [self._items[k] for k in sorted(keys)]

    def index_values(self, index: str) -> list[str]:
        """Every value that currently has at least one object in `index`."""
        return sorted(self._indexes[index])

    def put(self, obj: JSON) -> bool:
        """Store `obj`; True when it is new or its resourceVersion changed."""
        key = object_key(obj)
        old = self._items.get(key)
        self._items[key] = obj
        self._reindex(key, obj)
        return old is None or old["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion")

    def delete(self, key: str) -> JSON | None:
        self._unfile_all(key)
        return self._items.pop(key, None)

    def replace(self, objs: Sequence[JSON]) -> tuple[list[str], list[JSON]]:
        """Swap in a full list; return (keys whose object is new or changed, objects that disappeared)."""
        fresh = {object_key(o): o for o in objs}
        gone = [o for k, o in self._items.items() if k not in fresh]
        changed = [
            k
            for k, o in fresh.items()
            if k not in self._items
            or self._items[k]["metadata"].get("resourceVersion") != o["metadata"].get("resourceVersion")
        ]
        for obj in gone:
            self._unfile_all(object_key(obj))
        self._items = fresh
        for key, obj in fresh.items():
            self._reindex(key, obj)
        return changed, gone

    # -- index bookkeeping -----------------------------------------------------------------------------------

    def _reindex(self, key: str, obj: JSON) -> None:
        for name in self._index_funcs:
            self._unfile(name, key)
            self._file(name, key, obj)

    def _file(self, name: str, key: str, obj: JSON) -> None:
        values = tuple(sorted(set(self._index_funcs[name](obj))))
        if not values:
            return
        self._filed[name][key] = values
        index = self._indexes[name]
        for value in values:
            index.setdefault(value, set()).add(key)

    def _unfile(self, name: str, key: str) -> None:
        index = self._indexes[name]
        for value in self._filed[name].pop(key, ()):
            keys = index.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[value]

    def _unfile_all(self, key: str) -> None:
        for name in self._index_funcs:
            self._unfile(name, key)


class MergedStore:
    """Read-only view over several stores of one resource (one informer per watched namespace)."""

    def __init__(self, stores: Sequence[Store]) -> None:
        self._stores = list(stores)

    @property
    def stores(self) -> list[Store]:
        return list(self._stores)

    def add_index(self, name: str, func: IndexFunc) -> None:
        for store in self._stores:
            if not store.has_index(name):
                store.add_index(name, func)

    def get(self, key: str) -> JSON | None:
        for store in self._stores:
            obj = store.get(key)
            if obj is not None:
                return obj
        return None

    def list_keys(self) -> list[str]:
        return [k for s in self._stores for k in s.list_keys()]

    def values(self) -> Iterator[JSON]:
        return iter([v for s in self._stores for v in s.values()])

    def by_index(self, index: str, value: str) -> list[JSON]:
        return [o for s in self._stores for o in s.by_index(index, value)]

    def __len__(self) -> int:
        return sum(len(s) for s in self._stores)
