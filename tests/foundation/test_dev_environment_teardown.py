"""`make dev-down` leaves nothing running: not the components, not a single containerd-shim.

Stopping dockerd while containers run used to leave about one shim in ten behind (20 of 200), holding memory
with their exec-root already deleted. This brings up a second, private environment (its own dev directory, so
the session's environment and a running demo are untouched), fills it with running containers, takes it down,
and counts the processes that belong to it before and after.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiodocker
import pytest

import devenv as devenv_module

pytestmark = [pytest.mark.kube, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS = 200


def _devenv(dev: Path, command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKYARD_DEV_DIR": str(dev)}
    res = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "devenv.py"), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, f"devenv.py {command} failed:\n{res.stderr}"
    return res


def _ours(dev: Path) -> list[int]:
    """Every process that belongs to that environment: named by its dev directory or its exec-root."""
    return sorted(set(devenv_module.processes_under(dev)) | set(devenv_module.processes_under(
        devenv_module._runtime_dir(dev))))  # fmt: skip


async def _fill(socket: Path, image: str) -> None:
    docker = aiodocker.Docker(url=f"unix://{socket}", api_version="v1.41")
    try:
        semaphore = asyncio.Semaphore(8)

        async def one(index: int) -> None:
            async with semaphore:
                container = await docker.containers.create(
                    {"Image": image, "Cmd": ["sleep", "3600"]}, name=f"teardown-{index}"
                )
                await container.start()

        await asyncio.gather(*(one(i) for i in range(CONTAINERS)))
        running = await docker.containers.list(filters={"status": ["running"]})
        assert len(running) == CONTAINERS
    finally:
        await docker.close()


async def test_dev_down_leaves_no_process_behind(devenv: Any, tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    assert _ours(dev) == []
    _devenv(dev, "up")
    try:
        assert _ours(dev), "the environment should be running now"
        shims_before = [p for p in devenv_module.processes_under(devenv_module._runtime_dir(dev))
                        if "shim" in devenv_module._cmdline(p)]  # fmt: skip
        await _fill(dev / "docker" / "docker.sock", devenv.test_image)
        shims = [p for p in devenv_module.processes_under(devenv_module._runtime_dir(dev))
                 if "shim" in devenv_module._cmdline(p)]  # fmt: skip
        assert len(shims) >= CONTAINERS - len(shims_before), "one shim per running container"
    finally:
        _devenv(dev, "down")
    left = _ours(dev)
    assert left == [], "left behind: " + "; ".join(devenv_module._cmdline(p)[:160] for p in left)
