"""Revisions of a DockerDeployment's template, kept as apps/v1 ControllerRevisions (pure helpers).

Each distinct template is one ControllerRevision named `<deployment>-<template hash>`, owned by the deployment,
holding the template and a revision number. Going back to an older template (a rollback) gives that revision the
next number, as Kubernetes does for Deployments, so the newest number is always the current template. Old
revisions beyond revisionHistoryLimit that no replica uses are pruned.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from dockyard_operator.api.dockerdeployment import ContainerTemplate

JSON = dict[str, Any]

#: On replicas and revisions: which template they come from.
TEMPLATE_HASH_LABEL = "dockyard.dev/template-hash"
#: On revisions: which DockerDeployment they belong to (the informer watches only these).
DEPLOYMENT_LABEL = "dockyard.dev/deployment"
#: On the DockerDeployment and its replicas: the revision number of the current template.
REVISION_ANNOTATION = "dockyard.dev/revision"


def template_json(template: ContainerTemplate) -> JSON:
    return template.model_dump(by_alias=True, mode="json", exclude_none=True)


def template_hash(template: ContainerTemplate) -> str:
    """A stable hash of the template (10 hex characters: a label value, like pod-template-hash)."""
    canonical = json.dumps(template_json(template), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def revision_name(deployment: str, hash_: str) -> str:
    return f"{deployment}-{hash_}"[:253]


def revision_number(obj: JSON) -> int:
    return int(obj.get("revision") or 0)


def next_number(revisions: Sequence[JSON]) -> int:
    return max((revision_number(r) for r in revisions), default=0) + 1


def to_prune(revisions: Sequence[JSON], *, keep: int, in_use: set[str], current: str) -> list[str]:
    """Names of old revisions beyond the history limit that no replica uses (oldest go first)."""
    old = sorted(
        (r for r in revisions if r["metadata"]["name"] != current and r["metadata"]["name"] not in in_use),
        key=revision_number,
    )
    excess = len(old) - keep
    return [r["metadata"]["name"] for r in old[: max(0, excess)]]


def template_of(revision: JSON) -> JSON:
    """The template a ControllerRevision holds."""
    return dict(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
