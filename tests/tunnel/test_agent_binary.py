"""The single-file agent built by hack/build-agent starts, connects and serves a Docker request."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest

from dockyard_tunnel.testing import HOST, TunnelRig

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def binary() -> Path:
    path = Path(os.environ.get("DOCKYARD_AGENT_BINARY", ROOT / "dist" / "dockyard-agent"))
    if not path.is_file():
        pytest.fail(f"{path} does not exist: build it with hack/build-agent (needs PyInstaller)", pytrace=False)
    return path


async def test_built_agent_serves_docker_requests(rig: TunnelRig, binary: Path) -> None:
    agent = await rig.start_agent(command=(str(binary),))
    await rig.wait_connected(timeout=30)
    docker = await rig.bridges.docker(HOST)
    try:
        assert "Version" in await docker.version()
        containers = await docker.containers.list(all=True)
        assert isinstance(containers, list)
    finally:
        await docker.close()
    status = await agent.status()
    assert status["connected"] is True
    # The binary reports the project's version (a bundled dist-info), not the source tree's 0+unknown marker.
    info = rig.server.registry.info(HOST)
    assert info is not None
    assert info.hello.agent_version == importlib.metadata.version("dockyard")
