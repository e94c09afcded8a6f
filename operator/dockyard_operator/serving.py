"""/healthz, /readyz and /metrics on one small aiohttp server (the probe and scrape endpoints)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dockyard_operator.metrics import Metrics

ReadyCheck = Callable[[], str | None]
"""Returns None when ready, or a one-line reason why not."""


class ProbeServer:
    def __init__(self, *, address: str, metrics: Metrics, ready: ReadyCheck) -> None:
        host, _, port = address.rpartition(":")
        self._host = host or "0.0.0.0"  # noqa: S104 — an explicit ":8080" means all interfaces
        self._port = int(port)
        self._metrics = metrics
        self._ready = ready
        self._runner: web.AppRunner | None = None
        self.port = 0

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._scrape)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        addresses = self._runner.addresses  # the bound (host, port) pairs; port 0 resolves here
        self.port = int(addresses[0][1]) if addresses else self._port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _: web.Request) -> web.Response:
        # Answering at all proves the event loop is not stuck; that is what liveness should restart on.
        return web.Response(text="ok\n")

    async def _readyz(self, _: web.Request) -> web.Response:
        reason = self._ready()
        if reason is None:
            return web.Response(text="ok\n")
        return web.Response(status=503, text=f"not ready: {reason}\n")

    async def _scrape(self, _: web.Request) -> web.Response:
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
