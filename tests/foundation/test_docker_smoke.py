"""Smoke tests against the private dockerd: a container from the locally built image, with resource limits."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiodocker
import pytest

pytestmark = pytest.mark.docker


async def test_create_start_inspect_remove_with_limits(devenv: Any) -> None:
    docker = aiodocker.Docker(url=devenv.docker_host, api_version="v1.41")
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    try:
        container = await docker.containers.create(
            {
                "Image": devenv.test_image,
                "Cmd": ["httpd", "-f", "-p", "8080", "-h", "/www"],
                "Labels": {"dockyard.dev/test": "smoke"},
                "HostConfig": {"Memory": 64 * 1024 * 1024, "NanoCpus": 500_000_000},
            },
            name=name,
        )
        try:
            await container.start()
            info = await container.show()
            assert info["State"]["Running"] is True
            assert info["HostConfig"]["Memory"] == 64 * 1024 * 1024
            assert info["HostConfig"]["NanoCpus"] == 500_000_000
            assert info["Config"]["Labels"]["dockyard.dev/test"] == "smoke"

            # The container's bridge IP is reachable from this machine: later Service tests rely on it.
            ip = info["NetworkSettings"]["IPAddress"]
            assert ip.startswith("10.213."), ip
            for _ in range(50):
                try:
                    reader, writer = await asyncio.open_connection(ip, 8080)
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail(f"httpd in the container never listened on {ip}:8080")
            writer.write(b"GET /index.html HTTP/1.0\r\n\r\n")
            await writer.drain()
            response = await asyncio.wait_for(reader.read(), timeout=5)
            writer.close()
            assert b"hello from dockyard-test" in response
        finally:
            await container.delete(force=True)
        remaining = await docker.containers.list(all=True, filters={"name": [name]})
        assert remaining == []
    finally:
        await docker.close()
