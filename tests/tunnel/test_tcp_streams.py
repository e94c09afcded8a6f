"""`tcp IP:PORT` streams: the agent dials only IPs of its own managed containers; everything else is reset."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiodocker
import pytest

from dockyard_tunnel.dockerapi.local import MANAGED_LABEL
from dockyard_tunnel.errors import DialError
from dockyard_tunnel.server.streams import dial_tcp
from dockyard_tunnel.testing import HOST, TunnelRig

pytestmark = [pytest.mark.docker]

HTTPD = ["sh", "-c", "mkdir -p /www && echo hello-from-container > /www/index.html && httpd -f -p 8080 -h /www"]


async def _http_get(rig: TunnelRig, ip: str, container: str | None = None) -> bytes:
    stream = await dial_tcp(rig.server.registry, host=HOST, ip=ip, port=8080, timeout=10, container=container)
    async with stream:
        await stream.write(b"GET /index.html HTTP/1.0\r\n\r\n")
        await stream.send_eof()
        data = b""
        async with asyncio.timeout(10):
            while chunk := await stream.read():
                data += chunk
    return data


async def _container_ip(docker: aiodocker.Docker, name: str, image: str, labels: dict[str, str]) -> str:
    container = await docker.containers.create({"Image": image, "Cmd": HTTPD, "Labels": labels}, name=name)
    await container.start()
    shown = await container.show()
    ip = str(shown["NetworkSettings"]["IPAddress"])
    assert ip, f"container {name} has no IP address: {shown['NetworkSettings']}"
    # Wait until httpd listens, checked from the host (the test runs on the Docker host itself).
    async with asyncio.timeout(10):
        while True:
            try:
                _, writer = await asyncio.open_connection(ip, 8080)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            break
    return ip


async def test_tcp_only_to_managed_containers(rig: TunnelRig, devenv: Any) -> None:
    agent = await rig.start_agent()
    await rig.wait_connected()
    docker = await rig.bridges.docker(HOST)
    names = ["tunnel-tcp-managed", "tunnel-tcp-unmanaged"]
    try:
        for name in names:
            with contextlib.suppress(aiodocker.DockerError):
                await (await docker.containers.get(name)).delete(force=True)
        managed = await _container_ip(docker, names[0], devenv.test_image, {MANAGED_LABEL: "true"})
        unmanaged = await _container_ip(docker, names[1], devenv.test_image, {})

        response = await _http_get(rig, managed)
        assert response.startswith(b"HTTP/1.1 200 OK\r\n")
        assert response.endswith(b"hello-from-container\n")
        holder = (await (await docker.containers.get(names[0])).show())["Id"]
        assert (await _http_get(rig, managed, container=holder[:12])).endswith(b"hello-from-container\n")
        with pytest.raises(DialError):  # the IP is managed, but held by another container than the one expected
            await _http_get(rig, managed, container="0123456789ab")

        for refused in (unmanaged, "127.0.0.1"):
            with pytest.raises(DialError):
                await _http_get(rig, refused)
            wanted = f"tcp {refused}:8080"

            def refusal(record: dict[str, Any], wanted: str = wanted) -> bool:
                return record.get("event") == "tcp_refused" and record.get("target") == wanted

            record = await agent.wait_for_log(refusal)
            assert MANAGED_LABEL in record["reason"]
    finally:
        for name in names:
            with contextlib.suppress(aiodocker.DockerError):
                await (await docker.containers.get(name)).delete(force=True)
        await docker.close()
    for _ in range(100):  # the last bridged request's stream closes just after its response
        if rig.server.registry.stats(HOST).open_streams == 0:
            break
        await asyncio.sleep(0.05)
    assert rig.server.registry.stats(HOST).open_streams == 0
