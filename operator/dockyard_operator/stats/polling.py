"""Asks every connected host's agent for its containers' stats once per interval (leader only: run() is started
with the controllers) and keeps the latest document per host; /metrics reads them at scrape time.

Why a stream of our own rather than Docker's API through the tunnel: Docker has no multi-container stats
endpoint, so N containers would cost N tunnel round trips per interval; the agent asks its daemon locally and
answers in one document (tunnel/dockyard_tunnel/container_stats.py). A host that does not answer in time keeps
no figures: stale numbers would read as a flat line, a gap reads as what it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from pydantic import ValidationError

from dockyard_mux import MuxError
from dockyard_operator.settings import StatsSettings
from dockyard_tunnel.container_stats import DOCUMENT_LIMIT, StatsDocument
from dockyard_tunnel.errors import HostNotConnectedError
from dockyard_tunnel.piping import read_to_eof
from dockyard_tunnel.server.registry import SessionRegistry
from dockyard_tunnel.server.streams import open_target_stream
from dockyard_tunnel.stream_headers import StatsTarget

log = structlog.get_logger("dockyard.stats")

PollObserver = Callable[[str, str, float, int], None]
"""(host, result: ok|error, seconds, Docker calls the agent made) after every poll of a host."""


@dataclass(frozen=True, slots=True)
class HostStatsSnapshot:
    host: str
    document: StatsDocument
    at: float
    """time.time() when it arrived."""


class StatsPoller:
    def __init__(
        self,
        *,
        registry: Callable[[], SessionRegistry | None],
        settings: StatsSettings,
        on_poll: PollObserver | None = None,
    ) -> None:
        self._registry = registry
        self._settings = settings
        self._on_poll = on_poll
        self._latest: dict[str, HostStatsSnapshot] = {}

    def snapshots(self) -> list[HostStatsSnapshot]:
        return list(self._latest.values())

    async def run(self) -> None:
        """Poll every interval, until cancelled. A slow round delays the next one rather than overlapping it."""
        if self._settings.interval <= 0:
            return
        while True:
            started = time.monotonic()
            await self.poll_once()
            await asyncio.sleep(max(0.0, self._settings.interval - (time.monotonic() - started)))

    async def poll_once(self) -> None:
        registry = self._registry()
        hosts = [h for h in registry.hosts() if registry.get(h) is not None] if registry is not None else []
        for gone in set(self._latest) - set(hosts):
            del self._latest[gone]  # its series go with it
        if registry is not None and hosts:
            await asyncio.gather(*(self._poll(registry, host) for host in hosts))

    async def _poll(self, registry: SessionRegistry, host: str) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._settings.timeout):
                stream = await open_target_stream(registry, host=host, target=StatsTarget())
                try:
                    await stream.send_eof()
                    body = await read_to_eof(stream, limit=DOCUMENT_LIMIT)
                finally:
                    with contextlib.suppress(MuxError):
                        await stream.aclose()
            document = StatsDocument.model_validate_json(body)
        except (HostNotConnectedError, MuxError, TimeoutError, ValueError, ValidationError) as exc:
            # ValidationError is a ValueError; named for the reader. An older agent resets the unknown stream.
            self._latest.pop(host, None)
            log.warning("cannot read the host's container stats", host=host, error=str(exc) or type(exc).__name__)
            if self._on_poll is not None:
                self._on_poll(host, "error", time.monotonic() - started, 0)
            return
        self._latest[host] = HostStatsSnapshot(host=host, document=document, at=time.time())
        if document.errors:
            log.debug("some container stats are missing", host=host, errors=document.errors)
        if self._on_poll is not None:
            self._on_poll(host, "ok", time.monotonic() - started, document.docker_calls)
