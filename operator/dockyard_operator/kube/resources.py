"""Resource descriptors and the URL paths the API server serves them at."""

from __future__ import annotations

import dataclasses
from urllib.parse import quote


@dataclasses.dataclass(frozen=True)
class Resource:
    """One kind of object on the API server, e.g. ``Resource("dockyard.dev", "v1alpha1", "dockercontainers")``."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, *, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
            if subresource is not None:
                base += f"/{subresource}"
        return base


SECRETS = Resource("", "v1", "secrets")
CONFIGMAPS = Resource("", "v1", "configmaps")
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
EVENTS = Resource("events.k8s.io", "v1", "events")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
PODS = Resource("", "v1", "pods")
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts")
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles")
ROLEBINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")
CLUSTERROLES = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False)
CLUSTERROLEBINDINGS = Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", namespaced=False)
DOCKERCONTAINERS = Resource("dockyard.dev", "v1alpha1", "dockercontainers")
DOCKERHOSTS = Resource("dockyard.dev", "v1alpha1", "dockerhosts", namespaced=False)
DOCKERDEPLOYMENTS = Resource("dockyard.dev", "v1alpha1", "dockerdeployments")
DOCKERJOBS = Resource("dockyard.dev", "v1alpha1", "dockerjobs")
DOCKERCRONJOBS = Resource("dockyard.dev", "v1alpha1", "dockercronjobs")
CONTROLLERREVISIONS = Resource("apps", "v1", "controllerrevisions")
DOCKERSERVICES = Resource("dockyard.dev", "v1alpha1", "dockerservices")
SERVICES = Resource("", "v1", "services")
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices")
SUBJECTACCESSREVIEWS = Resource("authorization.k8s.io", "v1", "subjectaccessreviews", namespaced=False)
APISERVICES = Resource("apiregistration.k8s.io", "v1", "apiservices", namespaced=False)
