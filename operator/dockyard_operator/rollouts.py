"""`dockyard rollout status|history|undo|restart|pause|resume ddeploy/NAME`: kubectl's rollout, for DockerDeployments.

kubectl's `rollout` knows only built-in kinds, so Dockyard brings its own, with the same meanings and messages:
`status` exits 0 once the rollout is complete and 1 when the progress deadline passed (or on --timeout); `undo`
puts a previous revision's template back (a new rollout, as `kubectl rollout undo` does); `restart` changes a
template annotation so every replica is replaced, honouring the strategy.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import sys
from typing import Any, TextIO

from dockyard_operator.deployments import revisions
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import CONTROLLERREVISIONS, DOCKERDEPLOYMENTS

JSON = dict[str, Any]

KINDS = ("ddeploy", "dockerdeployment", "dockerdeployments", "dockerdeployment.dockyard.dev")
RESTARTED_AT = "dockyard.dev/restartedAt"


class RolloutError(Exception):
    """A rollout command cannot be done; the message is for the user."""


def parse_target(target: str) -> str:
    """The name in `ddeploy/NAME` (also dockerdeployment/NAME and the plural and group forms)."""
    kind, sep, name = target.partition("/")
    if not sep or kind.lower() not in KINDS or not name:
        raise RolloutError(f"expected ddeploy/NAME (a DockerDeployment), not {target!r}")
    return name


def progress(obj: JSON) -> tuple[bool, str]:
    """(done, message) as `kubectl rollout status` words it for a Deployment; raises on a missed deadline."""
    name = obj["metadata"]["name"]
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(obj["metadata"].get("generation") or 0):
        return False, "Waiting for deployment spec update to be observed..."
    if spec.get("paused"):
        return False, f'Deployment "{name}" is paused; resume it to finish the rollout (dockyard rollout resume)'
    progressing: JSON = next((c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), {})
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        raise RolloutError(f'deployment "{name}" exceeded its progress deadline')
    desired = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    waiting = f'Waiting for deployment "{name}" rollout to finish:'
    if updated < desired:
        return False, f"{waiting} {updated} out of {desired} new replicas have been updated..."
    if total > updated:
        return False, f"{waiting} {total - updated} old replicas are pending termination..."
    if available < updated:
        return False, f"{waiting} {available} of {updated} updated replicas are available..."
    return True, f'deployment "{name}" successfully rolled out'


async def status(kube: KubeClient, namespace: str, name: str, *, timeout: float, out: TextIO = sys.stdout) -> None:
    last = ""
    async with asyncio.timeout(timeout if timeout > 0 else None):
        while True:
            obj = await kube.get(DOCKERDEPLOYMENTS, name, namespace=namespace)
            done, message = progress(obj)
            if message != last:
                print(message, file=out, flush=True)
                last = message
            if done:
                return
            await asyncio.sleep(0.5)


async def _revisions(kube: KubeClient, namespace: str, name: str) -> tuple[JSON, list[JSON]]:
    obj = await kube.get(DOCKERDEPLOYMENTS, name, namespace=namespace)
    listed = await kube.list(
        CONTROLLERREVISIONS, namespace=namespace, label_selector=f"{revisions.DEPLOYMENT_LABEL}={name}"
    )
    uid = obj["metadata"]["uid"]
    owned = [
        r
        for r in listed.get("items") or []
        if any(o.get("uid") == uid for o in r["metadata"].get("ownerReferences") or [])
    ]
    return obj, sorted(owned, key=revisions.revision_number)


async def history(
    kube: KubeClient, namespace: str, name: str, *, revision: int | None, out: TextIO = sys.stdout
) -> None:
    _, found = await _revisions(kube, namespace, name)
    if revision is not None:
        chosen = next((r for r in found if revisions.revision_number(r) == revision), None)
        if chosen is None:
            raise RolloutError(f"unable to find the specified revision {revision}")
        print(f"dockerdeployment.dockyard.dev/{name} with revision #{revision}", file=out)
        print(json.dumps(revisions.template_of(chosen), indent=2), file=out)
        return
    print(f"dockerdeployment.dockyard.dev/{name}", file=out)
    print(f"{'REVISION':<10}{'IMAGE':<40}CHANGE-CAUSE", file=out)
    for r in found:
        template = revisions.template_of(r)
        image = (template.get("spec") or {}).get("image", "")
        cause = ((template.get("metadata") or {}).get("annotations") or {}).get("kubernetes.io/change-cause", "<none>")
        print(f"{revisions.revision_number(r):<10}{image:<40}{cause}", file=out)


async def undo(
    kube: KubeClient, namespace: str, name: str, *, to_revision: int | None, out: TextIO = sys.stdout
) -> None:
    obj, found = await _revisions(kube, namespace, name)
    target: JSON | None
    if to_revision is None:
        if len(found) < 2:
            raise RolloutError(f'no rollout history found for deployment "{name}"')
        target = found[-2]  # the one before the current
    else:
        target = next((r for r in found if revisions.revision_number(r) == to_revision), None)
        if target is None:
            raise RolloutError(f"unable to find specified revision {to_revision} in history")
    template = revisions.template_of(target)
    if template == (obj.get("spec") or {}).get("template"):
        print(f"dockerdeployment.dockyard.dev/{name} skipped rollback (current template already matches revision "
              f"{revisions.revision_number(target)})", file=out)  # fmt: skip
        return
    patch = {"spec": {"template": template}, "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}}
    await _patch(kube, namespace, name, patch)
    print(f"dockerdeployment.dockyard.dev/{name} rolled back", file=out)


async def restart(kube: KubeClient, namespace: str, name: str, *, out: TextIO = sys.stdout) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    await _patch(kube, namespace, name, {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}})
    print(f"dockerdeployment.dockyard.dev/{name} restarted", file=out)


async def pause(kube: KubeClient, namespace: str, name: str, *, paused: bool, out: TextIO = sys.stdout) -> None:
    obj = await kube.get(DOCKERDEPLOYMENTS, name, namespace=namespace)
    if bool((obj.get("spec") or {}).get("paused")) == paused:
        raise RolloutError(f"dockerdeployment.dockyard.dev/{name} is {'already' if paused else 'not'} paused")
    await _patch(kube, namespace, name, {"spec": {"paused": paused}})
    print(f"dockerdeployment.dockyard.dev/{name} {'paused' if paused else 'resumed'}", file=out)


async def _patch(kube: KubeClient, namespace: str, name: str, patch: JSON) -> None:
    try:
        await kube.merge_patch(DOCKERDEPLOYMENTS, name, patch, namespace=namespace)
    except kube_errors.ConflictError as exc:
        raise RolloutError(f"the DockerDeployment changed meanwhile; try again ({exc.message})") from exc
