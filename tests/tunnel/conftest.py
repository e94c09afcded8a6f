"""Fixtures for tunnel tests; the helpers live in dockyard_tunnel.testing (test modules cannot share code)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dockyard_tunnel.testing import TunnelRig, start_rig


@pytest.fixture
async def rig(tmp_path: Path, devenv: Any) -> AsyncIterator[TunnelRig]:
    """A started tunnel server with Docker bridges; agents started through it are killed afterwards."""
    rig = await start_rig(tmp_path, docker_socket=devenv.docker_host)
    try:
        yield rig
    finally:
        await rig.close()
