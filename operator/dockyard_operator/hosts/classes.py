"""Operator classes: which Dockyard serves which DockerHosts and which namespaces (IngressClass-like).

A DockerHost names its class in `spec.operatorClass` (default `dockyard`); a namespace names the class that serves
its DockerContainers with the label `dockyard.dev/operator-class` (default `dockyard`). An operator started with
`--operator-class X` connects only to hosts of class X, reconciles only DockerContainers in namespaces of class X,
and places them only on hosts of class X. So several Dockyards share one API server without ever writing each
other's status: a test suite next to a running demo, or two teams with their own hosts.
"""

from __future__ import annotations

from typing import Any

from dockyard_operator.api import labels
from dockyard_operator.api.common import DEFAULT_OPERATOR_CLASS

JSON = dict[str, Any]


def host_class(host: JSON) -> str:
    return str((host.get("spec") or {}).get("operatorClass") or DEFAULT_OPERATOR_CLASS)


def serves(namespace: JSON | None, operator_class: str) -> bool:
    """Whether `operator_class` serves the objects of this namespace; one not in the cache yet belongs to nobody for
    now (its watch event may trail the object's: guessing the default class could act on another class's)."""
    return namespace is not None and namespace_class(namespace) == operator_class


def namespace_class(namespace: JSON | None) -> str:
    """The class serving a namespace; a namespace not (yet) in the cache counts as the default class."""
    meta = (namespace or {}).get("metadata") or {}
    return str((meta.get("labels") or {}).get(labels.OPERATOR_CLASS) or DEFAULT_OPERATOR_CLASS)
