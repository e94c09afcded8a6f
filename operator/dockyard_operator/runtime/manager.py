"""The manager: starts the shared informers, waits for their caches, then runs every controller's workers.

Order matters (controller-runtime's manager does the same): a controller that ran before its caches were full
would see objects as missing and act on that (create what exists, delete what it cannot see).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from dockyard_operator.runtime.controller import Controller
from dockyard_operator.runtime.informers import SharedInformers

log = structlog.get_logger("dockyard.manager")


class Manager:
    def __init__(self, *, informers: SharedInformers, resync_period: float) -> None:
        self.informers = informers
        self._resync_period = resync_period
        self._controllers: list[Controller] = []
        self.synced = asyncio.Event()

    def add(self, controller: Controller) -> Controller:
        self._controllers.append(controller)
        return controller

    @property
    def controllers(self) -> Sequence[Controller]:
        return list(self._controllers)

    def controller(self, name: str) -> Controller:
        return next(c for c in self._controllers if c.name == name)

    async def start(self, group: asyncio.TaskGroup) -> None:
        """Start informers, wait for the caches, then start the workers and the resync timer in `group`."""
        self.informers.start(group)
        await self.informers.wait_synced()
        self.start_controllers(group)

    def start_controllers(self, group: asyncio.TaskGroup) -> None:
        """Start every controller's workers and the resync timer (the caches must be synced already)."""
        self.synced.set()
        log.info("starting workers", controllers=[c.name for c in self._controllers])
        for controller in self._controllers:
            group.create_task(controller.run(), name=f"controller-{controller.name}")
        group.create_task(self._resync(), name="resync")

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self._resync_period)
            for controller in self._controllers:
                if controller.resync:
                    controller.resync_all()

    def shut_down(self) -> None:
        for controller in self._controllers:
            controller.shut_down()
