"""What `dockyard host join --arch ARCH` prints: how to put the agent on a Docker host of that architecture.

The names here are the ones hack/build-agent writes (dist/dockyard-agent-linux-ARCH) and the units in
manifests/agent/; docs/agent.md describes the same steps in prose.
"""

from __future__ import annotations

#: Architectures the single-file agent and the agent image are built for, by Docker's names (`uname -m` says
#: x86_64 and aarch64 for them).
ARCHES = ("amd64", "arm64")
#: The oldest systemd whose LoadCredential= and %d the default unit uses; older ones take the other unit.
CREDENTIALS_SYSTEMD = 247


def binary_name(arch: str) -> str:
    if arch not in ARCHES:
        raise ValueError(f"unknown architecture {arch!r}: one of {', '.join(ARCHES)}")
    return f"dockyard-agent-linux-{arch}"


def install_lines(arch: str) -> list[str]:
    """Shell lines (comments and commands) that install the agent binary and pick the systemd unit; the token
    stays in /etc/dockyard/agent.token and the agent's own command line follows them."""
    name = binary_name(arch)
    machine = {"amd64": "x86_64", "arm64": "aarch64"}[arch]
    return [
        f"# linux/{arch} (uname -m: {machine}); glibc >= 2.31 (Debian 11, Ubuntu 20.04, RHEL 9 and newer;",
        "# older hosts such as RHEL 8 or Ubuntu 18.04 run the agent image instead, see docs/agent.md).",
        f"# Copy dist/{name} (make agent) to the host, then as root:",
        f"install -m 0755 {name} /usr/local/bin/dockyard-agent",
        f"# systemd >= {CREDENTIALS_SYSTEMD}: manifests/agent/dockyard-agent.service (token as a credential);",
        "# systemd 239-246 (Ubuntu 20.04): manifests/agent/dockyard-agent-systemd239.service, with",
        "#   useradd --system --no-create-home --shell /usr/sbin/nologin dockyard-agent",
        "#   chown dockyard-agent: /etc/dockyard/agent.token && chmod 0400 /etc/dockyard/agent.token",
        "# (`systemctl --version` tells which; either is installed as /etc/systemd/system/dockyard-agent.service).",
        f"# Or as a container: the dockyard-agent image, platform linux/{arch} (docs/agent.md).",
    ]
