"""What the operator knows about a host's connection right now (a plain value; the DockerHost status is built
from it by hosts/reporting.py)."""

from __future__ import annotations

import dataclasses
import datetime


@dataclasses.dataclass
class HostState:
    """What the operator knows about a host right now; the DockerHost reconciler turns it into status."""

    reachable: bool = False
    decided: bool = False
    """False until the first verdict (a ping, an agent session, or the agent's grace period running out). Until
    then nothing is reported about the host or its containers: right after an operator restart, "not connected
    yet" is not news, and reporting it would flap every status."""
    connected_since: datetime.datetime | None = None
    last_heartbeat: datetime.datetime | None = None
    message: str = "not connected yet"
    docker_version: str = ""
    api_version: str = ""
    os: str = ""
    arch: str = ""
    agent_version: str = ""
