"""Process limits the tunnel's two ends need.

Every connection through a DockerService is a socket at the operator and one at the agent, so a service with a
thousand clients needs a thousand descriptors on each side; the usual soft limit is 1024 (systemd services and
login shells), the hard limit far higher. Raising soft to hard is what nginx, haproxy and Go's runtime do at
start; it needs no privilege.
"""

from __future__ import annotations

import resource


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one and return the soft limit in force. A best effort: never
    fails (a container runtime may forbid it; the limit then stays as it was)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target
