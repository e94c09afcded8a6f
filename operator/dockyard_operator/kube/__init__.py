"""The only package that talks to the Kubernetes API (and the only importer of kubernetes_asyncio).

Everything above it sees plain JSON dicts, our :mod:`errors`, and a few verbs: request, list, watch, patch.
kubernetes_asyncio is used for what it does well — kubeconfig/in-cluster loading, auth (client certificates,
token refresh) and the HTTP session — while the generated typed API is bypassed: custom resources are dicts
anyway, and one generic path builder serves every kind.
"""

from dockyard_operator.kube import generated_code

# Before any module of this package imports kubernetes_asyncio: the generated typed API is bypassed, so it is not
# loaded either (generated_code's docstring has the numbers).
generated_code.install()
