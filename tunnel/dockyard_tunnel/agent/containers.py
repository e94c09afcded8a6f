"""The agent's view of the containers it may relay to: running containers labelled dockyard.dev/managed=true, by IP.

One list, shared by the `tcp` relay and the Service-import listeners, kept for TTL seconds: a burst of new
connections costs one Docker call per second. An address it does not have, or one held by another container than
expected, is looked up again at once (a container that just started), so the list only delays noticing that an
address stopped being allowed. Concurrent lookups share one Docker call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from dockyard_tunnel.dockerapi.local import IPAddress, LocalDocker

#: Seconds a list answers for.
TTL = 1.0


@dataclass(frozen=True)
class Managed:
    """A running managed container at an address."""

    container_id: str
    imports: frozenset[str]
    """Its import targets (NS/NAME:PORT), from the dockyard.dev/imports label."""


class ManagedContainers:
    def __init__(self, local_docker: LocalDocker, *, ttl: float = TTL) -> None:
        self._docker = local_docker
        self._ttl = ttl
        self._known: tuple[float, dict[IPAddress, Managed]] | None = None
        self._listing: asyncio.Future[dict[IPAddress, Managed]] | None = None

    async def at(self, address: IPAddress, *, expect: str | None = None) -> Managed | None:
        """The managed container at `address` (with `expect`, a Docker id prefix it should have); raises
        LocalDockerError when the daemon cannot say."""
        if self._known is not None and time.monotonic() - self._known[0] < self._ttl:
            known = self._known[1].get(address)
            if known is not None and (expect is None or known.container_id.startswith(expect)):
                return known
        if self._listing is None:  # one Docker call for every connection waiting on it
            self._listing = asyncio.ensure_future(self._list())
            self._listing.add_done_callback(lambda _f: setattr(self, "_listing", None))
        found = await asyncio.shield(self._listing)
        self._known = (time.monotonic(), found)
        return found.get(address)

    async def _list(self) -> dict[IPAddress, Managed]:
        listed = await self._docker.managed_containers_by_ip()
        return {ip: Managed(container_id=cid, imports=imports) for ip, (cid, imports) in listed.items()}
