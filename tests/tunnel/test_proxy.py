"""The agent's outbound connection honours HTTPS_PROXY / NO_PROXY and tunnels through HTTP CONNECT."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from dockyard_tunnel.agent.running import proxy_for
from dockyard_tunnel.testing import HOST, TunnelRig


@pytest.mark.parametrize(
    ("env", "url", "expected"),
    [
        ({"HTTPS_PROXY": "http://proxy:3128"}, "wss://tunnel.example:8443", "http://proxy:3128"),
        ({"HTTPS_PROXY": "http://p:1", "WSS_PROXY": "http://w:2"}, "wss://tunnel.example", "http://w:2"),
        ({"HTTP_PROXY": "http://proxy:3128"}, "wss://tunnel.example", None),
        ({"HTTP_PROXY": "http://proxy:3128"}, "ws://tunnel.example", "http://proxy:3128"),
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "tunnel.example"}, "wss://tunnel.example", None),
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": ".example"}, "wss://tunnel.example", None),
        ({}, "wss://tunnel.example", None),
    ],
)
def test_proxy_selection(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str, expected: str | None) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "WSS_PROXY", "WS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert proxy_for(url) == expected


class ConnectProxy:
    """A minimal HTTP CONNECT proxy that records the targets it was asked for."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        self.targets.append(target)
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        self.writers.add(up_writer)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in self.writers:
                writer.close()
            await self.server.wait_closed()


@pytest.mark.docker
async def test_agent_connects_through_an_http_connect_proxy(rig: TunnelRig, devenv: Any) -> None:
    proxy = ConnectProxy()
    port = await proxy.start()
    try:
        proxy_url = f"http://user:proxy-secret@127.0.0.1:{port}"
        agent = await rig.start_agent(env={"HTTPS_PROXY": proxy_url, "NO_PROXY": "", "no_proxy": ""})
        await rig.wait_connected()
        record = await agent.wait_for_log(lambda r: r.get("event") == "using_proxy")
        assert record["proxy"] == f"http://127.0.0.1:{port}"
        assert f"127.0.0.1:{rig.server.port}" in proxy.targets
        docker = await rig.bridges.docker(HOST)
        try:
            assert "Version" in await docker.version()
        finally:
            await docker.close()
        await agent.stop()
        assert "proxy-secret" not in agent.log_path.read_text()
    finally:
        await proxy.stop()
