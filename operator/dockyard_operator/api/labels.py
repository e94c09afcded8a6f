"""Docker label keys that give a managed container its identity.

Containers are found by these labels, never by name alone: a container with our name but without our labels
belongs to someone else and is never adopted.
"""

from typing import Final

from dockyard_operator.api.common import RESERVED_LABEL_PREFIX

PREFIX: Final = RESERVED_LABEL_PREFIX
MANAGED: Final = PREFIX + "managed"
MANAGED_VALUE: Final = "true"
UID: Final = PREFIX + "uid"
NAMESPACE: Final = PREFIX + "namespace"
NAME: Final = PREFIX + "name"
SPEC_HASH: Final = PREFIX + "spec-hash"
IMPORTS: Final = PREFIX + "imports"
"""On a container with serviceImports: its targets (NS/NAME:PORT, comma-separated). The agent lets a connection
to an import listener through only from a container whose label lists that listener's target."""
#: The DockerHost a container was created for. Two DockerHosts may reach the same daemon (two agents on one
#: machine, a host registered twice): each one only ever sees its own containers. Set at create time and kept out
#: of the spec hash, so containers from before it existed (without it) are neither recreated nor missed.
HOST: Final = PREFIX + "host"

#: Namespace label naming the operator class that serves the namespace's DockerContainers (default: dockyard).
OPERATOR_CLASS: Final = PREFIX + "operator-class"

#: Docker events/list filter for every container Dockyard manages (``filters={"label": [MANAGED_FILTER]}``).
MANAGED_FILTER: Final = f"{MANAGED}={MANAGED_VALUE}"


def is_reserved(key: str) -> bool:
    """Whether a label key is in Dockyard's reserved prefix (users may not set it)."""
    return key.startswith(PREFIX)
